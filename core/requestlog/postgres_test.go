package requestlog_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core/coretest"
	"github.com/indigo-hq/indigo/core/requestlog"
	"github.com/indigo-hq/indigo/db"
	"github.com/indigo-hq/indigo/db/dbtest"
)

// The outage: PostgreSQL unreachable for a while under steady
// calls. The writer, whose connections go through a proxy that refuses them
// for two seconds, retries, spills past a small memory budget and replays,
// and every call is stored once.
func TestPostgresOutageLosesNoRows(t *testing.T) {
	u, err := url.Parse(dbtest.URL(t, db.Postgres)) // a fresh schema, dropped at cleanup
	if err != nil {
		t.Fatal(err)
	}
	proxy := coretest.NewProxy(t, u.Host)
	u.Host = proxy.Addr
	ctx := context.Background()
	s, err := db.Open(ctx, db.Postgres, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := db.MigrateUp(ctx, s); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	w := requestlog.New(s, requestlog.Options{QueueSize: 64, BatchSize: 8, FlushInterval: 10 * time.Millisecond,
		SpoolDir: dir, SpoolMaxBytes: 1 << 20, RetryMin: 20 * time.Millisecond, RetryMax: 250 * time.Millisecond, Log: quiet()})
	go w.Run()
	defer w.Close(context.Background())

	// 200 calls a second: 1 s up, 2 s cut, 1 s up.
	const n = 800
	for i := 0; i < n; i++ {
		switch i {
		case 200:
			proxy.Refuse()
		case 600:
			proxy.Forward()
		}
		w.Enqueue(entry(i))
		time.Sleep(5 * time.Millisecond)
	}
	waitFor(t, "every entry written and the spool replayed", func() bool { return w.Written() == n && w.SpoolBytes() == 0 })
	wantStored(t, s, n)
	t.Logf("failed writes %d, spilled %d, duplicates %d", w.Failures(), w.Spilled(), w.Duplicates())
	if w.Dropped() != 0 || w.Failures() == 0 || w.Spilled() == 0 {
		t.Fatalf("dropped %d, failed writes %d, spilled %d: want 0, and an outage that spilled", w.Dropped(), w.Failures(), w.Spilled())
	}
	if len(segments(t, dir)) != 0 {
		t.Fatalf("segments left after the replay: %v", segments(t, dir))
	}
}

// A host stopped (SIGTERM) while PostgreSQL hangs: Close gives up the write
// in progress when its context ends, instead of waiting on the database,
// and spools what it holds; a write that the database finishes after all
// is not stored twice when the next writer replays the spool.
func TestPostgresHangAtShutdownSpoolsWithinTheDeadline(t *testing.T) {
	u, err := url.Parse(dbtest.URL(t, db.Postgres))
	if err != nil {
		t.Fatal(err)
	}
	proxy := coretest.NewProxy(t, u.Host)
	u.Host = proxy.Addr
	ctx := context.Background()
	s, err := db.Open(ctx, db.Postgres, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := db.MigrateUp(ctx, s); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	opts := requestlog.Options{QueueSize: 1000, BatchSize: 8, FlushInterval: 10 * time.Millisecond,
		SpoolDir: dir, SpoolMaxBytes: 1 << 20, RetryMin: 20 * time.Millisecond, RetryMax: 250 * time.Millisecond, Log: quiet()}
	a := requestlog.New(s, opts)
	go a.Run()
	const n = 100
	for i := 0; i < n/2; i++ {
		a.Enqueue(entry(i))
	}
	a.Flush(ctx)
	proxy.Hang()
	for i := n / 2; i < n; i++ {
		a.Enqueue(entry(i))
		time.Sleep(time.Millisecond)
	}
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	start := time.Now()
	a.Close(cctx)
	took := time.Since(start)
	cancel()
	if took > 3*time.Second || a.Spilled() == 0 || a.Dropped() != 0 {
		t.Fatalf("Close took %v with a 1 s deadline, spilled %d, dropped %d", took, a.Spilled(), a.Dropped())
	}

	proxy.Forward()
	b := requestlog.New(s, opts)
	go b.Run()
	defer b.Close(ctx)
	waitFor(t, "the spool replayed", func() bool { return b.SpoolBytes() == 0 && len(segments(t, dir)) == 0 })
	wantStored(t, s, n)
	t.Logf("Close took %v; a spilled %d, b found %d already stored", took, a.Spilled(), b.Duplicates())
}
