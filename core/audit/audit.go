// Package audit writes the audit log: who changed what, from where, in the
// transaction of the change itself.
package audit

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/indigo-hq/indigo/db"
)

// Actor is who made a change, for the audit log.
type Actor struct {
	ID    string // "user:<id>", "key:<id>" or "cli"
	KeyID string // set when a key authenticates the request
	IP    string
}

// Record writes one audit row with q, in the caller's transaction.
func Record(ctx context.Context, q db.Querier, orgID string, actor Actor, keyID, action string, details map[string]any, at int64) error {
	if details == nil {
		details = map[string]any{}
	}
	b, _ := json.Marshal(details)
	return q.InsertAudit(ctx, db.InsertAuditParams{
		OrgID: orgID, Actor: actor.ID, KeyID: sql.NullString{String: keyID, Valid: keyID != ""},
		Action: action, SourceIp: actor.IP, Details: string(b), CreatedAt: at,
	})
}
