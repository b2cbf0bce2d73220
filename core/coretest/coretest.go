// Package coretest runs a real Indigo host for tests: a migrated database
// of either engine, the full HTTP handler on a loopback listener, a fake
// clock, and helpers to make orgs, keys and requests.
package coretest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/core/apikey"
	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/core/identity"
	"github.com/indigo-hq/indigo/db/dbtest"
)

// Clock is a settable clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts at a fixed, whole-second time.
func NewClock() *Clock { return &Clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set sets the clock.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// SyncBuffer is a goroutine-safe log sink.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Env is a running host.
type Env struct {
	T      testing.TB
	Engine string
	Cfg    *config.Config
	Host   *core.Host
	Server *httptest.Server
	Clock  *Clock
	Logs   *SyncBuffer
	Client *http.Client
}

// Option adjusts the config or options before the host starts.
type Option func(*config.Config, *core.Options)

// New starts a host on a fresh database of the engine. It stops at cleanup.
func New(t testing.TB, engine string, opts ...Option) *Env {
	t.Helper()
	cfg := config.Default()
	cfg.Database.Driver = engine
	cfg.Database.URL = dbtest.URL(t, engine)
	cfg.Server.DataDir = t.TempDir()
	cfg.API.DefaultRateLimit = ""
	cfg.API.LogFlushInterval = config.Duration{Duration: 20 * time.Millisecond}
	cfg.API.UsageFlushInterval = config.Duration{Duration: 50 * time.Millisecond}
	cfg.API.ChangePollInterval = config.Duration{Duration: 50 * time.Millisecond}
	cfg.API.MaintenanceEvery = config.Duration{Duration: time.Hour}
	// make test runs the module tests once more on the previous wire.
	if w := os.Getenv("INDIGO_MODULE_WIRE"); w != "" {
		cfg.API.ModuleWire = w
	}
	clock := NewClock()
	logs := &SyncBuffer{}
	// Tasks run when a test calls them: on a fake clock, a task started in
	// the background could run after the test moved the clock.
	o := core.Options{NoMaintenance: true, Now: clock.Now, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, opt := range opts {
		opt(&cfg, &o)
	}
	ctx := context.Background()
	svc, err := core.Open(ctx, &cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	host := core.New(svc, o)
	host.StartBackground(ctx)
	srv := httptest.NewServer(host.Handler())
	e := &Env{T: t, Engine: engine, Cfg: &cfg, Host: host, Server: srv, Clock: clock, Logs: logs, Client: srv.Client()}
	t.Cleanup(func() {
		srv.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := host.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return e
}

// Org creates an organization.
func (e *Env) Org(name string) string {
	e.T.Helper()
	o, err := e.Host.Local.CreateOrg(context.Background(), name)
	if err != nil {
		e.T.Fatal(err)
	}
	return o.ID
}

// Key creates a key directly through the service.
func (e *Env) Key(org string, in apikey.CreateInput) (apikey.Key, string) {
	e.T.Helper()
	if in.Name == "" {
		in.Name = "test key"
	}
	k, raw, err := e.Host.Keys.Create(context.Background(), org, apikey.Actor{ID: "test"}, in)
	if err != nil {
		e.T.Fatal(err)
	}
	return k, raw
}

// Superkey creates a superkey.
func (e *Env) Superkey(org string) (apikey.Key, string) {
	return e.Key(org, apikey.CreateInput{Superkey: true})
}

// Scoped creates a key holding exactly scopes.
func (e *Env) Scoped(org string, scopes ...string) (apikey.Key, string) {
	if scopes == nil {
		scopes = []string{}
	}
	return e.Key(org, apikey.CreateInput{Scopes: scopes})
}

// Response is a finished request.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body.
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// ErrorCode is error.code of an error body, or "".
func (r Response) ErrorCode() string {
	var m struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &m)
	return m.Error.Code
}

// Do sends a request. auth is the whole Authorization header ("" for none);
// body is marshalled unless it is a string or nil.
func (e *Env) Do(method, path, auth string, body any, header ...string) Response {
	e.T.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			e.T.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, e.Server.URL+path, rd)
	if err != nil {
		e.T.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Cookie" {
			req.Header.Add("Cookie", header[i+1])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		e.T.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.T.Fatal(err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// Bearer formats an Authorization header.
func Bearer(key string) string { return "Bearer " + key }

// Session signs a member in through a real one-time link and returns the
// cookie header value and the CSRF token.
func (e *Env) Session(org, email, role string, operator bool) (cookie, csrf string) {
	e.T.Helper()
	ctx := context.Background()
	tok, err := e.Host.Local.LoginLink(ctx, org, email, role, operator)
	if err != nil {
		e.T.Fatal(err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(e.Server.URL + "/auth/login?token=" + tok)
	if err != nil {
		e.T.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		e.T.Fatalf("sign-in answered %d", resp.StatusCode)
	}
	for _, c := range resp.Cookies() {
		if c.Name == identity.CookieName {
			cookie = c.Name + "=" + c.Value
		}
	}
	if cookie == "" {
		e.T.Fatal("sign-in set no session cookie")
	}
	r := e.Do("GET", "/api/session", "", nil, "Cookie", cookie)
	if r.Status != 200 {
		e.T.Fatalf("GET /api/session answered %d: %s", r.Status, r.Body)
	}
	csrf, _ = r.JSON(e.T)["csrf_token"].(string)
	return cookie, csrf
}

// FlushLogs writes every queued request log entry.
func (e *Env) FlushLogs() {
	e.Host.Logs.Flush(context.Background())
}

// Engines runs fn as a subtest on each engine.
func Engines(t *testing.T, fn func(t *testing.T, engine string)) {
	for _, engine := range dbtest.Engines {
		t.Run(engine, func(t *testing.T) { fn(t, engine) })
	}
}
