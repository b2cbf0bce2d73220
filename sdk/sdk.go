// Package sdk is the one package tree module authors import. It must never
// import the host (core, db, cmd or modules); a test keeps it so.
//
// A module is a Go main package that declares a Module and calls Serve:
//
//	func main() {
//		sdk.Serve(sdk.Module{
//			Name:    "projects",
//			Version: "1.0.0",
//			Scopes:  []sdk.Scope{{ID: "projects:read", Label: "Read projects"}},
//			Routes: []sdk.Route{
//				{Method: "GET", Path: "/projects/{id}", Scopes: []string{"projects:read"}, Cost: 1},
//			},
//			Handler: handler, // reads r.PathValue("id") and sdk.CallerFrom(r.Context())
//			ServerInit: func(ctx context.Context, host sdk.Host) error { ... },
//		})
//	}
//
// The host runs the binary as a separate process (hashicorp/go-plugin, and
// a data socket for the requests, see sdk/rpc), authenticates each request,
// checks the route's scopes and forwards it; the module only ever sees
// authorised calls.
package sdk

import (
	"context"
	"database/sql"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/indigo-hq/indigo/sdk/internal/spec"
	"github.com/indigo-hq/indigo/sdk/rpc"
)

// The shared values are defined in sdk/internal/spec so that sdk/rpc can
// carry them without importing this package (which serves through rpc).
// The aliases make them one type: an sdk.Caller is the Caller of an
// rpc.Request.
type (
	// Scope is a permission a module registers, such as "projects:read".
	// Its id must start with the module's own name and a colon.
	Scope = spec.Scope
	// Route is a route a module serves below /api/v2, such as
	// "/projects/{id}" (gorilla/mux style variables). The host enforces all
	// of Scopes before the request reaches the module and charges Cost
	// through the metering hook. A route without scopes must be a V1 GET.
	Route = spec.Route
	// RegisteredScope is a scope in the host's registry, with the module
	// that registered it.
	RegisteredScope = spec.RegisteredScope
	// Caller is who made a request, as the host authenticated it.
	Caller = spec.Caller
	// Manifest is what a module declares about itself; `describe` prints it.
	Manifest = spec.Manifest
	// MeterCall is one charge the host asks a metering module for.
	MeterCall = spec.MeterCall
	// KeyLimit is an org plan's limit on active keys.
	KeyLimit = spec.KeyLimit
	// Identity is who a request is from, as an org resolver answers.
	Identity = spec.Identity
	// KeyEvent is a change to a key (created, rolled, revoked, disabled,
	// enabled, expiring_soon, expired). It never carries the key.
	KeyEvent = spec.KeyEvent
	// EventKey is the key a KeyEvent is about.
	EventKey = spec.EventKey
	// TaskInfo is a task as a manifest lists it.
	TaskInfo = spec.Task
)

// The hooks' names, as a manifest lists them.
const (
	HookDeductAPICallToken = spec.HookDeductAPICallToken
	HookKeyLimit           = spec.HookKeyLimit
	HookResolveOrgID       = spec.HookResolveOrgID
	HookKeyEvents          = spec.HookKeyEvents
	HookRunTask            = spec.HookRunTask
)

// Module is everything a module author provides.
type Module struct {
	// Name is the module's id and the prefix of its scopes:
	// ^[a-z][a-z0-9-]{1,31}$.
	Name    string
	Version string
	Scopes  []Scope
	Routes  []Route
	// Handler serves every declared route. The request's URL path is the
	// one below the API version prefix ("/projects/p1"), as in Routes, so
	// an http.ServeMux can register the same paths; route variables are in
	// r.PathValue and the caller (with V1 set for a v1 call) in
	// CallerFrom(r.Context()).
	Handler http.Handler
	// ServerInit, when set, runs before the host routes traffic, and again
	// if the host re-initialises the module. An error stops the module
	// from being loaded.
	ServerInit func(ctx context.Context, host Host) error

	// Database asks the host for a database of the module's own, on the
	// host's engine: a file under the data directory on SQLite, a schema
	// mod_<name> (and, where the host may create roles, a role that reaches
	// only that schema) on PostgreSQL. Host.DB returns it.
	Database bool
	// Migrations holds the module's golang-migrate files in one folder per
	// engine, sqlite/ and postgres/ (NNNNNN_title.up.sql and .down.sql),
	// typically an embed.FS sub-tree. They are applied, under a lock, before
	// ServerInit; a failure stops the module (not the host) and names the
	// file.
	Migrations fs.FS
	// Tasks are background work the host runs once per interval across
	// all hosts sharing the database.
	Tasks []Task
	// Stop runs when the host shuts the module down or before a restart,
	// after requests in flight have finished. Its context ends at the
	// host's deadline; the process is killed after that either way.
	Stop func(ctx context.Context) error

	// The DI hooks a module may provide. The host uses one when
	// indigo.toml names the module for it ([api.deps]); key events go to
	// every module that sets OnKeyEvent.

	// DeductAPICallToken charges one v2 call to the org (deductApiCallToken).
	// Return ErrInsufficientBalance when the balance does not cover it (the
	// host answers 402). The same RequestID must not be charged twice.
	DeductAPICallToken func(ctx context.Context, c MeterCall) error
	// KeyLimit is the org plan's limit on active keys, enforced at create.
	KeyLimit func(ctx context.Context, orgID string) (KeyLimit, error)
	// ResolveOrgID says who a management request is from (resolveOrgId):
	// nil, nil for nobody. The request carries only its headers. A resolver
	// that trusts a cookie must set Identity.CSRFToken: the host then
	// requires it in X-CSRF-Token on every state-changing request.
	ResolveOrgID func(ctx context.Context, r *http.Request) (*Identity, error)
	// OnKeyEvent receives key events, at least once each.
	OnKeyEvent func(ctx context.Context, ev KeyEvent) error
}

// ErrInsufficientBalance is what DeductAPICallToken returns when the org's
// balance does not cover the call.
var ErrInsufficientBalance = &rpc.HookError{Code: "insufficient_balance", Message: "the organization's API call balance is spent"}

// Task is a module's background task: Run is called once per Every across
// all hosts sharing the database (at least a second). An error is logged
// and counted by the host; the next run comes at the next interval.
type Task struct {
	Name  string
	Every time.Duration
	Run   func(ctx context.Context, host Host) error
}

// Host is what the host offers a module: deliberately small, like Vault's
// SystemView, so that the wire stays easy to keep compatible.
type Host interface {
	// Config is the module's configuration section. It is shared: do not
	// modify it.
	Config() map[string]any
	// DecodeConfig decodes the configuration section into v (a pointer to
	// the module's own struct, with json tags), refusing unknown keys and
	// values of the wrong type with the module, the key and the reason.
	DecodeConfig(v any) error
	// DB is the module's own database, nil unless Module.Database is set;
	// Engine is its engine, EngineSQLite or EnginePostgres.
	DB() *sql.DB
	Engine() string
	// DataDir is a directory the module owns for its files.
	DataDir() string
	// Logger sends its records over the wire to the host's log.
	Logger() *slog.Logger
	// Scopes lists every scope the host knows, its own and all modules'.
	Scopes(ctx context.Context) ([]RegisteredScope, error)
}

// Manifest is m's declaration, for `describe` and the host's Describe call.
// Its slices are never nil, so that its JSON lists [] rather than null.
func (m Module) Manifest() Manifest {
	out := Manifest{
		Name:     m.Name,
		Version:  m.Version,
		Scopes:   slices.Clone(m.Scopes),
		Routes:   slices.Clone(m.Routes),
		Protocol: rpc.ProtocolVersion,
		Hooks:    m.hooks(),
		// Every module built with this SDK serves HandleStream and a
		// data socket.
		StreamCalls: true,
		DataSocket:  true,
		Database:    m.Database,
	}
	for _, t := range m.Tasks {
		out.Tasks = append(out.Tasks, TaskInfo{Name: t.Name, IntervalSeconds: int64(t.Every / time.Second)})
	}
	if out.Scopes == nil {
		out.Scopes = []Scope{}
	}
	if out.Routes == nil {
		out.Routes = []Route{}
	}
	for i := range out.Routes {
		if out.Routes[i].Scopes == nil {
			out.Routes[i].Scopes = []string{}
		} else {
			out.Routes[i].Scopes = slices.Clone(out.Routes[i].Scopes)
		}
	}
	return out
}

// hooks lists the hooks m provides, in a fixed order.
func (m Module) hooks() []string {
	out := []string{}
	if m.DeductAPICallToken != nil {
		out = append(out, HookDeductAPICallToken)
	}
	if m.KeyLimit != nil {
		out = append(out, HookKeyLimit)
	}
	if m.ResolveOrgID != nil {
		out = append(out, HookResolveOrgID)
	}
	if m.OnKeyEvent != nil {
		out = append(out, HookKeyEvents)
	}
	if len(m.Tasks) > 0 {
		out = append(out, HookRunTask)
	}
	return out
}

type callerKey struct{}

// WithCaller returns ctx carrying c. The SDK calls it for every request;
// tests call it to build a request's context by hand.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller the host attached to the request. It is
// false only outside a request served through the SDK.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}
