package db_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/db/dbtest"
	"github.com/indigo-hq/indigo/db/sqlitedb"
)

// logRows builds n request-log rows of one org and key, in time order, with
// realistic field sizes.
func logRows(n int, org, key string) []sqlitedb.InsertRequestLogParams {
	rows := make([]sqlitedb.InsertRequestLogParams, n)
	for i := range rows {
		rows[i] = sqlitedb.InsertRequestLogParams{RequestID: fmt.Sprintf("5f2a9c0e1b7d%016x", i), OrgID: org, KeyID: key,
			Method: "GET", Route: "/api/v2/me", Status: 200, LatencyUs: 120, CreatedAt: 1_800_000_000_000 + int64(i)}
	}
	return rows
}

// With every pooled connection but one in use, a batch must still go
// through: its statements may not wait for a connection behind its own
// transaction.
func TestWriteRequestLogsWithOneConnection(t *testing.T) {
	for _, engine := range dbtest.Engines {
		t.Run(engine, func(t *testing.T) {
			s := dbtest.Open(t, engine)
			s.DB.SetMaxOpenConns(1)
			logs := logRows(147, "o", "k") // every statement size, none prepared yet
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.WriteRequestLogs(ctx, logs, nil); err != nil {
				t.Fatalf("with one connection: %v", err)
			}
			got, err := s.Q().AdminListLogs(ctx, sqlitedb.AdminListLogsParams{OrgID: "o", Lim: 1000})
			if err != nil || len(got) != 147 {
				t.Fatalf("%d rows, %v", len(got), err)
			}
		})
	}
}

// BenchmarkWriteRequestLogs is the per-row cost of the request log writer
// (batches of 500, as the host writes them).
func BenchmarkWriteRequestLogs(b *testing.B) {
	for _, engine := range dbtest.Engines {
		b.Run(engine, func(b *testing.B) {
			s := dbtest.Open(b, engine)
			batch := logRows(500, "org_01M84MNDGBMEYZ0DZVVFDCBAXR", "key_01M84MNDGQSX8SGY8MT7B12P28")
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
