// Package rpc is the wire between the Indigo host and a module process:
// the go-plugin handshake, the plugin map, the Go interfaces each side
// implements, the gRPC adapters between them, and the data socket that
// carries the requests (OpenSocket; frame.go has its framing).
//
// Both sides import it. The host dispenses a Module from a go-plugin client
// and gives it a HostServices; sdk.Serve wraps an sdk.Module in a Module
// and serves it. The generated protobuf types never leave this package.
package rpc

import (
	"context"
	"log/slog"
	"net/http"
	"runtime"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/indigo-hq/indigo/sdk/internal/spec"
)

// ProtocolVersion is the version of this wire. It lives here and only here:
// the handshake carries it and the manifest reports it. Bump it on any
// incompatible change, and keep serving the previous version alongside (go-plugin's
// VersionedPlugins) until no deployed module speaks it.
const ProtocolVersion = 1

// PluginName is the one plugin every module binary serves.
const PluginName = "module"

// Handshake makes a module binary refuse to run unless the host started it.
// The cookie is a usability check, not security: it only stops someone from
// running a module by hand and staring at a hung process.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "INDIGO_MODULE",
	MagicCookieValue: "0l4gxHjqCdPBrI0nAydwOywFhuSY1JpU",
}

// Size limits of the wire. A request body above MaxRequestBody is refused by
// the host-side client before it is sent; a module response body above
// MaxResponseBody is replaced by a module_response_too_large error inside the
// module. MaxMessageSize leaves room above both for headers and framing.
const (
	MaxRequestBody  = 10 << 20
	MaxResponseBody = 8 << 20
	MaxMessageSize  = 16 << 20
)

// DialOptions are the gRPC options the host passes as
// plugin.ClientConfig.GRPCDialOptions, so that both directions of a call
// allow MaxMessageSize (gRPC's own default receive limit is 4 MiB).
var DialOptions = []grpc.DialOption{
	grpc.WithDefaultCallOptions(
		grpc.MaxCallRecvMsgSize(MaxMessageSize),
		grpc.MaxCallSendMsgSize(MaxMessageSize),
	),
}

// ServerOptions are the matching limits for every gRPC server on the wire:
// the module's (through NewServer) and the host-services server the client
// opens through the broker.
var ServerOptions = []grpc.ServerOption{
	grpc.MaxRecvMsgSize(MaxMessageSize),
	grpc.MaxSendMsgSize(MaxMessageSize),
}

// NewServer is the plugin.ServeConfig.GRPCServer a module serves with:
// go-plugin's options (TLS) plus ServerOptions.
func NewServer(opts []grpc.ServerOption) *grpc.Server {
	all := make([]grpc.ServerOption, 0, len(opts)+len(ServerOptions)+1)
	all = append(all, opts...)
	all = append(all, ServerOptions...)
	// Reused workers keep their grown stacks: a fresh goroutine per call
	// would grow (copy) its stack on every request that runs deep code such
	// as the pure-Go SQLite. gRPC only hands a call to an idle worker and
	// starts a fresh goroutine otherwise, and the host sends as many calls
	// at once as it has requests in flight (dozens), so GOMAXPROCS workers
	// left most calls on fresh goroutines. An idle worker costs a parked
	// goroutine.
	all = append(all, grpc.NumStreamWorkers(uint32(max(runtime.GOMAXPROCS(0), 64))))
	return grpc.NewServer(all...)
}

// Request is one HTTP request the host routes to a module, after it has
// authenticated the caller and checked the route's scopes.
type Request struct {
	Method string
	// Path is the request path below the API version prefix
	// ("/projects/p1" for /api/v2/projects/p1, and for /api/v1/projects/p1,
	// which Caller.V1 tells apart). The module's handler sees it as
	// r.URL.Path unchanged.
	Path string
	// PathParams are the route template's parameters ("id" → "p1"), already
	// decoded, as the host's router matched them.
	PathParams map[string]string
	Query      string // the raw query, without "?"
	Header     http.Header
	Body       []byte
	Caller     spec.Caller
}

// Response is what the module's handler wrote.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	// Owner, when set, owns the memory of Body (and, in the module,
	// Header), to reuse it once the receiver is done with them: see
	// Release. The host's Module lends only Body: the header it returns
	// is the caller's to keep.
	Owner Releaser
}

// Releaser takes back memory lent to a Response.
type Releaser interface{ Release() }

// Release tells r's owner that its Body and Header are no longer read, so
// that their memory serves the next call; r must not be read after it.
// Not calling it only leaves that memory to the garbage collector.
func (r *Response) Release() {
	if o := r.Owner; o != nil {
		r.Owner = nil
		o.Release()
	}
}

// InitRequest is what the host gives a module at ServerInit.
type InitRequest struct {
	// ConfigJSON is the module's own configuration section as a JSON object;
	// JSON rather than a typed value so the wire need not know its shape.
	ConfigJSON []byte
	DataDir    string
	// DBEngine and DBDSN are the module's own database ("" when it asked
	// for none): "sqlite" with a file path, or "postgres" with a URL whose
	// role and search_path reach only the module's schema.
	DBEngine, DBDSN string
}

// HostServices are what a module may ask of the host. The host implements
// it; the module reaches it over the broker connection opened at ServerInit.
type HostServices interface {
	Log(ctx context.Context, level slog.Level, msg string, attrs map[string]string) error
	Scopes(ctx context.Context) ([]spec.RegisteredScope, error)
}

// Module is one module as the host drives it. The host gets it from
// Dispense(PluginName); inside the module, sdk.Adapt builds it.
type Module interface {
	Describe(ctx context.Context) (spec.Manifest, error)
	// ServerInit gives the module its configuration and the host's
	// services. It may be called again (a configuration reload); the
	// host-services connection opened the first time is reused.
	ServerInit(ctx context.Context, req InitRequest, host HostServices) error
	// Handle serves one request. An HTTP-level failure (including a
	// handler panic) comes back as a Response; an error means the call
	// itself failed: see IsUnavailable and IsDeadline.
	Handle(ctx context.Context, req Request) (Response, error)
	// CallHook runs a DI hook the module's manifest lists, with a JSON
	// payload and result. A refusal the hook answers (an insufficient
	// balance) is a *HookError; any other error is a failed call.
	CallHook(ctx context.Context, hook string, payload []byte) ([]byte, error)
	// Shutdown lets in-flight requests finish (until ctx ends) before the
	// host kills the process.
	Shutdown(ctx context.Context) error
}

// Plugin is the go-plugin glue for Module. The host uses it with a nil Impl
// (through PluginMap(nil)); the module process sets Impl.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Module
}

var _ plugin.GRPCPlugin = (*Plugin)(nil)

// PluginMap is the plugin set for plugin.ServeConfig and plugin.ClientConfig.
func PluginMap(impl Module) map[string]plugin.Plugin {
	return map[string]plugin.Plugin{PluginName: &Plugin{Impl: impl}}
}

// HookError is a hook's answer that refuses: Code is stable
// ("insufficient_balance"), Message is for people.
type HookError struct {
	Code    string
	Message string
}

func (e *HookError) Error() string { return e.Code + ": " + e.Message }
