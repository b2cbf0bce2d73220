package db_test

import (
	"context"
	"testing"

	"github.com/indigo-hq/indigo/db/dbtest"
	"github.com/indigo-hq/indigo/db/sqlitedb"
)

// Unmetered calls are recorded once per request id, listed oldest first
// until reconciled, and reconciled once.
func TestUnmeteredCalls(t *testing.T) {
	for _, engine := range dbtest.Engines {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			q := dbtest.Open(t, engine).Q()
			call := func(req string, cost int64) sqlitedb.InsertUnmeteredCallParams {
				return sqlitedb.InsertUnmeteredCallParams{OrgID: "org_1", KeyID: "key_1", Route: "GET /v2/things", Cost: cost, RequestID: req, CreatedAt: t0}
			}
			for _, c := range []struct {
				p    sqlitedb.InsertUnmeteredCallParams
				rows int64
			}{{call("req_a", 2), 1}, {call("req_b", 3), 1}, {call("req_a", 9), 0}, {call("req_c", 1), 1}} {
				n, err := q.InsertUnmeteredCall(ctx, c.p)
				if err != nil || n != c.rows {
					t.Fatalf("insert %s: %d rows, %v; want %d", c.p.RequestID, n, err, c.rows)
				}
			}
			if n, err := q.CountUnreconciledCalls(ctx); err != nil || n != 3 {
				t.Fatalf("count = %d, %v", n, err)
			}
			rows, err := q.ListUnreconciledCalls(ctx, 2)
			if err != nil || len(rows) != 2 || rows[0].RequestID != "req_a" || rows[0].Cost != 2 || rows[1].RequestID != "req_b" || rows[0].ReconciledAt.Valid {
				t.Fatalf("list = %+v, %v", rows, err)
			}
			if n, err := q.MarkCallReconciled(ctx, sqlitedb.MarkCallReconciledParams{ID: rows[0].ID, At: t0 + 5}); err != nil || n != 1 {
				t.Fatalf("reconcile: %d, %v", n, err)
			}
			if n, err := q.MarkCallReconciled(ctx, sqlitedb.MarkCallReconciledParams{ID: rows[0].ID, At: t0 + 6}); err != nil || n != 0 {
				t.Fatalf("second reconcile: %d, %v", n, err)
			}
			rows, err = q.ListUnreconciledCalls(ctx, 10)
			if err != nil || len(rows) != 2 || rows[0].RequestID != "req_b" || rows[1].RequestID != "req_c" {
				t.Fatalf("after reconcile: %+v, %v", rows, err)
			}
			if n, err := q.CountUnreconciledCalls(ctx); err != nil || n != 2 {
				t.Fatalf("count = %d, %v", n, err)
			}
			// Only reconciled calls older than the cut-off are pruned.
			if n, err := q.PruneReconciledCalls(ctx, t0+5); err != nil || n != 0 {
				t.Fatalf("prune before the reconcile time: %d, %v", n, err)
			}
			if n, err := q.PruneReconciledCalls(ctx, t0+1000); err != nil || n != 1 {
				t.Fatalf("prune after it: %d, %v", n, err)
			}
			if n, err := q.CountUnreconciledCalls(ctx); err != nil || n != 2 {
				t.Fatalf("unreconciled calls after pruning: %d, %v", n, err)
			}
		})
	}
}
