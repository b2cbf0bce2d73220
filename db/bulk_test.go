package db_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/db"
	"github.com/indigo-hq/indigo/db/dbtest"
	"github.com/indigo-hq/indigo/db/sqlitedb"
	"github.com/indigo-hq/indigo/internal/procstat"
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

// The SQLite writer keeps one connection of its own: with every other
// pooled connection in use a batch still goes through, the pool's other
// users still get a connection once they are given back, a failed batch
// stores nothing and the next one works, and Close finalises what the
// writer prepared.
func TestWriteRequestLogsOnItsOwnConnection(t *testing.T) {
	for _, engine := range dbtest.Engines {
		t.Run(engine, func(t *testing.T) {
			s := dbtest.Open(t, engine)
			s.DB.SetMaxOpenConns(2)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			busy, err := s.DB.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			stat := []sqlitedb.AddKeyStatParams{{KeyID: "k", OrgID: "o", Day: "2027-01-15", Route: "/api/v2/me", Status: 200, Count: 147}}
			for i := 0; i < 2; i++ { // prepared, then reused
				if err := s.WriteRequestLogs(ctx, logRows(147, "o", "k"), stat); err != nil { // every statement size
					t.Fatalf("batch %d with the other connection busy: %v", i, err)
				}
			}
			failed, stop := context.WithCancel(ctx)
			stop()
			if err := s.WriteRequestLogs(failed, logRows(20, "o", "k"), stat); err == nil {
				t.Fatal("a batch with a cancelled context reported success")
			}
			if err := s.WriteRequestLogs(ctx, logRows(3, "o", "k"), nil); err != nil {
				t.Fatalf("the batch after a failed one: %v", err)
			}
			_ = busy.Close()
			got, err := s.Q().AdminListLogs(ctx, sqlitedb.AdminListLogsParams{OrgID: "o", Lim: 1000})
			if err != nil || len(got) != 2*147+3 {
				t.Fatalf("%d rows, %v; want %d", len(got), err, 2*147+3)
			}
			days, err := s.Q().KeyStatsByDay(ctx, sqlitedb.KeyStatsByDayParams{OrgID: "o", KeyID: "k"})
			if err != nil || len(days) != 1 || days[0].Count != 2*147 {
				t.Fatalf("roll-up %+v, %v; want one day of %d", days, err, 2*147)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
		})
	}
}

// BenchmarkWriteRequestLogs is the per-row cost of the request log writer
// (batches of 2000, as the host writes them under load), with the rows of
// one org or spread over 1,000 (which costs PostgreSQL's org index more).
// When PostgreSQL runs on this machine, it also reports the CPU its
// backend spent per row (pg_cpu_us/row, from /proc, 10 ms ticks).
func BenchmarkWriteRequestLogs(b *testing.B) {
	for _, engine := range dbtest.Engines {
		for _, orgs := range []int{1, 1000} {
			b.Run(fmt.Sprintf("%s/orgs=%d", engine, orgs), func(b *testing.B) {
				s := dbtest.Open(b, engine)
				batch := logRows(2000, "org_01M84MNDGBMEYZ0DZVVFDCBAXR", "key_01M84MNDGQSX8SGY8MT7B12P28")
				for i := range batch {
					if orgs > 1 {
						batch[i].OrgID = fmt.Sprintf("org_01M84MNDGBMEYZ0DZV%08d", i*7919%orgs)
					}
				}
				stats := []sqlitedb.AddKeyStatParams{{KeyID: batch[0].KeyID, OrgID: batch[0].OrgID, Day: "2027-01-15", Route: "/api/v2/me", Status: 200, Count: 2000}}
				backend := func() int { return 0 }
				if engine == db.Postgres {
					s.DB.SetMaxOpenConns(1) // one backend, whose CPU is read
					backend = func() int {
						var pid int
						_ = s.DB.QueryRow("SELECT pg_backend_pid()").Scan(&pid)
						return pid
					}
				}
				pid := backend()
				cpu0, measured := procstat.CPU(pid)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := s.WriteRequestLogs(context.Background(), batch, stats); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				rows := float64(b.N * len(batch))
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/rows/1000, "us/row")
				if cpu1, ok := procstat.CPU(pid); measured && ok && backend() == pid {
					b.ReportMetric(float64(cpu1-cpu0)/rows/1000, "pg_cpu_us/row")
				}
			})
		}
	}
}

// Each field comes back as written (the PostgreSQL writer encodes COPY's
// binary format itself), and a batch that fails in any of its round trips
// (the mark, COPY, the roll-up) stores nothing and leaves its connection
// usable for the next.
func TestWriteRequestLogsFieldsAndFailures(t *testing.T) {
	for _, engine := range dbtest.Engines {
		t.Run(engine, func(t *testing.T) {
			s := dbtest.Open(t, engine)
			if engine == db.Postgres {
				s.DB.SetMaxOpenConns(1) // the failed batch's connection is the next one's
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			rows := []sqlitedb.InsertRequestLogParams{
				{RequestID: "r1", OrgID: "org_f", KeyID: "key_f", Method: "GET", Route: "/api/v2/é/{id}", Status: 200, LatencyUs: 0, CreatedAt: 1_800_000_000_000},
				{RequestID: "r2", OrgID: "org_f", KeyID: "", Method: "DELETE", Route: "", Status: 599, LatencyUs: 1 << 40, CreatedAt: 1_800_000_000_001},
				{RequestID: strings.Repeat("x", 300), OrgID: "org_f", KeyID: "key_f", Method: "PATCH", Route: "/日本", Status: 100, LatencyUs: -1, CreatedAt: 1_800_000_000_002},
			}
			stat := func(route string) []sqlitedb.AddKeyStatParams {
				return []sqlitedb.AddKeyStatParams{{KeyID: "key_f", OrgID: "org_f", Day: "2027-01-15", Route: route, Status: 200, Count: 2}}
			}
			mark := func(id string) sqlitedb.MarkRequestLogBatchParams {
				return sqlitedb.MarkRequestLogBatchParams{ID: id, CreatedAt: 1}
			}
			// Text that PostgreSQL refuses (a NUL byte) fails the roll-up,
			// after COPY, or COPY itself.
			if engine == db.Postgres {
				if _, err := s.WriteRequestLogBatch(ctx, mark("bad-stat"), rows, stat("/a\x00")); err == nil {
					t.Fatal("a roll-up row PostgreSQL refuses was reported stored")
				}
				bad := slices.Clone(rows)
				bad[1].Route = "/b\x00"
				if _, err := s.WriteRequestLogBatch(ctx, mark("bad-row"), bad, stat("/a")); err == nil {
					t.Fatal("a row PostgreSQL refuses was reported stored")
				}
			}
			if _, err := s.WriteRequestLogBatch(ctx, mark("good"), rows, stat("/a")); err != nil {
				t.Fatal(err)
			}
			if dup, err := s.WriteRequestLogBatch(ctx, mark("good"), rows, stat("/a")); err != nil || !dup {
				t.Fatalf("the same batch again: dup %v, %v", dup, err)
			}
			if _, err := s.WriteRequestLogBatch(ctx, mark("bad-stat"), rows[:1], nil); err != nil {
				t.Fatalf("a failed batch's id was kept: %v", err)
			}
			got, err := s.Q().AdminListLogs(ctx, sqlitedb.AdminListLogsParams{OrgID: "org_f", Lim: 10})
			if err != nil || len(got) != 4 {
				t.Fatalf("%d rows, %v; want 4", len(got), err)
			}
			slices.Reverse(got) // newest first
			for i, want := range append(slices.Clone(rows), rows[0]) {
				g := got[i]
				if g.RequestID != want.RequestID || g.OrgID != want.OrgID || g.KeyID != want.KeyID || g.Method != want.Method ||
					g.Route != want.Route || g.Status != want.Status || g.LatencyUs != want.LatencyUs || g.CreatedAt != want.CreatedAt {
					t.Fatalf("row %d: got %+v, want %+v", i, g, want)
				}
			}
			days, err := s.Q().KeyStatsByDay(ctx, sqlitedb.KeyStatsByDayParams{OrgID: "org_f", KeyID: "key_f"})
			if err != nil || len(days) != 1 || days[0].Count != 2 {
				t.Fatalf("roll-up %+v, %v; want one day of 2", days, err)
			}
		})
	}
}
