package db_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/indigo-hq/indigo/db/dbtest"
	"github.com/indigo-hq/indigo/db/sqlitedb"
)

// BenchmarkWriteRequestLogs is the per-row cost of the request log writer
// (batches of 500, as the host writes them).
func BenchmarkWriteRequestLogs(b *testing.B) {
	for _, engine := range dbtest.Engines {
		b.Run(engine, func(b *testing.B) {
			s := dbtest.Open(b, engine)
			batch := make([]sqlitedb.InsertRequestLogParams, 500)
			for i := range batch {
				batch[i] = sqlitedb.InsertRequestLogParams{RequestID: fmt.Sprintf("5f2a9c0e1b7d%016x", i), OrgID: "org_01M84MNDGBMEYZ0DZVVFDCBAXR",
					KeyID: "key_01M84MNDGQSX8SGY8MT7B12P28", Method: "GET", Route: "/api/v2/me", Status: 200, LatencyUs: 120, CreatedAt: 1_800_000_000_000 + int64(i)}
			}
			stats := []sqlitedb.AddKeyStatParams{{KeyID: batch[0].KeyID, OrgID: batch[0].OrgID, Day: "2027-01-15", Route: "/api/v2/me", Status: 200, Count: 500}}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.WriteRequestLogs(context.Background(), batch, stats); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch))/1000, "us/row")
		})
	}
}
