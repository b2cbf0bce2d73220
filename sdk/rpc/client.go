package rpc

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"

	pb "github.com/indigo-hq/indigo/sdk/internal/proto"
	"github.com/indigo-hq/indigo/sdk/internal/spec"
)

// GRPCClient builds the host side: the Module the host gets from Dispense.
func (p *Plugin) GRPCClient(_ context.Context, broker *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return &moduleClient{client: pb.NewModuleClient(conn), broker: broker}, nil
}

// moduleClient is the host's view of one module process.
type moduleClient struct {
	client pb.ModuleClient
	broker *plugin.GRPCBroker

	// One host-services server per module, opened at the first ServerInit
	// and kept until the broker closes with the client: a server per call
	// would cost a listener and a connection each time.
	hostOnce sync.Once
	hostID   uint32
	// host is the HostServices the server delegates to; a later ServerInit
	// may bring another one, and the open server follows it.
	host atomic.Pointer[hostBox]

	// streams: the module's manifest says it serves HandleStream; calls
	// then share one stream (see stream_client.go).
	streams atomic.Bool
	csMu    sync.Mutex
	cs      *callStream
	nextID  atomic.Uint64

	// dataSocket: the manifest says the module serves a data socket;
	// sock is its connections once OpenSocket opened it, and then every
	// call goes there.
	dataSocket atomic.Bool
	sock       atomic.Pointer[socketPool]
}

// hostBox lets an interface value sit in an atomic.Pointer.
type hostBox struct{ HostServices }

var _ Module = (*moduleClient)(nil)

func (c *moduleClient) Describe(ctx context.Context) (spec.Manifest, error) {
	resp, err := c.client.Describe(ctx, &pb.DescribeRequest{})
	if err != nil {
		return spec.Manifest{}, wrapCall(ctx, "describe", err)
	}
	m := fromProtoManifest(resp)
	c.streams.Store(m.StreamCalls && !noStreams)
	c.dataSocket.Store(m.DataSocket)
	return m, nil
}

func (c *moduleClient) ServerInit(ctx context.Context, req InitRequest, host HostServices) error {
	if host == nil {
		host = noHost{}
	}
	c.host.Store(&hostBox{host})
	c.hostOnce.Do(func() {
		c.hostID = c.broker.NextId()
		srv := &hostServicesServer{client: c}
		go c.broker.AcceptAndServe(c.hostID, func(opts []grpc.ServerOption) *grpc.Server {
			s := NewServer(opts)
			pb.RegisterHostServicesServer(s, srv)
			return s
		})
	})
	_, err := c.client.ServerInit(ctx, &pb.InitRequest{
		ConfigJson:     req.ConfigJSON,
		DataDir:        req.DataDir,
		HostServicesId: c.hostID,
		DbEngine:       req.DBEngine,
		DbDsn:          req.DBDSN,
	})
	return wrapCall(ctx, "server init", err)
}

func (c *moduleClient) CallHook(ctx context.Context, hook string, payload []byte) ([]byte, error) {
	resp, err := c.client.CallHook(ctx, &pb.HookRequest{Hook: hook, Payload: payload})
	if err != nil {
		return nil, wrapCall(ctx, "hook "+hook, err)
	}
	if code := resp.GetErrorCode(); code != "" {
		return nil, &HookError{Code: code, Message: resp.GetErrorMessage()}
	}
	return resp.GetResult(), nil
}

func (c *moduleClient) Handle(ctx context.Context, req Request) (Response, error) {
	if len(req.Body) > MaxRequestBody {
		return Response{}, ErrRequestTooLarge
	}
	if p := c.sock.Load(); p != nil {
		return p.handle(ctx, &req)
	}
	if c.streams.Load() && len(req.Body) <= streamBodyMax {
		return c.handleOnStream(ctx, req)
	}
	// gRPC fills the peer only when the call got a stream on a connection:
	// without one, the request was never sent.
	var p peer.Peer
	resp, err := c.client.Handle(ctx, toProtoRequest(req), grpc.Peer(&p))
	if err != nil {
		if p.Addr != nil {
			return Response{}, wrapSent(ctx, "handle", err)
		}
		return Response{}, wrapCall(ctx, "handle", err)
	}
	return fromProtoResponse(resp), nil
}

func (c *moduleClient) Shutdown(ctx context.Context) error {
	_, err := c.client.Shutdown(ctx, &pb.ShutdownRequest{})
	return wrapCall(ctx, "shutdown", err)
}

// hostServicesServer runs in the host and answers the module's calls.
type hostServicesServer struct {
	pb.UnimplementedHostServicesServer
	client *moduleClient
}

func (s *hostServicesServer) current() HostServices {
	if b := s.client.host.Load(); b != nil {
		return b.HostServices
	}
	return noHost{}
}

func (s *hostServicesServer) Log(ctx context.Context, req *pb.LogRequest) (*pb.LogResponse, error) {
	if err := s.current().Log(ctx, slog.Level(req.GetLevel()), req.GetMessage(), req.GetAttrs()); err != nil {
		return nil, err
	}
	return &pb.LogResponse{}, nil
}

func (s *hostServicesServer) Scopes(ctx context.Context, _ *pb.ScopesRequest) (*pb.ScopesResponse, error) {
	scopes, err := s.current().Scopes(ctx)
	if err != nil {
		return nil, fmt.Errorf("host scopes: %w", err)
	}
	return toProtoScopes(scopes), nil
}

// noHost stands in when the host passes no services, so that a module's
// logger never has to check.
type noHost struct{}

func (noHost) Log(context.Context, slog.Level, string, map[string]string) error { return nil }

func (noHost) Scopes(context.Context) ([]spec.RegisteredScope, error) { return nil, nil }
