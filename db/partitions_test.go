package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/db"
	"github.com/indigo-hq/indigo/db/dbtest"
)

// The request log is partitioned by day on PostgreSQL: rows of a day that
// had no partition yet move into it when it is made, retention drops whole
// days, and reads see every row wherever it lives.
func TestRequestLogPartitions(t *testing.T) {
	s := dbtest.Open(t, db.Postgres)
	ctx := context.Background()
	day := int64(24 * time.Hour / time.Millisecond)
	// A day far from today: no partition exists, so the rows go to the
	// default partition.
	old := time.Date(2025, 1, 10, 12, 0, 0, 0, time.UTC)
	insert := func(at time.Time, n int) {
		for i := range n {
			if err := s.Q().InsertRequestLog(ctx, db.InsertRequestLogParams{RequestID: "r", OrgID: "org_a", KeyID: "key_a", Method: "GET",
				Route: "/api/v2/me", Status: 200, LatencyUs: 10, CreatedAt: at.UnixMilli() + int64(i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	insert(old, 3)
	insert(old.Add(24*time.Hour), 2)
	count := func(table string) int64 {
		var n int64
		if err := s.DB.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count("saas_api_request_logs_default"); n != 5 {
		t.Fatalf("default partition: %d rows, want 5", n)
	}
	made, err := s.EnsureLogPartitions(ctx, old, 1)
	if err != nil || made != 2 {
		t.Fatalf("made %d partitions: %v", made, err)
	}
	if count("saas_api_request_logs_default") != 0 || count("saas_api_request_logs_p20250110") != 3 || count("saas_api_request_logs_p20250111") != 2 {
		t.Fatal("rows did not move into their days")
	}
	if again, err := s.EnsureLogPartitions(ctx, old, 1); err != nil || again != 0 {
		t.Fatalf("a second run made %d: %v", again, err)
	}
	// Retention at the start of the 11th drops the whole 10th.
	dropped, err := s.DropLogPartitionsBefore(ctx, old.UnixMilli()/day*day+day)
	if err != nil || dropped != 3 {
		t.Fatalf("dropped %d rows: %v", dropped, err)
	}
	if n := count("saas_api_request_logs"); n != 2 {
		t.Fatalf("%d rows left, want the 11th's 2", n)
	}
	rows, err := s.Q().AdminListLogs(ctx, db.AdminListLogsParams{Lim: 10})
	if err != nil || len(rows) != 2 || rows[0].ID < rows[1].ID {
		t.Fatalf("admin list: %v %+v", err, rows)
	}
}
