package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core/coretest"
	"github.com/indigo-hq/indigo/core/notify"
	"github.com/indigo-hq/indigo/db"
	"github.com/indigo-hq/indigo/db/dbtest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const secret = "0123456789abcdef-test-secret"

func TestVerifySignature(t *testing.T) {
	body := []byte(`{"id":"evt_1","type":"key.created"}`)
	ts := "1772366400"
	sig := notify.Sign(secret, ts, body)
	if !strings.HasPrefix(sig, "sha256=") || len(sig) != len("sha256=")+64 {
		t.Fatalf("signature %q is not sha256=<64 hex>", sig)
	}
	if !notify.VerifySignature(secret, ts, body, sig) {
		t.Fatal("a valid signature was rejected")
	}
	changedBody := []byte(`{"id":"evt_1","type":"key.revoked"}`)
	for name, ok := range map[string]bool{
		"changed body":      notify.VerifySignature(secret, ts, changedBody, sig),
		"body plus a byte":  notify.VerifySignature(secret, ts, append(append([]byte{}, body...), ' '), sig),
		"changed timestamp": notify.VerifySignature(secret, "1772366401", body, sig),
		"empty timestamp":   notify.VerifySignature(secret, "", body, sig),
		"changed secret":    notify.VerifySignature(secret+"x", ts, body, sig),
		"empty secret":      notify.VerifySignature("", ts, body, notify.Sign("", ts, body)),
		"no sha256= prefix": notify.VerifySignature(secret, ts, body, strings.TrimPrefix(sig, "sha256=")),
		"not hex":           notify.VerifySignature(secret, ts, body, "sha256=zz"+sig[9:]),
		"truncated":         notify.VerifySignature(secret, ts, body, sig[:len(sig)-2]),
		"empty header":      notify.VerifySignature(secret, ts, body, ""),
	} {
		if ok {
			t.Errorf("%s: accepted", name)
		}
	}
}

type request struct {
	header http.Header
	body   []byte
}

func TestWebhookRequest(t *testing.T) {
	var got []request
	var mu sync.Mutex
	status := atomic.Int64{}
	status.Store(http.StatusNoContent)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, request{r.Header.Clone(), b})
		mu.Unlock()
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		if s := int(status.Load()); s == http.StatusFound {
			http.Redirect(w, r, "/elsewhere", s)
		} else {
			w.WriteHeader(s)
			_, _ = io.WriteString(w, "answer")
		}
	}))
	defer srv.Close()
	exp := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	ev := notify.NewEvent(notify.KeyCreated, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), "org_1",
		notify.Key{ID: "key_1", Name: "ci", Prefix: "indigo_sk", Last4: "abcd", ExpiresAt: &exp}, "user:u1")
	w := &notify.Webhook{URL: srv.URL + "/hook", Secret: secret}
	ctx := context.Background()
	before := time.Now().Unix()
	if err := w.Notify(ctx, ev); err != nil {
		t.Fatalf("204 was not a delivery: %v", err)
	}
	r := got[0]
	for h, want := range map[string]string{
		"Content-Type": "application/json", notify.HeaderEvent: notify.KeyCreated, notify.HeaderDelivery: ev.ID,
	} {
		if r.header.Get(h) != want {
			t.Errorf("%s = %q, want %q", h, r.header.Get(h), want)
		}
	}
	ts := r.header.Get(notify.HeaderTimestamp)
	var sec int64
	if _, err := fmt.Sscanf(ts, "%d", &sec); err != nil || sec < before || sec > time.Now().Unix() {
		t.Errorf("timestamp %q is not the Unix time of sending", ts)
	}
	if !notify.VerifySignature(secret, ts, r.body, r.header.Get(notify.HeaderSignature)) {
		t.Error("the request's signature does not verify")
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatal(err)
	}
	key, _ := m["key"].(map[string]any)
	if m["id"] != ev.ID || m["type"] != "key.created" || m["time"] != "2026-03-01T12:00:00Z" || m["org_id"] != "org_1" ||
		m["actor"] != "user:u1" || key["id"] != "key_1" || key["name"] != "ci" || key["prefix"] != "indigo_sk" ||
		key["last4"] != "abcd" || key["expires_at"] != "2026-03-04T12:00:00Z" {
		t.Errorf("body = %s", r.body)
	}
	if _, ok := m["successor"]; ok {
		t.Errorf("successor outside key.rolled: %s", r.body)
	}

	for _, code := range []int{http.StatusInternalServerError, http.StatusBadRequest, http.StatusFound} {
		status.Store(int64(code))
		err := w.Notify(ctx, ev)
		var se *notify.StatusError
		if !errors.As(err, &se) || se.Code != code {
			t.Errorf("answer %d: err = %v, want a StatusError", code, err)
		}
	}
	mu.Lock()
	for _, r := range got {
		if r.header.Get(notify.HeaderDelivery) != ev.ID {
			t.Errorf("a retry changed the delivery id: %q", r.header.Get(notify.HeaderDelivery))
		}
	}
	mu.Unlock()

	srv.Close()
	if err := w.Notify(ctx, ev); err == nil {
		t.Error("a closed receiver counted as delivered")
	}
	if err := (&notify.Webhook{URL: srv.URL}).Notify(ctx, ev); err == nil {
		t.Error("a webhook without a secret sent")
	}
}

func TestBackoff(t *testing.T) {
	d := notify.New(nil, quiet, nil)
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	for i, w := range want {
		for range 50 {
			got := d.Backoff(i + 1)
			if got > w || got < w*4/5 {
				t.Fatalf("attempt %d: %v, want %v less at most a fifth", i+1, got, w)
			}
		}
	}
	for _, attempt := range []int{11, 12, 40, 1000} {
		if got := d.Backoff(attempt); got > 10*time.Minute || got < 8*time.Minute {
			t.Fatalf("attempt %d: %v, want the 10 min cap less at most a fifth", attempt, got)
		}
	}
}

// counter is a notifier that counts calls per event and fails while fail
// is set.
type counter struct {
	name  string
	delay time.Duration
	fail  atomic.Bool
	mu    *sync.Mutex
	calls map[string]int
}

func newCounter(name string) *counter {
	return &counter{name: name, mu: &sync.Mutex{}, calls: map[string]int{}}
}

// twin is another notifier with the same name and the same tally, as the
// same notifier on a second host.
func (c *counter) twin() *counter {
	return &counter{name: c.name, delay: c.delay, mu: c.mu, calls: c.calls}
}

func (c *counter) Name() string { return c.name }

func (c *counter) Notify(ctx context.Context, ev notify.Event) error {
	c.mu.Lock()
	c.calls[ev.ID]++
	c.mu.Unlock()
	if c.delay > 0 {
		time.Sleep(c.delay)
	}
	if c.fail.Load() {
		return errors.New("receiver unavailable")
	}
	return nil
}

func (c *counter) total() (events, calls int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.calls {
		events++
		calls += n
	}
	return events, calls
}

func record(t *testing.T, s *db.Store, at time.Time, keyID string) notify.Event {
	t.Helper()
	ev := notify.NewEvent(notify.KeyCreated, at, "org_1", notify.Key{ID: keyID, Name: "k", Prefix: "indigo_sk", Last4: "wxyz"}, "test")
	if err := s.Tx(context.Background(), func(q db.Querier) error {
		_, err := notify.Record(context.Background(), q, ev, "")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return ev
}

func onlyDelivery(t *testing.T, s *db.Store, keyID, notifier string) notify.Delivery {
	t.Helper()
	ds, err := notify.Deliveries(context.Background(), s, keyID)
	if err != nil {
		t.Fatal(err)
	}
	var out []notify.Delivery
	for _, d := range ds {
		if d.Notifier == notifier {
			out = append(out, d)
		}
	}
	if len(out) != 1 {
		t.Fatalf("%d %s deliveries for %s: %+v", len(out), notifier, keyID, ds)
	}
	return out[0]
}

// An event written by a transaction that rolls back does not exist; one
// that commits is delivered by a dispatcher that was not running when it
// was written (the process died before fan-out).
func TestOutboxFollowsTheTransaction(t *testing.T) {
	for _, engine := range dbtest.Engines {
		t.Run(engine, func(t *testing.T) {
			s := dbtest.Open(t, engine)
			ctx := context.Background()
			c := coretest.NewClock()
			ev := notify.NewEvent(notify.KeyRevoked, c.Now(), "org_1", notify.Key{ID: "key_rolledback"}, "test")
			boom := errors.New("change failed")
			if err := s.Tx(ctx, func(q db.Querier) error {
				if _, err := notify.Record(ctx, q, ev, ""); err != nil {
					return err
				}
				return boom
			}); !errors.Is(err, boom) {
				t.Fatal(err)
			}
			committed := record(t, s, c.Now(), "key_committed")

			n := newCounter("count")
			d := notify.New(s, quiet, c.Now, n)
			if err := d.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if events, calls := n.total(); events != 1 || calls != 1 || n.calls[committed.ID] != 1 {
				t.Fatalf("delivered %v, want only the committed event once", n.calls)
			}
			if got := onlyDelivery(t, s, "key_committed", "count"); got.Status != notify.StatusDelivered || got.Attempts != 1 || got.DeliveredAt == nil {
				t.Fatalf("delivery = %+v", got)
			}
		})
	}
}

func TestDedupeKeyWritesOnce(t *testing.T) {
	for _, engine := range dbtest.Engines {
		t.Run(engine, func(t *testing.T) {
			s := dbtest.Open(t, engine)
			ctx := context.Background()
			wrote := 0
			for range 3 {
				ev := notify.NewEvent(notify.KeyExpiringSoon, time.Now(), "org_1", notify.Key{ID: "key_1"}, notify.ActorSystem)
				if err := s.Tx(ctx, func(q db.Querier) error {
					ok, err := notify.Record(ctx, q, ev, notify.ExpiringSoonDedupeKey("key_1", 1234))
					if ok {
						wrote++
					}
					return err
				}); err != nil {
					t.Fatal(err)
				}
			}
			if wrote != 1 {
				t.Fatalf("wrote %d events under one dedupe key", wrote)
			}
		})
	}
}

func TestRetriesStopAtMaxAttempts(t *testing.T) {
	for _, engine := range dbtest.Engines {
		t.Run(engine, func(t *testing.T) {
			s := dbtest.Open(t, engine)
			ctx := context.Background()
			c := coretest.NewClock()
			n := newCounter("count")
			n.fail.Store(true)
			d := notify.New(s, quiet, c.Now, n)
			d.MaxAttempts = 4
			ev := record(t, s, c.Now(), "key_1")
			for i := range 10 {
				if err := d.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				// A retry is not due before its backoff.
				if err := d.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				if _, calls := n.total(); calls != min(i+1, 4) {
					t.Fatalf("round %d: %d attempts", i, calls)
				}
				c.Advance(11 * time.Minute)
			}
			got := onlyDelivery(t, s, "key_1", "count")
			if got.Status != notify.StatusFailed || got.Attempts != 4 || got.LastError != "receiver unavailable" || got.DeliveredAt != nil {
				t.Fatalf("delivery = %+v", got)
			}
			if n.calls[ev.ID] != 4 {
				t.Fatalf("attempts per event: %v", n.calls)
			}
		})
	}
}

// The first retries come 1 s, 2 s, 4 s after a failure (less jitter).
func TestRetryIsDueAfterBackoff(t *testing.T) {
	s := dbtest.Open(t, db.SQLite)
	ctx := context.Background()
	c := coretest.NewClock()
	n := newCounter("count")
	n.fail.Store(true)
	d := notify.New(s, quiet, c.Now, n)
	record(t, s, c.Now(), "key_1")
	for i, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		_ = d.Flush(ctx)
		got := onlyDelivery(t, s, "key_1", "count")
		delay := got.NextAttemptAt.Sub(c.Now())
		if got.Status != notify.StatusPending || got.Attempts != int64(i+1) || delay > wait || delay < wait*4/5 {
			t.Fatalf("after attempt %d: %+v (next in %v, want about %v)", i+1, got, delay, wait)
		}
		c.Advance(wait)
	}
	n.fail.Store(false)
	_ = d.Flush(ctx)
	if got := onlyDelivery(t, s, "key_1", "count"); got.Status != notify.StatusDelivered || got.Attempts != 4 || got.LastError != "" {
		t.Fatalf("after recovery: %+v", got)
	}
}

// Two hosts on one database deliver every event to a notifier once, however
// their passes interleave.
func TestTwoDispatchersDeliverEachEventOnce(t *testing.T) {
	for _, engine := range dbtest.Engines {
		t.Run(engine, func(t *testing.T) {
			s1 := dbtest.Open(t, engine)
			s2, err := db.Open(context.Background(), engine, s1.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			ctx := context.Background()
			c := coretest.NewClock()
			const events = 40
			for i := range events {
				record(t, s1, c.Now(), fmt.Sprintf("key_%02d", i))
			}
			n1 := newCounter("count")
			n1.delay = 2 * time.Millisecond
			d1 := notify.New(s1, quiet, c.Now, n1)
			d2 := notify.New(s2, quiet, c.Now, n1.twin())
			for _, d := range []*notify.Dispatcher{d1, d2} {
				d.BatchSize = 3
			}
			var wg sync.WaitGroup
			for _, d := range []*notify.Dispatcher{d1, d2, d1, d2} {
				wg.Go(func() {
					if err := d.Flush(ctx); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			n1.mu.Lock()
			defer n1.mu.Unlock()
			if len(n1.calls) != events {
				t.Fatalf("%d events delivered, want %d", len(n1.calls), events)
			}
			for id, calls := range n1.calls {
				if calls != 1 {
					t.Errorf("event %s delivered %d times", id, calls)
				}
			}
		})
	}
}

// blocker holds Notify until its context ends.
type blocker struct{ started chan struct{} }

func (b *blocker) Name() string { return "block" }

func (b *blocker) Notify(ctx context.Context, ev notify.Event) error {
	close(b.started)
	<-ctx.Done()
	return ctx.Err()
}

// A delivery cut short by shutdown is given back uncounted and due at once.
func TestShutdownReleasesTheClaim(t *testing.T) {
	for _, engine := range dbtest.Engines {
		t.Run(engine, func(t *testing.T) {
			s := dbtest.Open(t, engine)
			c := coretest.NewClock()
			record(t, s, c.Now(), "key_1")
			b := &blocker{started: make(chan struct{})}
			d := notify.New(s, quiet, c.Now, b)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { d.Run(ctx); close(done) }()
			<-b.started
			if got := onlyDelivery(t, s, "key_1", "block"); got.Attempts != 1 || !got.NextAttemptAt.After(c.Now()) {
				t.Fatalf("claimed row = %+v, want attempts 1 under a lease", got)
			}
			cancel()
			<-done
			got := onlyDelivery(t, s, "key_1", "block")
			if got.Status != notify.StatusPending || got.Attempts != 0 || got.NextAttemptAt.After(c.Now()) {
				t.Fatalf("released row = %+v", got)
			}
		})
	}
}

func TestRegisterRefusesDuplicateNames(t *testing.T) {
	d := notify.New(nil, quiet, nil, notify.LogNotifier{})
	defer func() {
		if recover() == nil {
			t.Fatal("a second notifier named log was accepted")
		}
	}()
	d.Register(notify.LogNotifier{Log: quiet})
}

// Settled events older than the retention go, with their deliveries; an
// event with a delivery still pending stays, however old.
func TestPruneKeepsPendingEvents(t *testing.T) {
	for _, engine := range dbtest.Engines {
		t.Run(engine, func(t *testing.T) {
			s := dbtest.Open(t, engine)
			ctx := context.Background()
			c := coretest.NewClock()
			n := newCounter("hook")
			d := notify.New(s, quiet, c.Now, n)
			record(t, s, c.Now(), "key_settled")
			if err := d.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			n.fail.Store(true) // the next event's delivery stays pending
			record(t, s, c.Now(), "key_pending")
			if err := d.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if n, err := notify.Prune(ctx, s, c.Now().Add(notify.Retention-time.Hour)); err != nil || n != 0 {
				t.Fatalf("inside the retention: pruned %d, %v", n, err)
			}
			c.Advance(notify.Retention + time.Hour)
			if n, err := notify.Prune(ctx, s, c.Now()); err != nil || n != 1 {
				t.Fatalf("past the retention: pruned %d, %v; want the settled event only", n, err)
			}
			if ds, _ := notify.Deliveries(ctx, s, "key_settled"); len(ds) != 0 {
				t.Fatalf("deliveries of a pruned event remain: %+v", ds)
			}
			if ds, _ := notify.Deliveries(ctx, s, "key_pending"); len(ds) == 0 {
				t.Fatal("the event with a pending delivery was pruned")
			}
		})
	}
}
