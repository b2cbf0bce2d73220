package requestlog_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core/requestlog"
	"github.com/indigo-hq/indigo/db"
	"github.com/indigo-hq/indigo/db/dbtest"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func entry(i int) requestlog.Entry {
	return requestlog.Entry{RequestID: fmt.Sprintf("r%05d", i), OrgID: "o", KeyID: "k", Method: "GET", Route: "/x", Status: 200,
		Latency: time.Duration(i) * time.Microsecond, Time: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond)}
}

func TestFullQueueDropsAndCounts(t *testing.T) {
	s := dbtest.Open(t, db.SQLite)
	// No spool: the queue is all there is.
	w := requestlog.New(s, requestlog.Options{QueueSize: 3, BatchSize: 100, FlushInterval: time.Hour, Log: quiet()})
	accepted := 0
	for i := 0; i < 10; i++ {
		if w.Enqueue(requestlog.Entry{RequestID: "r", OrgID: "o", KeyID: "k", Method: "GET", Route: "/x", Status: 200, Time: time.Now()}) {
			accepted++
		}
	}
	if accepted != 3 || w.Dropped() != 7 || w.Depth() != 3 {
		t.Fatalf("accepted %d, dropped %d, depth %d; want 3, 7, 3", accepted, w.Dropped(), w.Depth())
	}
	go w.Run()
	w.Close(context.Background())
	if w.Written() != 3 {
		t.Fatalf("written %d after Close, want 3", w.Written())
	}
}

func TestBatchesAndDailyRollup(t *testing.T) {
	for _, engine := range dbtest.Engines {
		t.Run(engine, func(t *testing.T) {
			s := dbtest.Open(t, engine)
			w := requestlog.New(s, requestlog.Options{QueueSize: 1000, BatchSize: 7, FlushInterval: time.Hour, Log: quiet()})
			go w.Run()
			day1 := time.Date(2026, 5, 1, 23, 59, 0, 0, time.UTC)
			for i := 0; i < 20; i++ {
				at := day1
				if i >= 15 {
					at = day1.Add(2 * time.Minute) // next UTC day
				}
				w.Enqueue(requestlog.Entry{RequestID: "r", OrgID: "o1", KeyID: "k1", Method: "GET", Route: "/api/v2/me", Status: 200, Latency: time.Millisecond, Time: at})
			}
			w.Flush(context.Background())
			days, err := s.Q().KeyStatsByDay(context.Background(), db.KeyStatsByDayParams{OrgID: "o1", KeyID: "k1"})
			if err != nil || len(days) != 2 || days[0].Count != 15 || days[1].Count != 5 || days[1].Day != "2026-05-02" {
				t.Fatalf("days = %+v, %v", days, err)
			}
			w.Close(context.Background())
			n, err := requestlog.Prune(context.Background(), s, day1.Add(time.Minute), 0)
			if err != nil || n != 15 {
				t.Fatalf("pruned %d, %v; want 15", n, err)
			}
			if w.Written() != 20 || w.Dropped() != 0 {
				t.Fatalf("written %d dropped %d", w.Written(), w.Dropped())
			}
		})
	}
}

// A full batch is written without waiting for the ticker or a flush: the
// writer is woken when the queue reaches the batch size.
func TestFullBatchWakesTheWriter(t *testing.T) {
	s := dbtest.Open(t, db.SQLite)
	w := requestlog.New(s, requestlog.Options{QueueSize: 1000, BatchSize: 5, FlushInterval: time.Hour, Log: quiet()})
	go w.Run()
	defer w.Close(context.Background())
	for i := 0; i < 4; i++ {
		w.Enqueue(requestlog.Entry{RequestID: "r", OrgID: "o", KeyID: "k", Method: "GET", Route: "/x", Status: 200, Time: time.Now()})
	}
	time.Sleep(50 * time.Millisecond)
	if n := w.Written(); n != 0 {
		t.Fatalf("written %d before the batch filled, want 0", n)
	}
	w.Enqueue(requestlog.Entry{RequestID: "r", OrgID: "o", KeyID: "k", Method: "GET", Route: "/x", Status: 200, Time: time.Now()})
	deadline := time.Now().Add(5 * time.Second)
	for w.Written() != 5 {
		if time.Now().After(deadline) {
			t.Fatalf("written %d, depth %d: a full batch did not wake the writer", w.Written(), w.Depth())
		}
		time.Sleep(time.Millisecond)
	}
	if w.Depth() != 0 {
		t.Fatalf("depth %d after the batch was written", w.Depth())
	}
}

// flaky is the real store behind a fault: while down, a write fails before
// it reaches the database; a lost answer stores the batch and then reports
// an error, as when the connection drops during COMMIT.
type flaky struct {
	s           *db.Store
	down        atomic.Bool
	loseAnswers atomic.Int64 // the next n writes that reach the database
	// downAfter, when positive, takes the store down after that many more
	// writes reached the database.
	downAfter atomic.Int64
	calls     atomic.Int64
}

var errUnreachable = errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")

func (f *flaky) WriteRequestLogBatch(ctx context.Context, mark db.MarkRequestLogBatchParams, logs []db.InsertRequestLogParams, stats []db.AddKeyStatParams) (bool, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return false, errUnreachable
	}
	dup, err := f.s.WriteRequestLogBatch(ctx, mark, logs, stats)
	if f.downAfter.Load() > 0 && f.downAfter.Add(-1) == 0 {
		f.down.Store(true)
	}
	if err == nil && f.loseAnswers.Load() > 0 && f.loseAnswers.Add(-1) >= 0 {
		return false, errors.New("unexpected EOF") // stored, but the writer cannot know
	}
	return dup, err
}

// stored counts the log rows, the distinct request ids and the daily count.
func stored(t *testing.T, s *db.Store) (rows, distinct, counted int64) {
	t.Helper()
	err := s.DB.QueryRow(`SELECT COUNT(*), COUNT(DISTINCT request_id) FROM saas_api_request_logs`).Scan(&rows, &distinct)
	if err == nil {
		err = s.DB.QueryRow(`SELECT COALESCE(SUM(count), 0) FROM saas_api_key_stats_daily`).Scan(&counted)
	}
	if err != nil {
		t.Fatal(err)
	}
	return rows, distinct, counted
}

// wantStored fails unless exactly the n entries entry(0..n-1) are stored,
// once each, and counted once each in the roll-up.
func wantStored(t *testing.T, s *db.Store, n int) {
	t.Helper()
	rows, distinct, counted := stored(t, s)
	if rows != int64(n) || distinct != int64(n) || counted != int64(n) {
		t.Fatalf("stored %d rows (%d distinct), counted %d; want %d of each", rows, distinct, counted, n)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// enqueuePaced adds entry(from..to-1), each once fewer than limit entries
// wait in memory: requests arriving no faster than the spill goroutine
// moves them to disk, however slowly the scheduler wakes it. With the spill
// mark at three quarters of the queue, limit = mark + batch size (the batch
// the writer retries) is above the mark and below the queue size. When the
// spool is full memory stays full: it stops waiting after the first time out.
func enqueuePaced(t *testing.T, w *requestlog.Writer, from, to, limit int) {
	t.Helper()
	patient := true
	for i := from; i < to; i++ {
		deadline := time.Now().Add(time.Second)
		for patient && w.Depth() >= limit {
			if time.Now().After(deadline) {
				patient = false
			}
			time.Sleep(50 * time.Microsecond)
		}
		w.Enqueue(entry(i))
	}
}

func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Batches that fail while the database is unreachable are kept and tried
// again, not dropped; when the database answers they are stored, and a
// batch whose commit answer was lost is not stored twice.
func TestFailedWritesAreRetriedNotDropped(t *testing.T) {
	s := dbtest.Open(t, db.SQLite)
	f := &flaky{s: s}
	f.down.Store(true)
	w := requestlog.New(f, requestlog.Options{QueueSize: 1000, BatchSize: 10, FlushInterval: 5 * time.Millisecond,
		SpoolDir: t.TempDir(), SpoolMaxBytes: 1 << 20, RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond, Log: quiet()})
	go w.Run()
	defer w.Close(context.Background())
	const n = 95
	for i := 0; i < n; i++ {
		w.Enqueue(entry(i))
	}
	waitFor(t, "failed attempts", func() bool { return w.Failures() >= 3 })
	if rows, _, _ := stored(t, s); rows != 0 || w.Dropped() != 0 || w.Written() != 0 {
		t.Fatalf("during the outage: %d rows stored, %d dropped, %d written", rows, w.Dropped(), w.Written())
	}
	f.loseAnswers.Store(2)
	f.down.Store(false)
	waitFor(t, "every entry written", func() bool { return w.Written() == n })
	wantStored(t, s, n)
	if w.Dropped() != 0 || w.Duplicates() == 0 || w.Spilled() != 0 {
		t.Fatalf("dropped %d, duplicates %d, spilled %d; want 0, some (the lost answers), 0 (memory sufficed)", w.Dropped(), w.Duplicates(), w.Spilled())
	}
}

// With a memory budget of a few entries, an outage moves the queue to
// disk; when the database answers the spool is replayed and deleted, and
// every entry is stored once.
func TestTinyQueueSpillsToDiskAndReplays(t *testing.T) {
	s := dbtest.Open(t, db.SQLite)
	f := &flaky{s: s}
	f.down.Store(true)
	dir := t.TempDir()
	w := requestlog.New(f, requestlog.Options{QueueSize: 16, BatchSize: 3, FlushInterval: 5 * time.Millisecond,
		SpoolDir: dir, SpoolMaxBytes: 1 << 20, RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond, Log: quiet()})
	go w.Run()
	defer w.Close(context.Background())
	const n = 500
	enqueuePaced(t, w, 0, n, 12+3)
	// In memory at most: the queue (16), the batch being retried and the
	// next one taken from the queue (3 each); the rest is on disk.
	if w.Dropped() != 0 || w.Spilled() < n-16-2*3 || w.SpoolBytes() == 0 || len(segments(t, dir)) == 0 {
		t.Fatalf("dropped %d, spilled %d, spool %d bytes in %d segments: the queue did not go to disk",
			w.Dropped(), w.Spilled(), w.SpoolBytes(), len(segments(t, dir)))
	}
	f.down.Store(false)
	// More calls while the spool is replayed.
	enqueuePaced(t, w, n, n+100, 12+3)
	waitFor(t, "every entry written and the spool deleted", func() bool { return w.Written() == n+100 && w.SpoolBytes() == 0 })
	wantStored(t, s, n+100)
	if w.Dropped() != 0 || w.SpoolBytes() != 0 || len(segments(t, dir)) != 0 {
		t.Fatalf("dropped %d; spool %d bytes in %v after the replay", w.Dropped(), w.SpoolBytes(), segments(t, dir))
	}
}

// A host stopped during an outage leaves its queue in the spool; the next
// one replays it at start. If that one stops mid-replay, after storing a
// batch whose segment it could not delete yet, the third stores nothing
// twice.
func TestRestartReplaysTheSpool(t *testing.T) {
	s := dbtest.Open(t, db.SQLite)
	dir := t.TempDir()
	opts := requestlog.Options{QueueSize: 1000, BatchSize: 25, FlushInterval: 5 * time.Millisecond,
		SpoolDir: dir, SpoolMaxBytes: 1 << 20, RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond, Log: quiet()}
	const n = 300

	down := &flaky{s: s}
	down.down.Store(true)
	a := requestlog.New(down, opts)
	go a.Run()
	for i := 0; i < n; i++ {
		a.Enqueue(entry(i))
	}
	waitFor(t, "a failed attempt", func() bool { return a.Failures() > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	a.Close(ctx) // SIGTERM: the database is down, so all of it goes to disk
	cancel()
	if a.Dropped() != 0 || a.Spilled() != n || len(segments(t, dir)) == 0 {
		t.Fatalf("closed in an outage: dropped %d, spilled %d, segments %v", a.Dropped(), a.Spilled(), segments(t, dir))
	}
	if a.Enqueue(entry(n)) || a.Dropped() != 1 {
		t.Fatal("an entry after Close was accepted, or not counted")
	}

	// The second host stores two batches of the spool, and then the
	// database goes away again: the segment stays, and the batch it was
	// trying goes to a new one when it stops.
	flakyB := &flaky{s: s}
	flakyB.downAfter.Store(2)
	b := requestlog.New(flakyB, opts)
	go b.Run()
	waitFor(t, "the database to go away under b", func() bool { return flakyB.down.Load() && b.Failures() > 1 })
	b.Close(context.Background())
	byB, _, _ := stored(t, s)
	if byB == 0 || byB != int64(b.Written()) || b.Dropped() != 0 {
		t.Fatalf("b stored %d rows, wrote %d and dropped %d: want two batches and 0", byB, b.Written(), b.Dropped())
	}

	c := requestlog.New(s, opts)
	go c.Run()
	waitFor(t, "the spool replayed", func() bool { return c.SpoolBytes() == 0 && len(segments(t, dir)) == 0 })
	c.Close(context.Background())
	wantStored(t, s, n)
	if c.Duplicates() < uint64(byB) || c.Dropped() != 0 {
		t.Fatalf("c found %d duplicates and dropped %d; want at least the %d b stored, and 0", c.Duplicates(), c.Dropped(), byB)
	}
}

// An entry is lost only when the memory queue and the disk spool are both
// full, and then it is counted.
func TestDropsOnlyWhenMemoryAndDiskAreFull(t *testing.T) {
	s := dbtest.Open(t, db.SQLite)
	f := &flaky{s: s}
	f.down.Store(true)
	dir := t.TempDir()
	w := requestlog.New(f, requestlog.Options{QueueSize: 16, BatchSize: 3, FlushInterval: 5 * time.Millisecond,
		SpoolDir: dir, SpoolMaxBytes: 4 << 10, RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond, Log: quiet()})
	go w.Run()
	const n = 200
	enqueuePaced(t, w, 0, n, 12+3)
	if w.Dropped() == 0 || w.SpoolBytes() > 4<<10 {
		t.Fatalf("dropped %d with a %d-byte spool of at most 4 KiB", w.Dropped(), w.SpoolBytes())
	}
	f.down.Store(false)
	w.Flush(context.Background())
	w.Close(context.Background())
	rows, distinct, counted := stored(t, s)
	if rows+int64(w.Dropped()) != n || distinct != rows || counted != rows {
		t.Fatalf("stored %d (%d distinct, counted %d) and dropped %d, of %d", rows, distinct, counted, w.Dropped(), n)
	}
}

// The hot path does not wait for the disk or the database: while both are
// slow, Enqueue still returns at once.
func TestEnqueueDoesNotWaitForTheWriter(t *testing.T) {
	s := dbtest.Open(t, db.SQLite)
	gate := make(chan struct{})
	var once sync.Once
	defer once.Do(func() { close(gate) })
	st := storeFunc(func(ctx context.Context, mark db.MarkRequestLogBatchParams, logs []db.InsertRequestLogParams, stats []db.AddKeyStatParams) (bool, error) {
		<-gate
		return s.WriteRequestLogBatch(ctx, mark, logs, stats)
	})
	w := requestlog.New(st, requestlog.Options{QueueSize: 64, BatchSize: 8, FlushInterval: time.Millisecond,
		SpoolDir: t.TempDir(), SpoolMaxBytes: 1 << 20, Log: quiet()})
	go w.Run()
	const n = 2000
	start := time.Now()
	enqueuePaced(t, w, 0, n, 48+8)
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("%d enqueues took %v with the writer stuck", n, d)
	}
	if w.Dropped() != 0 {
		t.Fatalf("dropped %d while the writer was stuck and the spool had room", w.Dropped())
	}
	once.Do(func() { close(gate) })
	w.Flush(context.Background())
	w.Close(context.Background())
	wantStored(t, s, n)
}

type storeFunc func(ctx context.Context, mark db.MarkRequestLogBatchParams, logs []db.InsertRequestLogParams, stats []db.AddKeyStatParams) (bool, error)

func (f storeFunc) WriteRequestLogBatch(ctx context.Context, mark db.MarkRequestLogBatchParams, logs []db.InsertRequestLogParams, stats []db.AddKeyStatParams) (bool, error) {
	return f(ctx, mark, logs, stats)
}

// A line torn by a crash is skipped and counted; the rest of the segment is
// stored.
func TestTornSpoolLineIsSkippedAndCounted(t *testing.T) {
	s := dbtest.Open(t, db.SQLite)
	dir := t.TempDir()
	f := &flaky{s: s}
	f.down.Store(true)
	a := requestlog.New(f, requestlog.Options{QueueSize: 100, BatchSize: 10, FlushInterval: time.Hour, SpoolDir: dir, SpoolMaxBytes: 1 << 20, Log: quiet()})
	for i := 0; i < 30; i++ {
		a.Enqueue(entry(i))
	}
	a.Close(context.Background()) // never ran: Close writes, fails, spools
	segs := segments(t, dir)
	if len(segs) != 1 {
		t.Fatalf("segments %v, want one", segs)
	}
	fh, err := os.OpenFile(segs[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteString(`{"batch":"00000196`); err != nil { // the crash
		t.Fatal(err)
	}
	_ = fh.Close()
	b := requestlog.New(s, requestlog.Options{QueueSize: 100, BatchSize: 10, FlushInterval: time.Hour, SpoolDir: dir, SpoolMaxBytes: 1 << 20, Log: quiet()})
	go b.Run()
	b.Flush(context.Background())
	b.Close(context.Background())
	wantStored(t, s, 30)
	if b.Dropped() != 1 || len(segments(t, dir)) != 0 {
		t.Fatalf("dropped %d (want the torn line), segments left %v", b.Dropped(), segments(t, dir))
	}
}
