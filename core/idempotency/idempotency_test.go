package idempotency

import (
	"bytes"
	"errors"
	"net/http"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newStore(set Settings) (*Store, *clock) {
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	return New(set, c.now), c
}

var big = Settings{TTL: time.Hour, MaxEntries: 100, MaxBytes: 64 << 20}

func key(v string) Key {
	return Key{OrgID: "org_1", Caller: "key_1", Method: "POST", Path: "/api/v2/things", Value: v}
}

func TestReplayInProgressAndReuse(t *testing.T) {
	s, _ := newStore(big)
	sum := Sum("", []byte(`{"a":1}`))
	c, r, err := s.Begin(key("k"), sum)
	if c == nil || r != nil || err != nil {
		t.Fatalf("first Begin: %v %v %v", c, r, err)
	}
	if _, _, err := s.Begin(key("k"), sum); !errors.Is(err, ErrInProgress) {
		t.Fatalf("while running: %v", err)
	}
	if _, _, err := s.Begin(key("k"), Sum("", []byte(`{"a":2}`))); !errors.Is(err, ErrReused) {
		t.Fatalf("another body: %v", err)
	}
	if _, _, err := s.Begin(key("k"), Sum("x=1", []byte(`{"a":1}`))); !errors.Is(err, ErrReused) {
		t.Fatalf("another query: %v", err)
	}
	c.Finish(Response{Status: 201, Header: http.Header{"X-A": {"1"}}, Body: []byte("made")})
	c.Release() // after Finish: nothing
	_, r, err = s.Begin(key("k"), sum)
	if err != nil || r == nil || r.Status != 201 || string(r.Body) != "made" || r.Header.Get("X-A") != "1" {
		t.Fatalf("replay: %+v %v", r, err)
	}
	// Another caller, org, method, path or key value is another request.
	for _, k := range []Key{
		{OrgID: "org_2", Caller: "key_1", Method: "POST", Path: "/api/v2/things", Value: "k"},
		{OrgID: "org_1", Caller: "key_2", Method: "POST", Path: "/api/v2/things", Value: "k"},
		{OrgID: "org_1", Caller: "key_1", Method: "PUT", Path: "/api/v2/things", Value: "k"},
		{OrgID: "org_1", Caller: "key_1", Method: "POST", Path: "/api/v2/other", Value: "k"},
		key("k2"),
	} {
		if c, _, err := s.Begin(k, sum); c == nil || err != nil {
			t.Fatalf("%+v: %v", k, err)
		}
	}
}

func TestReleaseLetsTheRetryRun(t *testing.T) {
	s, _ := newStore(big)
	c, _, _ := s.Begin(key("k"), Sum("", nil))
	c.Release()
	if c, _, err := s.Begin(key("k"), Sum("", nil)); c == nil || err != nil {
		t.Fatalf("after Release: %v", err)
	}
}

func TestExpiresAfterTTL(t *testing.T) {
	s, clk := newStore(big)
	c, _, _ := s.Begin(key("k"), Sum("", nil))
	c.Finish(Response{Status: 200})
	clk.t = clk.t.Add(time.Hour - time.Second)
	if _, r, _ := s.Begin(key("k"), Sum("", nil)); r == nil {
		t.Fatal("expired before the TTL")
	}
	clk.t = clk.t.Add(time.Second)
	if c, _, err := s.Begin(key("k"), Sum("", nil)); c == nil || err != nil {
		t.Fatalf("not expired at the TTL: %v", err)
	}
}

func TestBounds(t *testing.T) {
	s, _ := newStore(Settings{TTL: time.Hour, MaxEntries: 3, MaxBytes: 64 << 20})
	for _, v := range []string{"a", "b", "c", "d"} {
		c, _, _ := s.Begin(key(v), Sum("", nil))
		c.Finish(Response{Status: 200})
	}
	if s.Len() != 3 {
		t.Fatalf("%d entries, want 3", s.Len())
	}
	if c, _, _ := s.Begin(key("a"), Sum("", nil)); c == nil {
		t.Fatal("the oldest entry was kept past MaxEntries")
	}

	s, _ = newStore(Settings{TTL: time.Hour, MaxEntries: 100, MaxBytes: 3 * (64 << 10)})
	body := bytes.Repeat([]byte("x"), 60<<10)
	for _, v := range []string{"a", "b", "c", "d"} {
		c, _, _ := s.Begin(key(v), Sum("", nil))
		c.Finish(Response{Status: 200, Body: body})
	}
	if s.Len() != 3 || s.bytes > 3*(64<<10) {
		t.Fatalf("%d entries, %d bytes: over MaxBytes", s.Len(), s.bytes)
	}

	// A body above MaxResponse is not kept; a retry learns the status.
	s, _ = newStore(big)
	c, _, _ := s.Begin(key("huge"), Sum("", nil))
	c.Finish(Response{Status: 201, Body: make([]byte, MaxResponse+1)})
	_, r, err := s.Begin(key("huge"), Sum("", nil))
	if !errors.Is(err, ErrNotKept) || r == nil || r.Status != 201 || r.Body != nil {
		t.Fatalf("too large: %+v %v", r, err)
	}
}
