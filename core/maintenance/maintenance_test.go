package maintenance_test

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core/maintenance"
	"github.com/indigo-hq/indigo/db"
	"github.com/indigo-hq/indigo/db/dbtest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestRunsAndRepeats(t *testing.T) {
	s := dbtest.Open(t, db.SQLite)
	var runs atomic.Int64
	sched := maintenance.New(s, quiet, maintenance.Task{ID: "count", Interval: 10 * time.Millisecond,
		Run: func(context.Context) (int64, error) { runs.Add(1); return 1, nil }})
	ctx, cancel := context.WithCancel(context.Background())
	sched.Start(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for runs.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	sched.Wait()
	if runs.Load() < 3 {
		t.Fatalf("ran %d times", runs.Load())
	}
	if sched.RunOnce(context.Background(), "unknown") {
		t.Fatal("ran an unknown task")
	}
}

// Two hosts on one PostgreSQL database never run the same task at once.
func TestLeaseOnPostgres(t *testing.T) {
	url := dbtest.URL(t, db.Postgres)
	ctx := context.Background()
	open := func() *db.Store {
		s, err := db.Open(ctx, db.Postgres, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	a, b := open(), open()
	inside := make(chan struct{})
	release := make(chan struct{})
	var bRan atomic.Bool
	schedA := maintenance.New(a, quiet, maintenance.Task{ID: "expire", Interval: time.Hour,
		Run: func(context.Context) (int64, error) { close(inside); <-release; return 0, nil }})
	schedB := maintenance.New(b, quiet, maintenance.Task{ID: "expire", Interval: time.Hour,
		Run: func(context.Context) (int64, error) { bRan.Store(true); return 0, nil }})
	done := make(chan bool)
	go func() { done <- schedA.RunOnce(ctx, "expire") }()
	<-inside
	if schedB.RunOnce(ctx, "expire") || bRan.Load() {
		t.Fatal("host B ran the task while host A held the lease")
	}
	close(release)
	if !<-done {
		t.Fatal("host A did not run")
	}
	if !schedB.RunOnce(ctx, "expire") || !bRan.Load() {
		t.Fatal("host B could not run after A released the lease")
	}
}
