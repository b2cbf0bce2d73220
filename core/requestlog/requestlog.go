// Package requestlog records v2 calls through a bounded in-memory queue
// that a background writer drains in batched transactions, so no request
// waits on a database write. A full queue drops the entry and counts it.
//
// The queue is a slice behind a mutex rather than a channel: an enqueue is
// an append, and the writer is woken once per batch (or by its ticker),
// not once per entry, so that under load it runs a few hundred times a
// second instead of at the request rate.
package requestlog

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/indigo-hq/indigo/db"
)

// Entry is one call.
type Entry struct {
	RequestID string
	OrgID     string
	KeyID     string
	Method    string
	Route     string
	Status    int
	Latency   time.Duration
	Time      time.Time
}

// Writer owns the queue and the background writer.
type Writer struct {
	store    *db.Store
	log      *slog.Logger
	size     int // queue bound
	batch    int
	interval time.Duration

	mu      sync.Mutex
	pending []Entry       // the queue; swapped out whole by the writer
	kick    chan struct{} // capacity 1: a batch is ready

	dropped, written atomic.Uint64

	flushReq chan chan struct{}
	started  atomic.Bool

	// Reused by write, which only the writer goroutine runs.
	spare    []Entry
	rows     []db.InsertRequestLogParams
	stats    map[statKey]int64
	adds     []db.AddKeyStatParams
	days     map[int64]string
	done     chan struct{}
	stopOnce sync.Once
	stop     chan struct{}
}

// New returns a writer; call Run to start it and Close to drain it.
func New(store *db.Store, queueSize, batch int, interval time.Duration, log *slog.Logger) *Writer {
	return &Writer{
		store: store, log: log, size: queueSize, batch: max(batch, 1), interval: interval,
		pending: make([]Entry, 0, min(queueSize, 4096)), kick: make(chan struct{}, 1),
		flushReq: make(chan chan struct{}), done: make(chan struct{}), stop: make(chan struct{}),
	}
}

// Enqueue adds an entry without blocking; it reports false (and counts a
// drop) when the queue is full.
func (w *Writer) Enqueue(e Entry) bool {
	w.mu.Lock()
	n := len(w.pending)
	if n >= w.size {
		w.mu.Unlock()
		w.dropped.Add(1)
		return false
	}
	w.pending = append(w.pending, e)
	w.mu.Unlock()
	if n+1 == w.batch {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	return true
}

// Dropped is the number of entries lost to a full queue.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// Written is the number of entries stored.
func (w *Writer) Written() uint64 { return w.written.Load() }

// Depth is the number of entries waiting.
func (w *Writer) Depth() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

// Run writes batches until Close. It is meant to run in its own goroutine.
func (w *Writer) Run() {
	if !w.started.CompareAndSwap(false, true) {
		return // closed before it ran
	}
	defer close(w.done)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-w.kick:
			w.drain()
		case <-t.C:
			w.drain()
		case ack := <-w.flushReq:
			w.drain()
			close(ack)
		case <-w.stop:
			w.drain()
			return
		}
	}
}

// drain takes everything queued and writes it in batches. The two buffers
// take turns, so a drain allocates nothing once both have grown.
func (w *Writer) drain() {
	w.mu.Lock()
	got := w.pending
	w.pending = w.spare[:0]
	w.mu.Unlock()
	for rest := got; len(rest) > 0; {
		n := min(len(rest), w.batch)
		w.write(rest[:n])
		rest = rest[n:]
	}
	clear(got) // drop the strings it held
	w.spare = got[:0]
}

// Flush writes everything queued so far and returns when it is stored.
func (w *Writer) Flush(ctx context.Context) {
	ack := make(chan struct{})
	select {
	case w.flushReq <- ack:
	case <-w.done:
		return
	case <-ctx.Done():
		return
	}
	select {
	case <-ack:
	case <-ctx.Done():
	}
}

// Close drains the queue and stops the writer. Without Run, it writes what
// is queued itself.
func (w *Writer) Close() {
	w.stopOnce.Do(func() {
		if w.started.CompareAndSwap(false, true) {
			w.drain()
			close(w.done)
		}
		close(w.stop)
	})
	<-w.done
}

type statKey struct {
	keyID, orgID, route string
	day                 int64 // days since the Unix epoch, UTC
	status              int
}

// write stores a batch and its daily roll-up in one transaction.
func (w *Writer) write(buf []Entry) {
	if len(buf) == 0 {
		return
	}
	if w.stats == nil {
		w.stats, w.days = map[statKey]int64{}, map[int64]string{}
	}
	clear(w.stats)
	stats := w.stats
	rows := slices.Grow(w.rows[:0], len(buf))[:len(buf)]
	w.rows = rows
	for i, e := range buf {
		at := e.Time.UnixMilli()
		rows[i] = db.InsertRequestLogParams{
			RequestID: e.RequestID, OrgID: e.OrgID, KeyID: e.KeyID, Method: e.Method, Route: e.Route,
			Status: int64(e.Status), LatencyUs: e.Latency.Microseconds(), CreatedAt: at,
		}
		if e.KeyID != "" {
			stats[statKey{e.KeyID, e.OrgID, e.Route, at / 86_400_000, e.Status}]++
		}
	}
	adds := w.adds[:0]
	for k, n := range stats {
		day, ok := w.days[k.day]
		if !ok {
			day = time.UnixMilli(k.day * 86_400_000).UTC().Format("2006-01-02")
			if len(w.days) > 64 {
				clear(w.days)
			}
			w.days[k.day] = day
		}
		adds = append(adds, db.AddKeyStatParams{
			KeyID: k.keyID, OrgID: k.orgID, Day: day, Route: k.route, Status: int64(k.status), Count: n,
		})
	}
	w.adds = adds
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.store.WriteRequestLogs(ctx, rows, adds); err != nil {
		// The batch is lost; count it as dropped rather than retry forever.
		w.dropped.Add(uint64(len(buf)))
		w.log.Error("request log: write batch", "entries", len(buf), "err", err)
	} else {
		w.written.Add(uint64(len(buf)))
	}
}

// Prune deletes log rows older than retention.
func Prune(ctx context.Context, store *db.Store, now time.Time, retention time.Duration) (int64, error) {
	before := now.Add(-retention).UnixMilli()
	// PostgreSQL drops the whole days past retention; what is left of a
	// partly retained day goes row by row, as on SQLite.
	dropped, err := store.DropLogPartitionsBefore(ctx, before)
	if err != nil {
		return dropped, err
	}
	n, err := store.Q().PruneRequestLogs(ctx, before)
	return dropped + n, err
}
