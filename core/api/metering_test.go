package api_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/core/api"
	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/core/coretest"
	"github.com/indigo-hq/indigo/core/metering"
	"github.com/indigo-hq/indigo/db"
)

// meter is an in-memory deductApiCallToken provider with a balance.
type meter struct {
	mu      sync.Mutex
	balance int64
	down    bool
	seen    map[string]bool
	calls   []metering.Call
}

func (m *meter) DeductAPICallToken(_ context.Context, c metering.Call) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, c)
	if m.down {
		return errors.New("provider unreachable")
	}
	if m.seen[c.RequestID] {
		return nil
	}
	if m.balance < c.Cost {
		return metering.ErrInsufficient
	}
	m.balance -= c.Cost
	m.seen[c.RequestID] = true
	return nil
}

func TestMeteringHook(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		m := &meter{balance: 5, seen: map[string]bool{}}
		e := coretest.New(t, db.SQLite, func(c *config.Config, o *core.Options) {
			o.Meter = m
			c.API.MeteringFailOpen = failOpen
		})
		var handled int
		e.Host.API.HandleV2(api.Route{Method: "GET", Path: "/test/metered", AnyKey: true, Cost: 2, Doc: api.Doc{Response: "Me"}},
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				handled++
				w.WriteHeader(204)
			}))
		org := e.Org("A")
		k, raw := e.Superkey(org)
		statuses := []int{}
		for i := 0; i < 3; i++ {
			statuses = append(statuses, e.Do("GET", "/api/v2/test/metered", bearer(raw), nil).Status)
		}
		if statuses[0] != 204 || statuses[1] != 204 || statuses[2] != 402 || handled != 2 {
			t.Fatalf("statuses %v, handled %d; want 204 204 402 and 2", statuses, handled)
		}
		if r := e.Do("GET", "/api/v2/test/metered", bearer(raw), nil); r.ErrorCode() != "insufficient_balance" {
			t.Fatalf("402 body: %s", r.Body)
		}
		c := m.calls[0]
		if c.OrgID != org || c.KeyID != k.ID || c.Route != "/api/v2/test/metered" || c.Cost != 2 || c.RequestID == "" {
			t.Fatalf("call = %+v", c)
		}
		// /me costs one token; managing keys costs nothing.
		before := len(m.calls)
		if r := e.Do("GET", "/api/v2/me", bearer(raw), nil); r.Status != 200 {
			t.Fatalf("GET /me with 1 token left: %d %s", r.Status, r.Body)
		}
		if len(m.calls) != before+1 || m.calls[before].Cost != 1 || m.calls[before].Route != "/api/v2/me" {
			t.Fatalf("GET /me was not metered at cost 1: %+v", m.calls[before:])
		}
		if r := e.Do("GET", "/api/v2/keys", bearer(raw), nil); r.Status != 200 || len(m.calls) != before+1 {
			t.Fatalf("listing keys with no tokens left: %d, %d metered calls", r.Status, len(m.calls)-before)
		}
		m.mu.Lock()
		m.down = true
		m.mu.Unlock()
		r := e.Do("GET", "/api/v2/test/metered", bearer(raw), nil)
		if failOpen && r.Status != 204 {
			t.Fatalf("fail open with the provider down: %d", r.Status)
		}
		if !failOpen && (r.Status != 503 || r.ErrorCode() != "metering_unavailable") {
			t.Fatalf("fail closed with the provider down: %d %s", r.Status, r.Body)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	e := coretest.New(t, db.SQLite)
	if r := e.Do("GET", "/healthz", "", nil); r.Status != 200 {
		t.Fatalf("healthz %d", r.Status)
	}
	if r := e.Do("GET", "/readyz", "", nil); r.Status != 200 {
		t.Fatalf("readyz %d", r.Status)
	}
	_ = e.Host.Store.DB.Close()
	if r := e.Do("GET", "/readyz", "", nil); r.Status != 503 {
		t.Fatalf("readyz with the database closed: %d", r.Status)
	}
}
