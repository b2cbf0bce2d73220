package db_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/db/dbtest"
	"github.com/indigo-hq/indigo/db/sqlitedb"
)

// With every pooled connection but one in use, a batch must still go
// through: its statements may not wait for a connection behind its own
// transaction.
func TestWriteRequestLogsWithOneConnection(t *testing.T) {
	for _, engine := range dbtest.Engines {
		t.Run(engine, func(t *testing.T) {
			s := dbtest.Open(t, engine)
			s.DB.SetMaxOpenConns(1)
			logs := make([]sqlitedb.InsertRequestLogParams, 147) // every statement size, none prepared yet
			for i := range logs {
				logs[i] = sqlitedb.InsertRequestLogParams{RequestID: fmt.Sprint(i), OrgID: "o", KeyID: "k", Method: "GET", Route: "/", Status: 200, CreatedAt: int64(i)}
			}
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
