// Package sdktest runs a module in memory, through the same rpc adapters and
// gRPC wire the host uses, so that a module's tests exercise what production
// does short of starting a process: go-plugin's in-memory connection stands
// in for the process, and a fake host for Indigo.
//
//	h := sdktest.New(t, mymodule.Module(), sdktest.WithConfig(map[string]any{"x": 1}))
//	resp := h.Do("GET", "/projects/p1", sdk.Caller{OrgID: "o1", Scopes: []string{"projects:read"}}, nil)
package sdktest

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/indigo-hq/indigo/sdk"
	"github.com/indigo-hq/indigo/sdk/internal/route"
	"github.com/indigo-hq/indigo/sdk/rpc"
)

// Option changes the fake host.
type Option func(*config)

type config struct {
	cfg      map[string]any
	scopes   []sdk.RegisteredScope
	timeout  time.Duration
	postgres string
}

// WithPostgres gives a module that asks for a database a schema of its own
// in the PostgreSQL database at url (dropped when the test ends) instead
// of a SQLite file; "" keeps SQLite.
func WithPostgres(url string) Option {
	return func(c *config) { c.postgres = url }
}

// WithConfig sets what the module's Host.Config returns.
func WithConfig(cfg map[string]any) Option {
	return func(c *config) { c.cfg = cfg }
}

// WithScopes adds scopes the host knows beyond the module's own (the host's
// core scopes, another module's), for Host.Scopes.
func WithScopes(scopes ...sdk.RegisteredScope) Option {
	return func(c *config) { c.scopes = append(c.scopes, scopes...) }
}

// WithTimeout sets the deadline of each Do call (10 seconds by default), as
// the host puts one on every request.
func WithTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

// Harness is a module served in memory.
type Harness struct {
	t       testing.TB
	module  rpc.Module
	routes  []compiledRoute
	host    *Host
	dataDir string
	timeout time.Duration
	db      *Database
}

// Database is where the module's database is, as the harness provisioned it.
type Database struct {
	Engine, DSN string
}

type compiledRoute struct {
	route sdk.Route
	tpl   *route.Template
}

// Response is what a module answered.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Decode unmarshals the JSON body into v.
func (r Response) Decode(v any) error { return json.Unmarshal(r.Body, v) }

// New validates m, serves it in memory and runs its ServerInit against a
// fake host whose DataDir is t.TempDir(). Everything stops when the test
// ends.
func New(t testing.TB, m sdk.Module, opts ...Option) *Harness {
	t.Helper()
	c := config{timeout: 10 * time.Second}
	for _, o := range opts {
		o(&c)
	}
	if err := sdk.ValidateManifest(m.Manifest()); err != nil {
		t.Fatalf("sdktest: %v", err)
	}
	for _, r := range m.Routes {
		if m.Handler == nil && r.Handler == nil {
			t.Fatalf("sdktest: module %q has no Handler, and route %s %s has none", m.Name, r.Method, r.Path)
		}
	}

	h := &Harness{t: t, timeout: c.timeout}
	for _, r := range m.Routes {
		tpl, err := route.Parse(r.Path)
		if err != nil { // ValidateManifest already refused it
			t.Fatalf("sdktest: route %s %s: %v", r.Method, r.Path, err)
		}
		h.routes = append(h.routes, compiledRoute{route: r, tpl: tpl})
	}

	client, _ := plugin.TestPluginGRPCConn(t, false, rpc.PluginMap(sdk.Adapt(m)))
	// Close also stops the server, through go-plugin's controller: stopping
	// it here as well would race with that.
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(rpc.PluginName)
	if err != nil {
		t.Fatalf("sdktest: dispense: %v", err)
	}
	h.module = raw.(rpc.Module)

	scopes := slices.Clone(c.scopes)
	for _, s := range m.Scopes {
		scopes = append(scopes, sdk.RegisteredScope{ID: s.ID, Label: s.Label, Module: m.Name})
	}
	h.host = &Host{scopes: scopes}

	cfg := c.cfg
	if cfg == nil {
		cfg = map[string]any{}
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("sdktest: config: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), c.timeout)
	defer cancel()
	h.dataDir = t.TempDir()
	init := rpc.InitRequest{ConfigJSON: cfgJSON, DataDir: h.dataDir}
	if m.Database {
		init.DBEngine, init.DBDSN = provision(t, m.Name, h.dataDir, c.postgres)
		h.db = &Database{Engine: init.DBEngine, DSN: init.DBDSN}
	}
	if err := h.module.ServerInit(ctx, init, h.host); err != nil {
		t.Fatalf("sdktest: ServerInit: %v", err)
	}
	return h
}

// Do sends one request to the module as the host would, after routing it:
// path is below /api/v2 and may hold a query ("/projects/p1?full=1"), and
// header is name, value pairs. A method and path no declared route matches
// get a 404 without reaching the module, as they would in the host. Do
// fails the test if the call itself fails; use Module for such cases.
func (h *Harness) Do(method, path string, caller sdk.Caller, body []byte, header ...string) Response {
	h.t.Helper()
	if len(header)%2 != 0 {
		h.t.Fatalf("sdktest: Do header wants name, value pairs; got %d strings", len(header))
	}
	path, query, _ := strings.Cut(path, "?")
	req := rpc.Request{Method: method, Path: path, Query: query, Header: make(http.Header), Body: body, Caller: caller}
	for i := 0; i < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	params, ok := h.match(method, path)
	if !ok {
		return Response{
			Status: http.StatusNotFound,
			Header: http.Header{"Content-Type": {"application/json"}},
			Body:   []byte(`{"error":{"code":"not_found","message":"not found"}}` + "\n"),
		}
	}
	req.PathParams = params

	ctx, cancel := context.WithTimeout(h.t.Context(), h.timeout)
	defer cancel()
	resp, err := h.module.Handle(ctx, req)
	if err != nil {
		h.t.Fatalf("sdktest: %s %s: %v", method, path, err)
	}
	return Response{Status: resp.Status, Header: resp.Header, Body: resp.Body}
}

func (h *Harness) match(method, path string) (map[string]string, bool) {
	for _, r := range h.routes {
		if r.route.Method != method {
			continue
		}
		if params, ok := r.tpl.Match(path); ok {
			return params, true
		}
	}
	return nil, false
}

// Module is the host's side of the wire, for what Do does not cover:
// calling Handle with your own context, Describe, a second ServerInit.
func (h *Harness) Module() rpc.Module { return h.module }

// DataDir is the data directory the module was given, for tests that look
// at (or share) what the module stored.
func (h *Harness) DataDir() string { return h.dataDir }

// Host is the fake host's services, to pass to a second ServerInit.
func (h *Harness) Host() *Host { return h.host }

// Logs returns the records the module has logged so far.
func (h *Harness) Logs() []LogRecord { return h.host.Logs() }

// LogRecord is one record the module logged through Host.Logger.
type LogRecord struct {
	Level   slog.Level
	Message string
	Attrs   map[string]string
}

// Host is the fake host's rpc.HostServices.
type Host struct {
	scopes []sdk.RegisteredScope

	mu   sync.Mutex
	logs []LogRecord
}

var _ rpc.HostServices = (*Host)(nil)

// Log records what the module logged.
func (f *Host) Log(_ context.Context, level slog.Level, msg string, attrs map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, LogRecord{Level: level, Message: msg, Attrs: maps.Clone(attrs)})
	return nil
}

// Scopes returns the module's scopes and those given WithScopes.
func (f *Host) Scopes(context.Context) ([]sdk.RegisteredScope, error) {
	return slices.Clone(f.scopes), nil
}

// Logs returns a copy of the records so far.
func (f *Host) Logs() []LogRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.logs)
}
