// Package maintenance runs periodic tasks: the host's own (expire rolled
// keys, prune logs) and the modules'. Where several hosts share a
// database, each interval's run happens on one host: a host runs a task
// only after claiming the interval in saas_task_runs, and on PostgreSQL it
// also holds an advisory lock while the task runs, so that two runs never
// overlap.
package maintenance

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"hash/fnv"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/indigo-hq/indigo/db"
)

// Task is one periodic job. Run returns a short summary of what changed.
type Task struct {
	ID       string
	Interval time.Duration
	Run      func(ctx context.Context) (changed int64, err error)
}

// Scheduler runs tasks until stopped.
type Scheduler struct {
	store *db.Store
	log   *slog.Logger
	// Now is the clock that decides when a task is due; time.Now when nil.
	Now func() time.Time
	// Host names this process in saas_task_runs.
	Host string

	mu    sync.Mutex
	tasks []Task
	ctx   context.Context // set by Start
	wg    sync.WaitGroup

	runs         *prometheus.CounterVec
	lastRun      *prometheus.GaugeVec
	lastDuration *prometheus.GaugeVec
}

// New returns a scheduler for the given tasks.
func New(store *db.Store, log *slog.Logger, tasks ...Task) *Scheduler {
	host, _ := os.Hostname()
	var b [3]byte
	_, _ = rand.Read(b[:])
	return &Scheduler{
		// Unique even for several hosts in one process (as tests run them).
		store: store, log: log, tasks: tasks, Host: host + ":" + strconv.Itoa(os.Getpid()) + ":" + hex.EncodeToString(b[:]),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "indigo_task_runs_total", Help: "Periodic task runs on this host, by task and result (ok or error).",
		}, []string{"task", "result"}),
		lastRun: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "indigo_task_last_run_timestamp_seconds", Help: "When this host last ran the task.",
		}, []string{"task"}),
		lastDuration: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "indigo_task_last_duration_seconds", Help: "How long this host's last run of the task took.",
		}, []string{"task"}),
	}
}

// Collectors are the task metrics, for the host's /metrics.
func (s *Scheduler) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.runs, s.lastRun, s.lastDuration}
}

func (s *Scheduler) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	// wall clock: no clock was injected (a scheduler built without a host)
	return time.Now()
}

// Add registers a task; after Start it starts at once.
func (s *Scheduler) Add(t Task) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tasks = append(s.tasks, t)
	if s.ctx != nil {
		s.loop(s.ctx, t)
	}
}

// Start runs each task when it is due (at once when it never ran, or its
// last run anywhere is an interval old), until ctx ends.
func (s *Scheduler) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctx = ctx
	for _, t := range s.tasks {
		s.loop(ctx, t)
	}
}

// loop checks a task four times an interval (at most every 15 s), so that
// a run starts at most a quarter interval late.
func (s *Scheduler) loop(ctx context.Context, t Task) {
	every := min(max(t.Interval/4, time.Millisecond), 15*time.Second)
	s.wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			if s.due(ctx, t) {
				s.run(ctx, t)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
}

// Wait returns when every task loop has stopped.
func (s *Scheduler) Wait() { s.wg.Wait() }

// due claims the task's current interval for this host.
func (s *Scheduler) due(ctx context.Context, t Task) bool {
	now := s.now().UnixMilli()
	q := s.store.Q()
	n, err := q.InsertTaskRun(ctx, db.InsertTaskRunParams{Task: t.ID, Now: now, Host: s.Host})
	if err == nil && n == 0 {
		n, err = q.ClaimTaskRun(ctx, db.ClaimTaskRunParams{Task: t.ID, Now: now, Host: s.Host, DueBy: now - t.Interval.Milliseconds()})
	}
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("maintenance: claim a task run", "task", t.ID, "err", err)
		}
		return false
	}
	return n == 1
}

// RunOnce runs one task now, whether or not it is due (under the lease on
// PostgreSQL), and logs what it changed. It reports whether the task ran.
func (s *Scheduler) RunOnce(ctx context.Context, id string) bool {
	s.mu.Lock()
	var task *Task
	for i := range s.tasks {
		if s.tasks[i].ID == id {
			task = &s.tasks[i]
		}
	}
	s.mu.Unlock()
	if task == nil {
		return false
	}
	now := s.now().UnixMilli()
	if n, err := s.store.Q().InsertTaskRun(ctx, db.InsertTaskRunParams{Task: id, Now: now, Host: s.Host}); err == nil && n == 0 {
		_, _ = s.store.Q().ClaimTaskRun(ctx, db.ClaimTaskRunParams{Task: id, Now: now, Host: s.Host, DueBy: now})
	}
	return s.run(ctx, *task)
}

// run runs t under the lease and records the run.
func (s *Scheduler) run(ctx context.Context, t Task) bool {
	release, ok := s.lease(ctx, t.ID)
	if !ok {
		return false
	}
	defer release()
	// wall clock: how long the task took, for the log and the metrics
	start := time.Now()
	n, err := t.Run(ctx)
	// wall clock: since the start above
	took := time.Since(start)
	errText, result := "", "ok"
	if err != nil {
		errText, result = err.Error(), "error"
	}
	s.runs.WithLabelValues(t.ID, result).Inc()
	s.lastRun.WithLabelValues(t.ID).Set(float64(s.now().UnixMilli()) / 1000)
	s.lastDuration.WithLabelValues(t.ID).Set(took.Seconds())
	if ferr := s.store.Q().FinishTaskRun(context.WithoutCancel(ctx), db.FinishTaskRunParams{
		FinishedAt: s.now().UnixMilli(), DurationMs: took.Milliseconds(), LastError: errText, Task: t.ID,
	}); ferr != nil && !errors.Is(ferr, sql.ErrConnDone) {
		s.log.Warn("maintenance: record a task run", "task", t.ID, "err", ferr)
	}
	switch {
	case err != nil:
		if ctx.Err() == nil {
			s.log.Error("maintenance task failed", "task", t.ID, "err", err)
		}
	case n > 0:
		s.log.Info("maintenance task", "task", t.ID, "changed", n, "took", took.Round(time.Millisecond))
	default:
		s.log.Debug("maintenance task", "task", t.ID, "changed", 0)
	}
	return true
}

// lease takes a session-level advisory lock on PostgreSQL, so that two
// runs of a task never overlap; SQLite has one writer at a time anyway.
func (s *Scheduler) lease(ctx context.Context, id string) (func(), bool) {
	if s.store.Engine != db.Postgres {
		return func() {}, true
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte("indigo:maintenance:" + id))
	key := int64(h.Sum64())
	conn, err := s.store.DB.Conn(ctx)
	if err != nil {
		return nil, false
	}
	var got bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&got); err != nil || !got {
		_ = conn.Close()
		return nil, false
	}
	return func() {
		_, _ = conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock($1)", key)
		_ = conn.Close()
	}, true
}
