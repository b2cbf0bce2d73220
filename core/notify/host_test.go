package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/core/apikey"
	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/core/coretest"
	"github.com/indigo-hq/indigo/core/notify"
	"github.com/indigo-hq/indigo/db"
)

// receiver is a webhook endpoint run by the test. While down it answers
// 500 to everything.
type receiver struct {
	*httptest.Server
	down atomic.Bool
	hits atomic.Int64

	mu       sync.Mutex
	accepted []request // answered 200, in arrival order
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.hits.Add(1)
		if r.down.Load() {
			http.Error(w, "down for maintenance", http.StatusInternalServerError)
			return
		}
		r.mu.Lock()
		r.accepted = append(r.accepted, request{req.Header.Clone(), b})
		r.mu.Unlock()
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) got() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.accepted)
}

// webhookTo points the host's [notifications] at the receiver.
func webhookTo(url string, maxAttempts int) coretest.Option {
	return func(c *config.Config, _ *core.Options) {
		c.Notifications.WebhookURL = url
		c.Notifications.WebhookSecret = secret
		if maxAttempts > 0 {
			c.Notifications.MaxAttempts = maxAttempts
		}
	}
}

// sameDatabase starts the host on an existing database (the same SQLite
// file or PostgreSQL schema), as a restarted process would.
func sameDatabase(url string) coretest.Option {
	return func(c *config.Config, _ *core.Options) { c.Database.URL = url }
}

// verified decodes a webhook request after checking its signature and its
// headers against the body.
func verified(t *testing.T, r request) notify.Event {
	t.Helper()
	if !notify.VerifySignature(secret, r.header.Get(notify.HeaderTimestamp), r.body, r.header.Get(notify.HeaderSignature)) {
		t.Fatalf("bad signature on %s", r.body)
	}
	var ev notify.Event
	if err := json.Unmarshal(r.body, &ev); err != nil {
		t.Fatal(err)
	}
	if r.header.Get("Content-Type") != "application/json" || r.header.Get(notify.HeaderEvent) != ev.Type ||
		r.header.Get(notify.HeaderDelivery) != ev.ID || ev.ID == "" {
		t.Fatalf("headers %v do not match body %s", r.header, r.body)
	}
	return ev
}

func runTask(t *testing.T, e *coretest.Env, id string) {
	t.Helper()
	if !e.Host.Maint.RunOnce(context.Background(), id) {
		t.Fatalf("task %s did not run", id)
	}
}

func flush(t *testing.T, e *coretest.Env) {
	t.Helper()
	if err := e.Host.Notify.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Every kind of key event reaches the webhook once, signed, without the key.
func TestWebhookGetsEveryKeyEventOnce(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		rcv := newReceiver(t)
		e := coretest.New(t, engine, webhookTo(rcv.URL, 0))
		ctx := context.Background()
		org := e.Org("acme")
		user := apikey.Actor{ID: "user:u1"}

		k1, raw1 := e.Key(org, apikey.CreateInput{Name: "ci"})
		if _, err := e.Host.Keys.Update(ctx, org, k1.ID, user, apikey.UpdateInput{Enabled: apikey.Opt[bool]{Set: true, V: false}}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Host.Keys.Update(ctx, org, k1.ID, user, apikey.UpdateInput{Enabled: apikey.Opt[bool]{Set: true, V: true}}); err != nil {
			t.Fatal(err)
		}
		// Enabling an enabled key, or renaming it, is no event.
		if _, err := e.Host.Keys.Update(ctx, org, k1.ID, user, apikey.UpdateInput{
			Enabled: apikey.Opt[bool]{Set: true, V: true}, Name: apikey.Opt[string]{Set: true, V: "ci-main"},
		}); err != nil {
			t.Fatal(err)
		}
		k2, raw2, _, err := e.Host.Keys.Roll(ctx, org, k1.ID, user, nil) // k1 expires in 24 h
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Host.Keys.Revoke(ctx, org, k2.ID, user); err != nil {
			t.Fatal(err)
		}
		rolledExpiry := e.Clock.Now().Add(e.Cfg.API.RollGrace.Duration)
		runTask(t, e, "notify-expiring-keys") // 24 h is within the default 72 h
		runTask(t, e, "notify-expiring-keys") // once per key and expires_at
		flush(t, e)
		e.Clock.Advance(25 * time.Hour)
		runTask(t, e, "expire-keys")
		runTask(t, e, "notify-expiring-keys") // expired keys are not expiring
		flush(t, e)
		flush(t, e)
		time.Sleep(100 * time.Millisecond) // give the background loop a chance to send twice
		flush(t, e)

		got := rcv.got()
		byType := map[string]notify.Event{}
		ids := map[string]bool{}
		for _, r := range got {
			for _, secretPart := range []string{raw1, raw2, apikey.Hash(raw1), apikey.Hash(raw2)} {
				if strings.Contains(string(r.body), secretPart) {
					t.Fatalf("a webhook body carries a key or its hash: %s", r.body)
				}
			}
			ev := verified(t, r)
			if ids[ev.ID] {
				t.Errorf("event %s (%s) delivered twice", ev.ID, ev.Type)
			}
			ids[ev.ID] = true
			if _, dup := byType[ev.Type]; dup {
				t.Errorf("two %s events", ev.Type)
			}
			byType[ev.Type] = ev
			if ev.OrgID != org || ev.Key.Prefix != "indigo_sk" || len(ev.Key.Last4) != 4 || ev.Time.IsZero() {
				t.Errorf("%s: payload %s", ev.Type, r.body)
			}
		}
		want := []string{notify.KeyCreated, notify.KeyDisabled, notify.KeyEnabled, notify.KeyRolled, notify.KeyRevoked,
			notify.KeyExpiringSoon, notify.KeyExpired}
		if len(got) != len(want) {
			var types []string
			for _, r := range got {
				types = append(types, r.header.Get(notify.HeaderEvent))
			}
			t.Fatalf("received %d events %v, want %v", len(got), types, want)
		}
		for _, typ := range want {
			ev, ok := byType[typ]
			if !ok {
				t.Fatalf("no %s event; got %v", typ, byType)
			}
			wantKey, wantActor := k1.ID, "user:u1"
			switch typ {
			case notify.KeyCreated:
				wantActor = "test"
			case notify.KeyRevoked:
				wantKey = k2.ID
			case notify.KeyExpiringSoon, notify.KeyExpired:
				wantActor = notify.ActorSystem
			}
			if ev.Key.ID != wantKey || ev.Actor != wantActor {
				t.Errorf("%s: key %s by %s, want %s by %s", typ, ev.Key.ID, ev.Actor, wantKey, wantActor)
			}
		}
		if ev := byType[notify.KeyCreated]; ev.Key.Name != "ci" || ev.Key.Last4 != k1.Last4 || ev.Key.ExpiresAt != nil {
			t.Errorf("key.created: %+v", ev.Key)
		}
		rolled := byType[notify.KeyRolled]
		if rolled.Successor == nil || rolled.Successor.ID != k2.ID || rolled.Successor.Last4 != k2.Last4 ||
			rolled.Key.ExpiresAt == nil || !rolled.Key.ExpiresAt.Equal(rolledExpiry) {
			t.Errorf("key.rolled: key %+v successor %+v", rolled.Key, rolled.Successor)
		}
		if ev := byType[notify.KeyExpiringSoon]; ev.Key.ExpiresAt == nil || !ev.Key.ExpiresAt.Equal(rolledExpiry) {
			t.Errorf("key.expiring_soon: %+v", ev.Key)
		}

		// The delivery log: every event delivered once to each notifier.
		ds, err := e.Host.Notify.Deliveries(ctx, k1.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 2*6 { // k1: all but key.revoked, to log and webhook
			t.Fatalf("k1 delivery log has %d rows: %+v", len(ds), ds)
		}
		for _, d := range ds {
			if d.Status != notify.StatusDelivered || d.Attempts != 1 {
				t.Errorf("delivery %+v", d)
			}
			if d.Notifier == "webhook" && d.LastStatusCode != http.StatusOK {
				t.Errorf("webhook delivery without its status: %+v", d)
			}
		}
		if logs := e.Logs.String(); !strings.Contains(logs, "type=key.expiring_soon") || !strings.Contains(logs, "key_id="+k1.ID) {
			t.Error("the log notifier wrote no key event")
		}
	})
}

// A receiver that is down when a key is created gets the event from a new
// host on the same database once it is back.
func TestWebhookDeliveredAfterRestart(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		rcv := newReceiver(t)
		rcv.down.Store(true)
		e1 := coretest.New(t, engine, webhookTo(rcv.URL, 0))
		org := e1.Org("acme")
		k, raw := e1.Key(org, apikey.CreateInput{Name: "deploy"})
		flush(t, e1)
		e1.Clock.Advance(time.Minute)
		flush(t, e1)
		d := onlyDelivery(t, e1.Host.Store, k.ID, "webhook")
		if d.Status != notify.StatusPending || d.Attempts != 2 || d.LastStatusCode != 500 || !strings.Contains(d.LastError, "500") {
			t.Fatalf("while the receiver is down: %+v", d)
		}
		if rcv.hits.Load() != 2 {
			t.Fatalf("receiver saw %d requests, want 2", rcv.hits.Load())
		}
		e1.Server.Close()
		if err := e1.Host.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}

		rcv.down.Store(false)
		e2 := coretest.New(t, engine, webhookTo(rcv.URL, 0), sameDatabase(e1.Cfg.Database.URL))
		e2.Clock.Set(e1.Clock.Now().Add(time.Hour))
		flush(t, e2)
		got := rcv.got()
		if len(got) != 1 {
			t.Fatalf("receiver accepted %d requests, want 1", len(got))
		}
		if strings.Contains(string(got[0].body), raw) {
			t.Fatal("the body carries the key")
		}
		if ev := verified(t, got[0]); ev.Type != notify.KeyCreated || ev.Key.ID != k.ID {
			t.Fatalf("delivered %s for %s", ev.Type, ev.Key.ID)
		}
		d = onlyDelivery(t, e2.Host.Store, k.ID, "webhook")
		if d.Status != notify.StatusDelivered || d.Attempts <= 1 || d.Attempts != 3 || d.DeliveredAt == nil || d.LastStatusCode != 200 || d.LastError != "" {
			t.Fatalf("after the restart: %+v", d)
		}
	})
}

// An event committed by a host that delivers to nobody (as if it died
// before fan-out) reaches a webhook that a later host has.
func TestEventsWrittenWithoutDispatcherAreDeliveredLater(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		e1 := coretest.New(t, engine, func(c *config.Config, _ *core.Options) { c.Notifications.Log = false })
		if n := e1.Host.Notify.Notifiers(); len(n) != 0 {
			t.Fatalf("notifiers %v with log off and no webhook", n)
		}
		org := e1.Org("acme")
		k, _ := e1.Key(org, apikey.CreateInput{})
		if err := e1.Host.Keys.Revoke(context.Background(), org, k.ID, apikey.Actor{ID: "cli"}); err != nil {
			t.Fatal(err)
		}
		flush(t, e1)
		var events int
		q := "SELECT COUNT(*) FROM saas_key_events WHERE key_id = ?"
		if engine == db.Postgres {
			q = strings.Replace(q, "?", "$1", 1)
		}
		if err := e1.Host.Store.DB.QueryRow(q, k.ID).Scan(&events); err != nil || events != 2 {
			t.Fatalf("%d events in the outbox (%v), want 2", events, err)
		}
		e1.Server.Close()
		if err := e1.Host.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}

		rcv := newReceiver(t)
		e2 := coretest.New(t, engine, webhookTo(rcv.URL, 0), sameDatabase(e1.Cfg.Database.URL))
		flush(t, e2)
		var types []string
		for _, r := range rcv.got() {
			types = append(types, verified(t, r).Type)
		}
		slices.Sort(types)
		if !slices.Equal(types, []string{notify.KeyCreated, notify.KeyRevoked}) {
			t.Fatalf("delivered %v", types)
		}
	})
}

// A receiver that never recovers gets max_attempts requests, and the
// delivery ends failed.
func TestWebhookRetriesStopAtMaxAttempts(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		rcv := newReceiver(t)
		rcv.down.Store(true)
		e := coretest.New(t, engine, webhookTo(rcv.URL, 3))
		org := e.Org("acme")
		k, _ := e.Key(org, apikey.CreateInput{})
		for range 6 {
			flush(t, e)
			e.Clock.Advance(11 * time.Minute) // past the longest backoff
		}
		flush(t, e)
		if n := rcv.hits.Load(); n != 3 {
			t.Fatalf("receiver saw %d attempts, want 3", n)
		}
		d := onlyDelivery(t, e.Host.Store, k.ID, "webhook")
		if d.Status != notify.StatusFailed || d.Attempts != 3 || d.LastStatusCode != 500 || d.DeliveredAt != nil {
			t.Fatalf("delivery = %+v", d)
		}
		if l := onlyDelivery(t, e.Host.Store, k.ID, "log"); l.Status != notify.StatusDelivered {
			t.Fatalf("the log notifier suffered from the webhook: %+v", l)
		}
	})
}

// A changed expiry is announced again; an unchanged one is not.
func TestExpiringSoonOncePerExpiry(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		e := coretest.New(t, engine, func(c *config.Config, _ *core.Options) { c.Notifications.ExpiringSoon.Duration = 48 * time.Hour })
		ctx := context.Background()
		org := e.Org("acme")
		far := e.Clock.Now().Add(10 * 24 * time.Hour)
		k, _ := e.Key(org, apikey.CreateInput{ExpiresAt: &far})
		count := func() int {
			n := 0
			ds, err := e.Host.Notify.Deliveries(ctx, k.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				if d.Type == notify.KeyExpiringSoon && d.Notifier == "log" {
					n++
				}
			}
			return n
		}
		runTask(t, e, "notify-expiring-keys")
		flush(t, e)
		if n := count(); n != 0 {
			t.Fatalf("%d expiring_soon 10 days out with a 48 h window", n)
		}
		e.Clock.Advance(8*24*time.Hour + time.Hour) // 47 h left
		runTask(t, e, "notify-expiring-keys")
		runTask(t, e, "notify-expiring-keys")
		flush(t, e)
		if n := count(); n != 1 {
			t.Fatalf("%d expiring_soon events, want 1", n)
		}
		later := apikey.Time{Time: e.Clock.Now().Add(30 * time.Hour)}
		if _, err := e.Host.Keys.Update(ctx, org, k.ID, apikey.Actor{ID: "user:u1"}, apikey.UpdateInput{ExpiresAt: apikey.Opt[apikey.Time]{Set: true, V: later}}); err != nil {
			t.Fatal(err)
		}
		runTask(t, e, "notify-expiring-keys")
		runTask(t, e, "notify-expiring-keys")
		flush(t, e)
		if n := count(); n != 2 {
			t.Fatalf("%d expiring_soon events after the expiry changed, want 2", n)
		}
	})
}
