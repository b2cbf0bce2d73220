package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/sdk/rpc"
)

// grpcSide is a second host whose modules run on the previous release's
// wire (api.module_wire = "grpc": every call on go-plugin's gRPC
// connection, with mTLS), with benchmod alone, so that one run compares
// the two wires on the same routes against the same bare twins: the
// first host runs the default wire, the data socket.
type grpcSide struct {
	host        *core.Host
	mod, mod16k route
}

// startGRPCSide starts the gRPC-wire host with the benchmod binary that
// hostConfig built in mainTmp, and records its answers, which must be the
// bytes the bare twins replay.
func (s *servers) startGRPCSide(ctx context.Context, o options, mainTmp string) (*grpcSide, error) {
	tmp, err := os.MkdirTemp("", "indigo-bench-grpc-")
	if err != nil {
		return nil, err
	}
	s.onClose(func() { os.RemoveAll(tmp) })
	go1 := o
	go1.module = false // hostConfig builds nothing: the binary is mainTmp's
	cfg, _, err := hostConfig(tmp, go1)
	if err != nil {
		return nil, err
	}
	cfg.API.ModuleWire = rpc.WireGRPC
	cfg.Modules = []config.Module{{Name: memModule, Path: filepath.Join(mainTmp, memModule), Env: o.moduleEnv}}
	if o.modProfile != "" {
		// This host's benchmod writes a profile of its own, beside the
		// first host's; the variable is read when the process starts.
		abs, err := filepath.Abs(o.modProfile + ".grpc")
		if err != nil {
			return nil, err
		}
		if err := os.Setenv(envModProfile, abs); err != nil {
			return nil, err
		}
		s.onClose(func() { fmt.Printf("module process CPU profile, gRPC wire (all rounds) -> %s\n", abs) })
	}
	gs := &grpcSide{}
	if gs.host, err = startHost(ctx, &cfg); err != nil {
		return nil, err
	}
	s.onClose(func() { shutdownHost(gs.host, cfg.Server.ShutdownTimeout.Duration) })
	if !o.requestLog {
		gs.host.API.Logs = nil
	}
	org, err := gs.host.Local.CreateOrg(ctx, "bench")
	if err != nil {
		return nil, err
	}
	auth, err := createKey(ctx, gs.host, org.ID, nil)
	if err != nil {
		return nil, err
	}
	for _, r := range []struct {
		own  *route
		twin route
	}{{&gs.mod, s.mod}, {&gs.mod16k, s.mod16k}} {
		body, ctype, err := fetch(ctx, gs.host.Addr(), r.twin.path, auth)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(body, r.twin.body) || ctype != r.twin.ctype {
			return nil, fmt.Errorf("GET %s answers other bytes on the gRPC wire than on the data socket", r.twin.path)
		}
		*r.own = route{path: r.twin.path, body: body, ctype: ctype, auth: auth}
	}
	return gs, nil
}
