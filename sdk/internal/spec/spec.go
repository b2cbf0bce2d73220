// Package spec holds the plain values that both the sdk package and the
// sdk/rpc wire use. It exists only to break the import cycle between them
// (sdk serves through rpc, rpc carries these values); the sdk package
// re-exports every type here as an alias, so sdk.Caller and the Caller in
// an rpc.Request are one type and nobody outside sdk names this package.
package spec

import "net/http"

// Scope is a permission a module registers, such as "projects:read". Its
// id must start with the module's own prefix.
type Scope struct {
	ID    string `json:"id"`
	Label string `json:"label"`
}

// Route is a v2 route a module serves. The host enforces Scopes (all of
// them) before the request reaches the module, and charges Cost through
// the metering hook.
type Route struct {
	Method string   `json:"method"`
	Path   string   `json:"path"`
	Scopes []string `json:"scopes"`
	Cost   int64    `json:"cost"`
	V1     bool     `json:"v1"`
	// Handler serves the route in the module (never on the wire); when
	// every route has one, the module needs no Handler of its own.
	Handler http.Handler `json:"-"`
}

// RegisteredScope is a scope as the host's registry knows it, with the
// module that registered it ("core" for the host's own).
type RegisteredScope struct {
	ID     string `json:"id"`
	Label  string `json:"label"`
	Module string `json:"module"`
}

// Caller is who made a request, as the host authenticated it. The module
// trusts it because only the host can reach the module's sockets.
type Caller struct {
	OrgID     string
	KeyID     string
	Scopes    []string
	Superkey  bool
	RequestID string
	V1        bool
}

// Manifest is what a module declares about itself: what the host catalogues
// from `describe` and checks again from Describe before it routes traffic.
type Manifest struct {
	Name     string  `json:"name"`
	Version  string  `json:"version"`
	Scopes   []Scope `json:"scopes"`
	Routes   []Route `json:"routes"`
	Protocol int     `json:"protocol"`
	// Hooks are the DI hooks the module provides (see the Hook* names).
	Hooks []string `json:"hooks"`
	// StreamCalls says the module serves calls on one long-lived stream
	// (HandleStream) as well as one by one.
	StreamCalls bool `json:"stream_calls"`
	// DataSocket says the module serves calls on a data socket of its own
	// (see rpc.OpenSocket), which the host prefers to gRPC.
	DataSocket bool `json:"data_socket"`
	// Database says the module wants a database of its own from the host.
	Database bool `json:"database,omitempty"`
	// Tasks are the module's background tasks, which the host schedules.
	Tasks []Task `json:"tasks,omitempty"`
}

// Task is a background task a module declares: the host runs it once per
// interval across all hosts (HookRunTask carries the call).
type Task struct {
	Name            string `json:"name"`
	IntervalSeconds int64  `json:"interval_seconds"`
}

// The DI hooks a module may provide.
const (
	HookDeductAPICallToken = "deduct_api_call_token"
	HookKeyLimit           = "key_limit"
	HookResolveOrgID       = "resolve_org_id"
	HookKeyEvents          = "key_events"
	// HookRunTask runs one of the module's declared tasks: the payload is
	// {"task": name}. Every module with tasks serves it.
	HookRunTask = "run_task"
)

// MeterCall is one charge for deduct_api_call_token.
type MeterCall struct {
	OrgID     string `json:"org_id"`
	KeyID     string `json:"key_id"`
	Route     string `json:"route"`
	Cost      int64  `json:"cost"`
	RequestID string `json:"request_id"`
}

// KeyLimit is an org plan's limit on active keys, for key_limit.
type KeyLimit struct {
	Plan    string `json:"plan"`
	MaxKeys int64  `json:"max_keys"`
	Limited bool   `json:"limited"`
}

// Identity is who a request is from, for resolve_org_id.
type Identity struct {
	UserID    string `json:"user_id"`
	Email     string `json:"email"`
	OrgID     string `json:"org_id"`
	Role      string `json:"role"`
	Operator  bool   `json:"operator"`
	CSRFToken string `json:"csrf_token,omitempty"`
}

// KeyEvent is a key's change, for key_events. It never carries the key.
type KeyEvent struct {
	ID    string   `json:"id"`
	Type  string   `json:"type"`
	Time  string   `json:"time"`
	OrgID string   `json:"org_id"`
	Actor string   `json:"actor"`
	Key   EventKey `json:"key"`
	// Successor is the key that replaces Key, on key.rolled only.
	Successor *EventKey `json:"successor,omitempty"`
}

// EventKey is the key an event is about.
type EventKey struct {
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	Prefix    string  `json:"prefix"`
	Last4     string  `json:"last4"`
	ExpiresAt *string `json:"expires_at"`
}
