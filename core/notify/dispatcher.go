package notify

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/indigo-hq/indigo/db"
)

// Delivery statuses.
const (
	StatusPending   = "pending"
	StatusDelivered = "delivered"
	StatusFailed    = "failed"
)

// Defaults of the Dispatcher's settings.
const (
	DefaultMaxAttempts  = 12
	DefaultPollInterval = time.Second
	DefaultBaseDelay    = time.Second
	DefaultMaxDelay     = 10 * time.Minute
	DefaultTimeout      = 15 * time.Second
	DefaultBatchSize    = 5
	DefaultFanOutWindow = 7 * 24 * time.Hour
)

// maxErrorLen bounds last_error.
const maxErrorLen = 1000

// Dispatcher delivers the events of saas_key_events to its notifiers.
//
// Each pass first fans out: every notifier gets a pending delivery row for
// each event of the last FanOutWindow that it has none for, so an event that
// committed just before a crash is picked up by the next pass of any host.
// Then every notifier claims its due rows, a batch at a time, and calls
// Notify for each. A claim moves next_attempt_at past a lease and counts the
// attempt in one UPDATE (with FOR UPDATE SKIP LOCKED on PostgreSQL), so two
// hosts never deliver the same row at the same moment; attempts fences the
// outcome, so a claim whose lease ran out cannot overwrite a newer one.
//
// The settings are read when a pass starts; change them before Run.
type Dispatcher struct {
	store *db.Store
	log   *slog.Logger
	now   func() time.Time

	// MaxAttempts is how often a delivery is tried before it is failed.
	MaxAttempts int
	// PollInterval is how often Run looks for work without a Wake.
	PollInterval time.Duration
	// BaseDelay is the wait after the first failure; it doubles with every
	// further failure (less up to a fifth, at random) up to MaxDelay.
	BaseDelay, MaxDelay time.Duration
	// Timeout bounds one Notify call.
	Timeout time.Duration
	// BatchSize is how many rows a notifier claims at once. The claim's
	// lease is BatchSize × Timeout plus a minute.
	BatchSize int
	// FanOutWindow is how far back fan-out looks for events a notifier has
	// no delivery for. A notifier registered later gets the events of that
	// window too.
	FanOutWindow time.Duration

	mu        sync.Mutex
	notifiers []Notifier

	wake   chan struct{}
	passMu sync.Mutex // one pass at a time, so Flush sees Run's work done
}

// New returns a dispatcher on store. now is the clock (time.Now when nil);
// it decides when a retry is due, so that tests on a fake clock can move
// it. Notifiers with an empty or repeated name panic, as in Register.
func New(store *db.Store, log *slog.Logger, now func() time.Time, notifiers ...Notifier) *Dispatcher {
	if log == nil {
		log = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	d := &Dispatcher{
		store: store, log: log, now: now,
		MaxAttempts: DefaultMaxAttempts, PollInterval: DefaultPollInterval,
		BaseDelay: DefaultBaseDelay, MaxDelay: DefaultMaxDelay, Timeout: DefaultTimeout,
		BatchSize: DefaultBatchSize, FanOutWindow: DefaultFanOutWindow,
		wake: make(chan struct{}, 1),
	}
	for _, n := range notifiers {
		d.Register(n)
	}
	return d
}

// Register adds a notifier, such as a module subscribing at start. Call it
// before Run; a notifier added later is served from the next pass on. An
// empty name, or one already registered, panics: delivery rows are keyed by
// the name.
func (d *Dispatcher) Register(n Notifier) {
	name := n.Name()
	if name == "" {
		panic("notify: a notifier needs a name")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, o := range d.notifiers {
		if o.Name() == name {
			panic(fmt.Sprintf("notify: notifier %q is registered twice", name))
		}
	}
	d.notifiers = append(d.notifiers, n)
}

// Notifiers returns the names of the registered notifiers.
func (d *Dispatcher) Notifiers() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, len(d.notifiers))
	for i, n := range d.notifiers {
		out[i] = n.Name()
	}
	return out
}

func (d *Dispatcher) snapshot() []Notifier {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Notifier(nil), d.notifiers...)
}

// Wake makes Run look for work now. It never blocks; the key service calls
// it after a change with events commits.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers events until ctx ends: at once, on every Wake and every
// PollInterval. A delivery cut short by ctx is given back, due at once, for
// the next host or the next start.
func (d *Dispatcher) Run(ctx context.Context) {
	poll := d.PollInterval
	if poll <= 0 {
		poll = DefaultPollInterval
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if err := d.pass(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("key notifications: delivery pass", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-t.C:
		}
	}
}

// Flush runs one pass now: it fans out every event committed before the
// call and tries every delivery that is due. It waits for a pass of Run
// that is under way, so that tests can rely on what it returns.
func (d *Dispatcher) Flush(ctx context.Context) error { return d.pass(ctx) }

func (d *Dispatcher) pass(ctx context.Context) error {
	d.passMu.Lock()
	defer d.passMu.Unlock()
	ns := d.snapshot()
	if len(ns) == 0 {
		return nil
	}
	now := d.now()
	var errs []error
	for _, n := range ns {
		if _, err := d.store.Q().FanOutKeyEvents(ctx, db.FanOutKeyEventsParams{
			Notifier: n.Name(), Now: now.UnixMilli(), Since: now.Add(-d.FanOutWindow).UnixMilli(),
		}); err != nil {
			errs = append(errs, fmt.Errorf("fan out to %s: %w", n.Name(), err))
		}
	}
	// Notifiers are independent: a slow webhook does not hold up the log.
	perNotifier := make([]error, len(ns))
	var wg sync.WaitGroup
	for i, n := range ns {
		wg.Go(func() { perNotifier[i] = d.deliverDue(ctx, n) })
	}
	wg.Wait()
	return errors.Join(append(errs, perNotifier...)...)
}

// maxBatches bounds one notifier's work in a pass, so that a pass ends.
const maxBatches = 100

func (d *Dispatcher) deliverDue(ctx context.Context, n Notifier) error {
	batch := max(d.BatchSize, 1)
	timeout := d.timeout()
	lease := time.Duration(batch)*timeout + time.Minute
	for range maxBatches {
		if ctx.Err() != nil {
			return nil
		}
		now := d.now()
		rows, err := d.store.Q().ClaimDeliveries(ctx, db.ClaimDeliveriesParams{
			Notifier: n.Name(), Now: now.UnixMilli(), LeaseUntil: now.Add(lease).UnixMilli(), Lim: int64(batch),
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("claim deliveries for %s: %w", n.Name(), err)
		}
		// Event ids sort by creation time: oldest first.
		sort.Slice(rows, func(i, j int) bool { return rows[i].EventID < rows[j].EventID })
		for i, r := range rows {
			if ctx.Err() != nil {
				for _, rest := range rows[i:] {
					d.release(rest)
				}
				return nil
			}
			if err := d.deliver(ctx, n, r, timeout); err != nil {
				for _, rest := range rows[i+1:] {
					d.release(rest)
				}
				return err
			}
		}
		if len(rows) < batch {
			return nil
		}
	}
	return nil
}

func (d *Dispatcher) timeout() time.Duration {
	if d.Timeout <= 0 {
		return DefaultTimeout
	}
	return d.Timeout
}

// outcomeCtx writes a delivery's outcome even while the host stops.
func outcomeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

// deliver makes one attempt at a claimed row and records its outcome. It
// returns an error only when the outcome could not be recorded.
func (d *Dispatcher) deliver(ctx context.Context, n Notifier, r db.ClaimDeliveriesRow, timeout time.Duration) error {
	row, err := d.store.Q().GetKeyEvent(ctx, r.EventID)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return d.fail(n, r, fmt.Errorf("event %s no longer exists", r.EventID), 0, true)
		}
		if ctx.Err() != nil {
			d.release(r)
			return nil
		}
		return fmt.Errorf("read event %s: %w", r.EventID, err)
	}
	var ev Event
	if err := json.Unmarshal([]byte(row.Payload), &ev); err != nil {
		return d.fail(n, r, fmt.Errorf("event %s has an unreadable payload: %w", r.EventID, err), 0, true)
	}
	nctx, cancel := context.WithTimeout(ctx, timeout)
	code := new(atomic.Int64)
	err = safeNotify(context.WithValue(nctx, statusKey{}, code), n, ev)
	cancel()
	if err == nil {
		octx, ocancel := outcomeCtx()
		defer ocancel()
		if _, err := d.store.Q().MarkDeliveryDelivered(octx, db.MarkDeliveryDeliveredParams{
			EventID: r.EventID, Notifier: r.Notifier, DeliveredAt: d.now().UnixMilli(),
			LastStatusCode: sql.NullInt64{Int64: code.Load(), Valid: code.Load() > 0},
		}); err != nil {
			return fmt.Errorf("record delivery of %s to %s: %w", r.EventID, r.Notifier, err)
		}
		return nil
	}
	if ctx.Err() != nil {
		// Stopping: this attempt does not count.
		d.release(r)
		return nil
	}
	return d.fail(n, r, err, code.Load(), false)
}

// safeNotify keeps a panicking notifier from taking the host down.
func safeNotify(ctx context.Context, n Notifier, ev Event) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("notifier panicked: %v", p)
		}
	}()
	return n.Notify(ctx, ev)
}

// fail records a failed attempt: pending with the next attempt's time, or
// failed when the attempts are used up (or at once when final).
func (d *Dispatcher) fail(n Notifier, r db.ClaimDeliveriesRow, cause error, code int64, final bool) error {
	now := d.now()
	maxAttempts := max(d.MaxAttempts, 1)
	status, next := StatusPending, now.Add(d.Backoff(int(r.Attempts)))
	if final || r.Attempts >= int64(maxAttempts) {
		status, next = StatusFailed, now
	}
	msg := cause.Error()
	if len(msg) > maxErrorLen {
		msg = strings.ToValidUTF8(msg[:maxErrorLen], "")
	}
	octx, cancel := outcomeCtx()
	defer cancel()
	if _, err := d.store.Q().MarkDeliveryFailedAttempt(octx, db.MarkDeliveryFailedAttemptParams{
		EventID: r.EventID, Notifier: r.Notifier, Attempts: r.Attempts, Status: status, NextAttemptAt: next.UnixMilli(),
		LastError: sql.NullString{String: msg, Valid: true}, LastStatusCode: sql.NullInt64{Int64: code, Valid: code > 0},
	}); err != nil {
		return fmt.Errorf("record failed delivery of %s to %s: %w", r.EventID, r.Notifier, err)
	}
	if status == StatusFailed {
		d.log.Error("key notification failed for good", "notifier", n.Name(), "event_id", r.EventID, "attempts", r.Attempts, "err", msg)
	} else {
		d.log.Warn("key notification failed, will retry", "notifier", n.Name(), "event_id", r.EventID, "attempts", r.Attempts,
			"retry_in", next.Sub(now).Round(time.Millisecond), "err", msg)
	}
	return nil
}

// release gives a claim back uncounted and due at once. Should it fail, the
// row comes due again when its lease runs out.
func (d *Dispatcher) release(r db.ClaimDeliveriesRow) {
	ctx, cancel := outcomeCtx()
	defer cancel()
	if _, err := d.store.Q().ReleaseDelivery(ctx, db.ReleaseDeliveryParams{
		EventID: r.EventID, Notifier: r.Notifier, Attempts: r.Attempts, Now: d.now().UnixMilli(),
	}); err != nil {
		d.log.Warn("key notifications: release delivery", "event_id", r.EventID, "notifier", r.Notifier, "err", err)
	}
}

// Backoff is the wait after the attempt-th failed attempt: BaseDelay ×
// 2^(attempt-1), capped at MaxDelay, less up to a fifth at random so that
// retries of many rows spread out.
func (d *Dispatcher) Backoff(attempt int) time.Duration {
	base, ceil := d.BaseDelay, d.MaxDelay
	if base <= 0 {
		base = DefaultBaseDelay
	}
	if ceil < base {
		ceil = base
	}
	delay := base
	for i := 1; i < attempt && delay < ceil; i++ {
		delay *= 2
	}
	delay = min(delay, ceil)
	if j := int64(delay / 5); j > 0 {
		delay -= time.Duration(rand.Int64N(j))
	}
	return delay
}

// statusKey carries a *atomic.Int64 in which a notifier may report the
// receiver's HTTP status for the delivery log.
type statusKey struct{}

func reportStatus(ctx context.Context, code int) {
	if p, ok := ctx.Value(statusKey{}).(*atomic.Int64); ok {
		p.Store(int64(code))
	}
}

// Delivery is one row of the delivery log.
type Delivery struct {
	EventID        string     `json:"event_id"`
	Type           string     `json:"type"`
	OrgID          string     `json:"org_id"`
	KeyID          string     `json:"key_id"`
	CreatedAt      time.Time  `json:"created_at"`
	Notifier       string     `json:"notifier"`
	Status         string     `json:"status"`
	Attempts       int64      `json:"attempts"`
	NextAttemptAt  time.Time  `json:"next_attempt_at"`
	LastError      string     `json:"last_error,omitempty"`
	LastStatusCode int64      `json:"last_status_code,omitempty"`
	DeliveredAt    *time.Time `json:"delivered_at"`
}

// Deliveries is the delivery log of one key's events, oldest first.
func (d *Dispatcher) Deliveries(ctx context.Context, keyID string) ([]Delivery, error) {
	return Deliveries(ctx, d.store, keyID)
}

// Deliveries is the delivery log of one key's events, oldest first.
func Deliveries(ctx context.Context, store *db.Store, keyID string) ([]Delivery, error) {
	rows, err := store.Q().ListKeyEventDeliveries(ctx, keyID)
	if err != nil {
		return nil, err
	}
	out := make([]Delivery, len(rows))
	for i, r := range rows {
		out[i] = Delivery{
			EventID: r.EventID, Type: r.Type, OrgID: r.OrgID, KeyID: r.KeyID, CreatedAt: time.UnixMilli(r.CreatedAt).UTC(),
			Notifier: r.Notifier, Status: r.Status, Attempts: r.Attempts, NextAttemptAt: time.UnixMilli(r.NextAttemptAt).UTC(),
			LastError: r.LastError.String, LastStatusCode: r.LastStatusCode.Int64, DeliveredAt: msTime(r.DeliveredAt),
		}
	}
	return out, nil
}

// Retention is how long settled events (every delivery delivered or
// failed) and reconciled unmetered calls are kept.
const Retention = 30 * 24 * time.Hour

// Prune deletes settled events older than Retention, with their delivery
// rows, and reconciled unmetered calls older than Retention. An event with
// a delivery still pending is kept, however old.
func Prune(ctx context.Context, s *db.Store, now time.Time) (int64, error) {
	before := now.Add(-Retention).UnixMilli()
	n, err := s.Q().PruneKeyEvents(ctx, before)
	if err != nil {
		return n, err
	}
	m, err := s.Q().PruneReconciledCalls(ctx, before)
	return n + m, err
}
