// Package maintenance runs periodic host tasks (expire rolled keys, prune
// logs). Where several hosts share PostgreSQL, a task runs only on the host
// that holds its advisory lock, so it never runs twice at once.
package maintenance

import (
	"context"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

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
	tasks []Task
	wg    sync.WaitGroup
}

// New returns a scheduler for the given tasks.
func New(store *db.Store, log *slog.Logger, tasks ...Task) *Scheduler {
	return &Scheduler{store: store, log: log, tasks: tasks}
}

// Start runs each task once now and then every interval, until ctx ends.
func (s *Scheduler) Start(ctx context.Context) {
	for _, t := range s.tasks {
		s.wg.Add(1)
		go func(t Task) {
			defer s.wg.Done()
			tick := time.NewTicker(t.Interval)
			defer tick.Stop()
			for {
				s.RunOnce(ctx, t.ID)
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}(t)
	}
}

// Wait returns when every task loop has stopped.
func (s *Scheduler) Wait() { s.wg.Wait() }

// RunOnce runs one task now (under the lease on PostgreSQL) and logs what it
// changed. It reports whether the task ran.
func (s *Scheduler) RunOnce(ctx context.Context, id string) bool {
	for _, t := range s.tasks {
		if t.ID != id {
			continue
		}
		release, ok := s.lease(ctx, t.ID)
		if !ok {
			return false
		}
		defer release()
		// wall clock: how long the task took, for the log
		start := time.Now()
		n, err := t.Run(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("maintenance task failed", "task", t.ID, "err", err)
			}
			return true
		}
		if n > 0 {
			// wall clock: since the start above
			s.log.Info("maintenance task", "task", t.ID, "changed", n, "took", time.Since(start).Round(time.Millisecond))
		} else {
			s.log.Debug("maintenance task", "task", t.ID, "changed", 0)
		}
		return true
	}
	return false
}

// lease takes a session-level advisory lock on PostgreSQL; SQLite has a
// single writer host, so no lease is needed.
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
