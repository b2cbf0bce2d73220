package metering

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/indigo-hq/indigo/db"
)

// Backlog keeps the calls let through while the metering provider was
// unreachable (fail open), so that they are charged once it is back. The
// request path only enqueues; a background writer saves them.
type Backlog struct {
	store   *db.Store
	log     *slog.Logger
	now     func() time.Time
	ch      chan Call
	dropped atomic.Int64
}

// NewBacklog returns a backlog with room for size calls in memory.
func NewBacklog(store *db.Store, log *slog.Logger, now func() time.Time, size int) *Backlog {
	return &Backlog{store: store, log: log, now: now, ch: make(chan Call, size)}
}

// Record queues a call that was allowed unmetered. It never blocks: when
// the queue is full the call is counted as dropped and logged.
func (b *Backlog) Record(c Call) {
	select {
	case b.ch <- c:
	default:
		b.dropped.Add(1)
		b.log.Error("unmetered call not recorded: the backlog queue is full", "org_id", c.OrgID, "request_id", c.RequestID)
	}
}

// Dropped is how many calls could not be recorded.
func (b *Backlog) Dropped() int64 { return b.dropped.Load() }

// Run saves queued calls until ctx ends, then saves what is still queued.
func (b *Backlog) Run(ctx context.Context) {
	for {
		select {
		case c := <-b.ch:
			b.save(context.WithoutCancel(ctx), c)
		case <-ctx.Done():
			for {
				select {
				case c := <-b.ch:
					b.save(context.WithoutCancel(ctx), c)
				default:
					return
				}
			}
		}
	}
}

func (b *Backlog) save(ctx context.Context, c Call) {
	_, err := b.store.Q().InsertUnmeteredCall(ctx, db.InsertUnmeteredCallParams{
		OrgID: c.OrgID, KeyID: c.KeyID, Route: c.Route, Cost: c.Cost, RequestID: c.RequestID, CreatedAt: b.now().UnixMilli(),
	})
	if err != nil {
		b.dropped.Add(1)
		b.log.Error("save unmetered call", "err", err, "request_id", c.RequestID)
	}
}

// Reconcile charges saved calls through m, oldest first, with their own
// request ids (so a charge the provider did take before it failed is not
// taken twice). A call the balance no longer covers is settled too, and
// logged: the org overdrew while metering was down. It stops at the first
// failure, when the provider is still unreachable.
func Reconcile(ctx context.Context, store *db.Store, m Meter, now func() time.Time, log *slog.Logger) (int64, error) {
	if m == nil {
		return 0, nil
	}
	calls, err := store.Q().ListUnreconciledCalls(ctx, 500)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, c := range calls {
		err := m.DeductAPICallToken(ctx, Call{OrgID: c.OrgID, KeyID: c.KeyID, Route: c.Route, Cost: c.Cost, RequestID: c.RequestID})
		switch {
		case err == nil:
		case errors.Is(err, ErrInsufficient):
			log.Warn("an unmetered call exceeded the balance when charged later", "org_id", c.OrgID, "request_id", c.RequestID, "cost", c.Cost)
		default:
			return n, err
		}
		if _, err := store.Q().MarkCallReconciled(ctx, db.MarkCallReconciledParams{At: now().UnixMilli(), ID: c.ID}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
