// Package requestlog records v2 calls through a bounded in-memory queue
// that a background writer drains in batched transactions, so no request
// waits on a database write.
//
// The queue is a slice behind a mutex rather than a channel: an enqueue is
// an append, and the writer is woken once per batch (or by its ticker),
// not once per entry, so that under load it runs a few hundred times a
// second instead of at the request rate.
//
// Nothing is lost while the database is unreachable or slower than the
// calls. A failed batch stays with the writer, which tries it again with
// backoff; meanwhile the queue fills, and past three quarters of its size a
// spill goroutine moves it into the spool on disk (spool.go), which the
// writer replays once the database answers, and at the next start. Every
// batch has an id that the database records with it, so a retry or a replay
// of a batch already stored stores nothing twice. An entry is dropped, and
// counted, only when both the queue and the spool are full.
package requestlog

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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

// Store is where the writer puts batches; *db.Store is one.
type Store interface {
	WriteRequestLogBatch(ctx context.Context, mark db.MarkRequestLogBatchParams, logs []db.InsertRequestLogParams, stats []db.AddKeyStatParams) (dup bool, err error)
}

// Options configure a Writer.
type Options struct {
	// QueueSize bounds the entries queued in memory ([api] log_queue_size).
	// Past three quarters of it the queue goes to the spool.
	QueueSize     int
	BatchSize     int           // entries per transaction
	FlushInterval time.Duration // how long a partial batch waits
	// SpoolDir holds what the queue cannot, up to SpoolMaxBytes
	// ([api] log_spool_max_bytes). Without it a full queue drops entries.
	SpoolDir      string
	SpoolMaxBytes int64
	// RetryMin and RetryMax bound the backoff between attempts while the
	// database fails (100 ms and 5 s when zero).
	RetryMin, RetryMax time.Duration
	Log                *slog.Logger
	Now                func() time.Time // stamps the batch marks; time.Now when nil
}

// writeTimeout bounds one batch's transaction.
const writeTimeout = 30 * time.Second

// Writer owns the queue, the spool and the background writer.
type Writer struct {
	store              Store
	log                *slog.Logger
	size               int // queue bound
	mark               int // entries in memory past which the queue is spilled
	batch              int
	interval           time.Duration
	retryMin, retryMax time.Duration
	spoolDir           string
	spoolMax           int64
	now                func() time.Time

	mu      sync.Mutex
	pending []Entry // the queue; swapped out whole by the writer and the spiller
	// hand holds the batches left over from a failed write, oldest first.
	// The writer retries the first; the spiller may take the others.
	hand      []batch
	held      int  // entries in hand
	spillable int  // entries in hand after the first batch
	spillOn   bool // the spool is open and has room
	closed    bool
	kick      chan struct{} // capacity 1: a batch is ready
	spillKick chan struct{} // capacity 1: memory is past the mark

	dropped, written, dups, spilled, failures atomic.Uint64
	spoolRef                                  atomic.Pointer[spool] // for readers outside the writer

	flushReq chan chan struct{}
	started  atomic.Bool
	ctx      context.Context // ends when Close's context does
	cancel   context.CancelFunc
	closeCtx context.Context // Close's, for the last writes
	done     chan struct{}
	stopOnce sync.Once
	stop     chan struct{}

	// The writer goroutine's own (the spiller shares the spool, which locks).
	spool  *spool
	replay *segReader // the spool segment being replayed
	spare  []Entry
	rows   []db.InsertRequestLogParams
	stats  map[statKey]int64
	adds   []db.AddKeyStatParams
	days   map[int64]string

	spillSpare []Entry // the spiller's own
}

// batch is what one transaction writes, under an id that makes writing it
// again harmless.
type batch struct {
	id      string
	entries []Entry
}

// New returns a writer; call Run to start it and Close to stop it.
func New(store Store, o Options) *Writer {
	size := max(o.QueueSize, 1)
	w := &Writer{
		store: store, log: o.Log, size: size, mark: max(1, size-max(1, size/4)), batch: max(o.BatchSize, 1),
		interval: o.FlushInterval, retryMin: o.RetryMin, retryMax: o.RetryMax, spoolDir: o.SpoolDir, spoolMax: o.SpoolMaxBytes, now: o.Now,
		pending: make([]Entry, 0, min(size, 4096)), kick: make(chan struct{}, 1), spillKick: make(chan struct{}, 1),
		flushReq: make(chan chan struct{}), done: make(chan struct{}), stop: make(chan struct{}),
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	if w.now == nil {
		w.now = time.Now
	}
	if w.interval <= 0 {
		w.interval = 500 * time.Millisecond
	}
	if w.retryMin <= 0 {
		w.retryMin = 100 * time.Millisecond
	}
	if w.retryMax < w.retryMin {
		w.retryMax = max(5*time.Second, w.retryMin)
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	return w
}

// Enqueue adds an entry without blocking or touching the disk; it reports
// false (and counts a drop) when the queue is full, which happens only when
// the spool is full too, or missing.
func (w *Writer) Enqueue(e Entry) bool {
	w.mu.Lock()
	n := len(w.pending)
	if n >= w.size || w.closed {
		w.mu.Unlock()
		w.dropped.Add(1)
		return false
	}
	w.pending = append(w.pending, e)
	spill := w.spillOn && n+1+w.spillable >= w.mark
	w.mu.Unlock()
	if n+1 == w.batch {
		nudge(w.kick)
	}
	if spill {
		nudge(w.spillKick)
	}
	return true
}

func nudge(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Dropped is the number of entries lost: the queue and the spool were full.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// Written is the number of entries stored (or found stored already).
func (w *Writer) Written() uint64 { return w.written.Load() }

// Duplicates is the number of entries whose batch was found stored already
// when it was written again.
func (w *Writer) Duplicates() uint64 { return w.dups.Load() }

// Spilled is the number of entries that went to the spool.
func (w *Writer) Spilled() uint64 { return w.spilled.Load() }

// Failures is the number of batch writes that failed (and were retried).
func (w *Writer) Failures() uint64 { return w.failures.Load() }

// SpoolBytes is the size of the spool on disk.
func (w *Writer) SpoolBytes() int64 {
	if sp := w.spoolRef.Load(); sp != nil {
		return sp.bytes()
	}
	return 0
}

// Depth is the number of entries waiting in memory.
func (w *Writer) Depth() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending) + w.held
}

// Collectors are the spool's series for /metrics (the drops and the depth
// are registered with the API's).
func (w *Writer) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "indigo_request_log_spool_bytes", Help: "Request log entries waiting on disk for the database, in bytes.",
		}, func() float64 { return float64(w.SpoolBytes()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "indigo_request_log_spilled_total", Help: "Request log entries moved to the spool on disk (database unreachable or behind).",
		}, func() float64 { return float64(w.Spilled()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "indigo_request_log_write_failures_total", Help: "Request log batch writes that failed and were retried.",
		}, func() float64 { return float64(w.Failures()) }),
	}
}

// Run writes batches until Close. It is meant to run in its own goroutine.
func (w *Writer) Run() {
	if !w.started.CompareAndSwap(false, true) {
		return // closed before it ran
	}
	defer close(w.done)
	w.openSpool()
	spiller := make(chan struct{})
	go func() { defer close(spiller); w.spillLoop() }()
	t := time.NewTicker(w.interval)
	defer t.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	var (
		backoff time.Duration
		retryC  <-chan time.Time // set while the database fails
		tries   int              // failed attempts in a row
	)
	attempt := func(replay int) {
		err := w.work(w.ctx, replay)
		if err == nil {
			if backoff > 0 {
				w.log.Info("request log: the database takes writes again", "failed_attempts", tries, "spool_bytes", w.SpoolBytes())
				w.resumeSpill()
			}
			backoff, retryC, tries = 0, nil, 0
			return
		}
		if tries++; tries == 1 || tries%64 == 0 { // then about every 5 minutes
			w.log.Error("request log: write failed; retrying with backoff, and spooling to disk past the memory budget",
				"failed_attempts", tries, "depth", w.Depth(), "spool_bytes", w.SpoolBytes(), "err", err)
		}
		backoff = min(max(2*backoff, w.retryMin), w.retryMax)
		retry.Reset(jitter(backoff))
		retryC = retry.C
	}
	if n := w.SpoolBytes(); n > 0 {
		w.log.Info("request log: replaying the spool a previous run left", "dir", w.spoolDir, "bytes", n)
		attempt(w.size)
	}
	for {
		select {
		case <-w.kick:
			if retryC == nil {
				attempt(w.size)
			}
		case <-t.C:
			if retryC == nil {
				attempt(w.size)
			}
		case <-retryC:
			attempt(w.size)
		case ack := <-w.flushReq:
			attempt(-1)
			close(ack)
		case <-w.stop:
			retry.Stop()
			<-spiller
			w.finish()
			return
		}
	}
}

// jitter spreads retries over ±25%, so that hosts do not come back at once.
func jitter(d time.Duration) time.Duration {
	return d*3/4 + rand.N(d/2+1)
}

// work writes what the writer holds, then the queue, then about replay
// entries of the spool (all of it when replay < 0). On an error, what it
// could not write stays in its hand.
func (w *Writer) work(ctx context.Context, replay int) error {
	for {
		b, ok := w.first()
		if !ok {
			break
		}
		if err := w.write(ctx, b); err != nil {
			return err
		}
		w.dropFirst()
	}
	if err := w.drain(ctx); err != nil {
		return err
	}
	return w.replaySome(ctx, replay)
}

// first is the batch to try again, if any.
func (w *Writer) first() (batch, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.hand) == 0 {
		return batch{}, false
	}
	return w.hand[0], true
}

// dropFirst forgets the first batch in hand, now stored.
func (w *Writer) dropFirst() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.hand[0] = batch{}
	w.hand = w.hand[1:]
	if len(w.hand) == 0 {
		w.hand = nil
	}
	w.countHand()
}

// keep puts batches that failed, or were not tried, into the hand.
func (w *Writer) keep(bs ...batch) {
	w.mu.Lock()
	w.hand = append(w.hand, bs...)
	w.countHand()
	spill := w.spillOn && len(w.pending)+w.spillable >= w.mark
	w.mu.Unlock()
	if spill {
		nudge(w.spillKick)
	}
}

func (w *Writer) countHand() {
	w.held, w.spillable = 0, 0
	for i, b := range w.hand {
		w.held += len(b.entries)
		if i > 0 {
			w.spillable += len(b.entries)
		}
	}
}

// drain takes everything queued and writes it in batches. The two buffers
// take turns, so a drain allocates nothing once both have grown.
func (w *Writer) drain(ctx context.Context) error {
	w.mu.Lock()
	got := w.pending
	w.pending = w.spare[:0]
	w.mu.Unlock()
	for rest := got; len(rest) > 0; {
		n := min(len(rest), w.batch)
		b := batch{newID(rest[0].Time), rest[:n]}
		if err := w.write(ctx, b); err != nil {
			w.keep(appendBatches([]batch{b}, rest[n:], w.batch)...)
			w.spare = nil // got is in hand
			return err
		}
		rest = rest[n:]
	}
	clear(got) // drop the strings it held
	w.spare = got[:0]
	return nil
}

// appendBatches cuts entries into batches of at most n, each with its id.
func appendBatches(bs []batch, entries []Entry, n int) []batch {
	for len(entries) > 0 {
		k := min(len(entries), n)
		bs = append(bs, batch{newID(entries[0].Time), entries[:k]})
		entries = entries[k:]
	}
	return bs
}

// replaySome writes the spool's batches, oldest first: about budget
// entries, then it asks to be run again, so that the queue is not kept
// waiting behind a large spool; all of them when budget < 0.
func (w *Writer) replaySome(ctx context.Context, budget int) error {
	if w.spool == nil || budget == 0 {
		return nil
	}
	for all := budget < 0; all || budget > 0; {
		if w.replay == nil {
			seg, ok := w.spool.oldest()
			if !ok {
				return nil
			}
			sr, err := openSegment(seg)
			if err != nil {
				w.discard(seg, err)
				continue
			}
			w.replay = sr
		}
		b, err := w.replay.batch()
		if err != nil {
			sr := w.replay
			w.replay = nil
			sr.close()
			if sr.bad > 0 {
				w.dropped.Add(uint64(sr.bad))
				w.log.Error("request log spool: lines that do not decode were skipped", "path", sr.seg.path, "lines", sr.bad)
			}
			if err != io.EOF {
				w.discard(sr.seg, err)
				continue
			}
			// Every batch of the segment is stored: it can go. Should the
			// host die before the delete, its replay finds them stored.
			w.spool.remove(sr.seg)
			w.resumeSpill()
			continue
		}
		if err := w.write(ctx, b); err != nil {
			w.keep(b)
			return err
		}
		budget -= len(b.entries)
	}
	nudge(w.kick)
	return nil
}

// discard sets aside a segment that cannot be read, under a name that is
// not replayed, for someone to look at.
func (w *Writer) discard(seg segment, err error) {
	w.log.Error("request log spool: unreadable segment set aside", "path", seg.path+".bad", "err", err)
	_ = os.Rename(seg.path, seg.path+".bad")
	w.spool.remove(seg)
}

// resumeSpill lets the spiller try the spool again after it was full.
func (w *Writer) resumeSpill() {
	if w.spool == nil {
		return
	}
	w.mu.Lock()
	on := !w.spillOn && !w.closed
	if on {
		w.spillOn = true
	}
	w.mu.Unlock()
	if on {
		nudge(w.spillKick)
	}
}

func (w *Writer) openSpool() {
	if w.spoolDir == "" || w.spoolMax <= 0 {
		return
	}
	sp, err := openSpool(w.spoolDir, w.spoolMax, w.log)
	if err != nil {
		w.log.Error("request log: no spool, so a full queue drops entries", "dir", w.spoolDir, "err", err)
		return
	}
	w.spool = sp
	w.spoolRef.Store(sp)
	w.mu.Lock()
	w.spillOn = !w.closed
	w.mu.Unlock()
}

func (w *Writer) spillLoop() {
	if w.spool == nil {
		return
	}
	for {
		select {
		case <-w.spillKick:
			w.spill()
		case <-w.stop:
			return
		}
	}
}

// spill moves the queue, and the writer's hand but for the batch it
// retries, to the spool once they are past the mark. When the spool is
// full, what it cannot take goes back to the queue as far as there is
// room, and the rest is dropped.
func (w *Writer) spill() {
	w.mu.Lock()
	if !w.spillOn || len(w.pending)+w.spillable < w.mark {
		w.mu.Unlock()
		return
	}
	var out []batch
	if len(w.hand) > 1 {
		out = append(out, w.hand[1:]...) // never tried: the writer tries only the first
		clear(w.hand[1:])
		w.hand = w.hand[:1]
		w.countHand()
	}
	got := w.pending
	w.pending = w.spillSpare[:0]
	w.mu.Unlock()
	out = appendBatches(out, got, w.batch)
	total := 0
	for _, b := range out {
		total += len(b.entries)
	}
	rest, err := w.spool.append(out)
	left := 0
	for _, b := range rest {
		left += len(b.entries)
	}
	w.spilled.Add(uint64(total - left))
	if left > 0 {
		back := make([]Entry, 0, left)
		for _, b := range rest {
			back = append(back, b.entries...)
		}
		w.mu.Lock()
		w.spillOn = false
		keep := min(w.size-len(w.pending), left)
		w.pending = append(back[:keep], w.pending...)
		w.mu.Unlock()
		w.dropped.Add(uint64(left - keep))
		w.log.Error("request log: the spool is full; entries are dropped once the queue is full too",
			"spool_bytes", w.spool.bytes(), "max_bytes", w.spoolMax, "dropped", left-keep, "err", err)
	}
	clear(got)
	w.spillSpare = got[:0]
}

// finish runs once, at Close: the last writes of what memory holds, within
// Close's context, and then whatever is left goes to the spool. The spool
// itself waits for the next start rather than hold up the shutdown.
func (w *Writer) finish() {
	ctx := w.closeCtx
	if ctx.Err() == nil {
		if err := w.work(ctx, 0); err != nil {
			w.log.Warn("request log: the last writes failed; spooling what is left", "err", err)
		}
	}
	w.mu.Lock()
	left := appendBatches(w.hand, w.pending, w.batch)
	w.pending, w.hand, w.closed, w.spillOn = nil, nil, true, false
	w.countHand()
	w.mu.Unlock()
	n := 0
	for _, b := range left {
		n += len(b.entries)
	}
	if w.replay != nil {
		w.replay.close()
		w.replay = nil
	}
	if w.spool == nil && n > 0 {
		w.openSpool() // Close without Run: the folder is made only when needed
	}
	if w.spool != nil {
		if len(left) > 0 {
			var err error
			if left, err = w.spool.append(left); err != nil {
				w.log.Error("request log: spool at close", "err", err)
			}
		}
		if err := w.spool.close(); err != nil {
			w.log.Error("request log: close the spool", "err", err)
		}
	}
	lost := 0
	for _, b := range left {
		lost += len(b.entries)
	}
	w.spilled.Add(uint64(n - lost))
	if lost > 0 {
		w.dropped.Add(uint64(lost))
		w.log.Error("request log: entries lost at close (no database, and no room in the spool)", "entries", lost)
	}
}

// Flush writes everything queued or spooled so far and returns when it is
// stored, when a write fails, or when ctx ends.
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

// Close stops the writer: it writes what it can while ctx lasts (a write in
// progress is abandoned when ctx ends) and spools the rest, so a restart
// replays it. Without Run, it does the same itself.
func (w *Writer) Close(ctx context.Context) {
	w.stopOnce.Do(func() {
		w.closeCtx = ctx
		release := context.AfterFunc(ctx, w.cancel)
		defer release()
		if w.started.CompareAndSwap(false, true) {
			w.finish()
			close(w.done)
		}
		close(w.stop)
		<-w.done
		w.cancel()
	})
	<-w.done
}

// newID names a batch: its first entry's time in milliseconds (so that
// marks go in near the end of their index) and 64 random bits, in hex.
func newID(t time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(max(t.UnixMilli(), 0)))
	binary.BigEndian.PutUint64(b[8:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

type statKey struct {
	keyID, orgID, route string
	day                 int64 // days since the Unix epoch, UTC
	status              int
}

// write stores a batch and its daily roll-up in one transaction.
func (w *Writer) write(ctx context.Context, b batch) error {
	buf := b.entries
	if len(buf) == 0 {
		return nil
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
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	dup, err := w.store.WriteRequestLogBatch(ctx, db.MarkRequestLogBatchParams{ID: b.id, CreatedAt: w.now().UnixMilli()}, rows, adds)
	clear(rows) // no strings kept alive between batches
	if err != nil {
		w.failures.Add(1)
		return err
	}
	if dup {
		w.dups.Add(uint64(len(buf)))
	}
	w.written.Add(uint64(len(buf)))
	return nil
}

// markRetention is how long a stored batch's mark is kept. A batch is
// written again within an outage (from memory), or when a host replays its
// spool at its next start: a week covers a host down that long.
const markRetention = 7 * 24 * time.Hour

// Prune deletes log rows older than retention, and the batch marks older
// than markRetention.
func Prune(ctx context.Context, store *db.Store, now time.Time, retention time.Duration) (int64, error) {
	before := now.Add(-retention).UnixMilli()
	// PostgreSQL drops the whole days past retention; what is left of a
	// partly retained day goes row by row, as on SQLite.
	dropped, err := store.DropLogPartitionsBefore(ctx, before)
	if err != nil {
		return dropped, err
	}
	n, err := store.Q().PruneRequestLogs(ctx, before)
	if err != nil {
		return dropped + n, err
	}
	_, err = store.Q().PruneRequestLogBatches(ctx, now.Add(-markRetention).UnixMilli())
	return dropped + n, err
}
