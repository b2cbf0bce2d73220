package apikey

import (
	"context"
	"database/sql"
	"errors"

	"github.com/indigo-hq/indigo/db"
)

// public is the API view of a record with this process's live usage: the
// in-memory quota and last-used time, which are saved to the database
// lazily.
func (s *Service) public(r *Record) Key {
	k := r.Public(s.now())
	if r.Row.Remaining.Valid {
		if q, ok := s.limiter.Current(r.Row.ID, r.Row.QuotaEpoch); ok {
			v := q.Remaining
			k.Remaining = &v
		}
	}
	if u, ok := s.usage.Load(r.Row.ID); ok {
		if last := u.(*usage).last.Load(); last > 0 && (k.LastUsedAt == nil || last > ms(k.LastUsedAt.Time)) {
			k.LastUsedAt = &Time{Time: fromMS(last)}
		}
	}
	return k
}

// Get returns one key of the org; another org's key is not found.
func (s *Service) Get(ctx context.Context, orgID, id string) (Key, error) {
	row, err := s.store.Q().GetOrgKey(ctx, db.GetOrgKeyParams{OrgID: orgID, ID: id})
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, notFound("key")
	}
	if err != nil {
		return Key{}, err
	}
	return s.public(newRecord(row)), nil
}

// List returns a page of the org's keys, newest first.
func (s *Service) List(ctx context.Context, orgID, cursor string, limit int) ([]Key, string, error) {
	rows, err := s.store.Q().ListOrgKeys(ctx, db.ListOrgKeysParams{OrgID: orgID, Cursor: cursor, Lim: int64(limit + 1)})
	if err != nil {
		return nil, "", err
	}
	return s.page(rows, limit)
}

func (s *Service) page(rows []db.SaasApiKey, limit int) ([]Key, string, error) {
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		next = rows[len(rows)-1].ID
	}
	out := make([]Key, len(rows))
	for i, r := range rows {
		out[i] = s.public(newRecord(r))
	}
	return out, next, nil
}

// AdminFilter narrows the cross-org key list.
type AdminFilter struct {
	OrgID, Status, KeyID, Cursor string
	Since, Until                 int64 // created_at bounds in Unix ms; 0 = open
	Limit                        int
}

// AdminList lists keys across organizations.
func (s *Service) AdminList(ctx context.Context, f AdminFilter) ([]Key, string, error) {
	rows, err := s.store.Q().AdminListKeys(ctx, db.AdminListKeysParams{
		OrgID: f.OrgID, Status: f.Status, Now: ms(s.now()), KeyID: f.KeyID, Since: f.Since, Until: f.Until,
		Cursor: f.Cursor, Lim: int64(f.Limit + 1),
	})
	if err != nil {
		return nil, "", err
	}
	return s.page(rows, f.Limit)
}
