package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"sync"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/indigo-hq/indigo/sdk/internal/proto"
	"github.com/indigo-hq/indigo/sdk/internal/spec"
)

// GRPCServer builds the module side: it serves Impl on the plugin's server.
func (p *Plugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return errors.New("rpc: Plugin.Impl is nil; only the host may use PluginMap(nil)")
	}
	ms := &moduleServer{impl: p.Impl, broker: broker}
	if path := os.Getenv(CPUProfileEnv); path != "" {
		if err := ms.startProfile(path); err != nil {
			return err
		}
	}
	pb.RegisterModuleServer(s, ms)
	return nil
}

// CPUProfileEnv names an opt-in environment variable for diagnosis, read
// when sdk.Serve starts serving: a module process that has it (the host
// passes its own environment on) writes a CPU profile of itself to that
// path until the host calls Shutdown, so that the module's side of a call
// can be profiled as the host's is. A relative path is relative to the
// module's working directory, its data directory under the host: with
// several modules, each then writes its own. An unusable path fails the
// module's start rather than leave it unprofiled without a word.
const CPUProfileEnv = "INDIGO_MODULE_CPUPROFILE"

func (s *moduleServer) startProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("%s: %w", CPUProfileEnv, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("%s: %w", CPUProfileEnv, err)
	}
	s.stopProfile = sync.OnceFunc(func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	})
	return nil
}

// moduleServer runs in the module process and calls the wrapped Module.
type moduleServer struct {
	pb.UnimplementedModuleServer
	impl   Module
	broker *plugin.GRPCBroker

	// The host opens one host-services server per module, so the module
	// dials it once and keeps the connection across ServerInit calls.
	mu       sync.Mutex
	hostID   uint32
	hostConn *grpc.ClientConn
	host     *hostServicesClient

	stopProfile func() // set when CPUProfileEnv is; ends the profile at Shutdown

	data *dataServer // the data socket, once the host opened it (under mu)
}

func (s *moduleServer) Describe(ctx context.Context, _ *pb.DescribeRequest) (*pb.Manifest, error) {
	m, err := s.impl.Describe(ctx)
	if err != nil {
		return nil, err
	}
	return toProtoManifest(m), nil
}

func (s *moduleServer) ServerInit(ctx context.Context, req *pb.InitRequest) (*pb.InitResponse, error) {
	host, err := s.hostServices(req.GetHostServicesId())
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "dial host services: %v", err)
	}
	init := InitRequest{ConfigJSON: req.GetConfigJson(), DataDir: req.GetDataDir(), DBEngine: req.GetDbEngine(), DBDSN: req.GetDbDsn()}
	if err := s.impl.ServerInit(ctx, init, host); err != nil {
		return nil, err
	}
	return &pb.InitResponse{}, nil
}

// hostServices returns the client for the host-services server id, dialling
// only when the id is new (the host reuses one id per module; a new id
// means a new host-side server and the old connection is dead weight).
func (s *moduleServer) hostServices(id uint32) (*hostServicesClient, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.host != nil && s.hostID == id {
		return s.host, nil
	}
	conn, err := s.broker.DialWithOptions(id, DialOptions...)
	if err != nil {
		return nil, err
	}
	if s.hostConn != nil {
		_ = s.hostConn.Close()
	}
	s.hostID, s.hostConn = id, conn
	s.host = &hostServicesClient{client: pb.NewHostServicesClient(conn)}
	return s.host, nil
}

func (s *moduleServer) Handle(ctx context.Context, req *pb.Request) (*pb.Response, error) {
	resp, err := s.impl.Handle(ctx, fromProtoRequest(req))
	if err != nil {
		return nil, err
	}
	out := toProtoResponse(resp)
	resp.Release()
	return out, nil
}

func (s *moduleServer) CallHook(ctx context.Context, req *pb.HookRequest) (*pb.HookResponse, error) {
	out, err := s.impl.CallHook(ctx, req.GetHook(), req.GetPayload())
	if he, ok := errors.AsType[*HookError](err); ok {
		return &pb.HookResponse{ErrorCode: he.Code, ErrorMessage: he.Message}, nil
	}
	if err != nil {
		return nil, err
	}
	return &pb.HookResponse{Result: out}, nil
}

func (s *moduleServer) Shutdown(ctx context.Context, _ *pb.ShutdownRequest) (*pb.ShutdownResponse, error) {
	err := s.impl.Shutdown(ctx)
	if s.stopProfile != nil {
		// The host kills the process right after Shutdown answers, so the
		// profile is written now or never.
		s.stopProfile()
	}
	s.mu.Lock()
	if s.hostConn != nil {
		_ = s.hostConn.Close()
		s.hostConn, s.host = nil, nil
	}
	if s.data != nil {
		s.data.close()
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return &pb.ShutdownResponse{}, nil
}

// hostServicesClient is the module's HostServices: calls over the broker
// connection back into the host.
type hostServicesClient struct {
	client pb.HostServicesClient
}

var _ HostServices = (*hostServicesClient)(nil)

func (c *hostServicesClient) Log(ctx context.Context, level slog.Level, msg string, attrs map[string]string) error {
	_, err := c.client.Log(ctx, &pb.LogRequest{Level: int32(level), Message: msg, Attrs: attrs})
	if err != nil {
		return fmt.Errorf("host log: %w", err)
	}
	return nil
}

func (c *hostServicesClient) Scopes(ctx context.Context) ([]spec.RegisteredScope, error) {
	resp, err := c.client.Scopes(ctx, &pb.ScopesRequest{})
	if err != nil {
		return nil, fmt.Errorf("host scopes: %w", err)
	}
	return fromProtoScopes(resp), nil
}
