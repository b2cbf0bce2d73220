//go:build unix

package sdk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/indigo-hq/indigo/sdk"
	"github.com/indigo-hq/indigo/sdk/rpc"
)

// buildTestModule builds sdk/internal/testmodule once per test binary run.
func buildTestModule(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "testmodule")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/indigo-hq/indigo/sdk/internal/testmodule").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

var testModuleManifest = sdk.Manifest{
	Name:        "testmodule",
	Version:     "0.0.1",
	Scopes:      []sdk.Scope{{ID: "testmodule:echo", Label: "Echo requests"}},
	Routes:      []sdk.Route{{Method: "POST", Path: "/echo/{id}", Scopes: []string{"testmodule:echo"}, Cost: 1}},
	Protocol:    rpc.ProtocolVersion,
	Hooks:       []string{sdk.HookDeductAPICallToken, sdk.HookKeyLimit},
	StreamCalls: true,
	DataSocket:  true,
}

type hostLogs struct {
	mu    sync.Mutex
	lines []string
}

func (h *hostLogs) Log(_ context.Context, level slog.Level, msg string, attrs map[string]string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = append(h.lines, level.String()+" "+msg+" id="+attrs["id"])
	return nil
}

func (h *hostLogs) Scopes(context.Context) ([]sdk.RegisteredScope, error) { return nil, nil }

func (h *hostLogs) all() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.lines...)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The module as the host runs it: a real process, started and stopped by
// go-plugin, on each wire.
func TestModuleProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a module binary")
	}
	bin := buildTestModule(t)

	t.Run("describe", func(t *testing.T) {
		out, err := exec.Command(bin, "describe").Output()
		if err != nil {
			t.Fatal(err)
		}
		var got sdk.Manifest
		if err := json.Unmarshal(out, &got); err != nil || !reflect.DeepEqual(got, testModuleManifest) {
			t.Errorf("describe = %+v (%v)\n%s", got, err, out)
		}
	})

	for _, setup := range []rpc.ClientSetup{{Wire: rpc.WireSocket}, {Wire: rpc.WireSocket, MTLS: true}, {Wire: rpc.WireGRPC}} {
		name := setup.Wire
		if setup.MTLS {
			name += "+mtls"
		}
		t.Run(name, func(t *testing.T) { testModuleProcess(t, bin, setup) })
	}
}

func testModuleProcess(t *testing.T, bin string, setup rpc.ClientSetup) {
	var pluginLog lockedBuffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("go-plugin log:\n%s", pluginLog.String())
		}
	})
	cfg := &plugin.ClientConfig{
		HandshakeConfig: rpc.Handshake,
		Plugins:         rpc.PluginMap(nil),
		Cmd:             exec.Command(bin),
		Logger:          hclog.New(&hclog.LoggerOptions{Output: &pluginLog, Level: hclog.Debug}),
	}
	dir, err := setup.Setup(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if dir != "" {
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
	}
	client := plugin.NewClient(cfg)
	defer client.Kill()

	conn, err := client.Client()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := conn.Dispense(rpc.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	mod := raw.(rpc.Module)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	if got, err := mod.Describe(ctx); err != nil || !reflect.DeepEqual(got, testModuleManifest) {
		t.Errorf("Describe = %+v, %v", got, err)
	}
	if dir != "" {
		if err := rpc.OpenSocket(ctx, mod, rpc.SocketOptions{Path: rpc.DataSocketPath(dir), TLS: setup.MTLS}); err != nil {
			t.Fatal(err)
		}
		// Every socket of the module is in the directory, and only the
		// host's user can open it.
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("socket directory: %v %v", fi.Mode(), err)
		}
		if socks, _ := filepath.Glob(filepath.Join(dir, "*")); len(socks) != 2 {
			t.Errorf("sockets in %s: %v, want go-plugin's and the data socket", dir, socks)
		}
	}

	host := &hostLogs{}
	dataDir := t.TempDir()
	if err := mod.ServerInit(ctx, rpc.InitRequest{ConfigJSON: []byte(`{"greeting":"hi"}`), DataDir: dataDir}, host); err != nil {
		t.Fatal(err)
	}

	// 9 MiB each way is above gRPC's 4 MiB default: it only passes because
	// both sides use the wire's limits.
	body := bytes.Repeat([]byte{0, 0xff}, 9<<19)
	resp, err := mod.Handle(ctx, rpc.Request{
		Method:     "POST",
		Path:       "/echo/abc",
		PathParams: map[string]string{"id": "abc"},
		Header:     http.Header{"Content-Type": {"application/octet-stream"}},
		Body:       body,
		Caller:     sdk.Caller{OrgID: "org_1", Scopes: []string{"testmodule:echo"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var echo map[string]any
	if err := json.Unmarshal(resp.Body, &echo); err != nil || resp.Status != http.StatusCreated {
		t.Fatalf("status %d body %.200s (%v)", resp.Status, resp.Body, err)
	}
	want := map[string]any{
		"id": "abc", "path": "/echo/abc", "org": "org_1",
		"body_len": float64(len(body)), "greeting": "hi", "data_dir": dataDir,
	}
	if !reflect.DeepEqual(echo, want) {
		t.Errorf("echo = %v\nwant %v", echo, want)
	}

	resp, err = mod.Handle(ctx, rpc.Request{Method: "POST", Path: "/echo/big", Query: "size=" + strconv.Itoa(rpc.MaxResponseBody)})
	if err != nil || resp.Status != http.StatusOK || len(resp.Body) != rpc.MaxResponseBody {
		t.Errorf("response at the cap: %d, %d bytes, %v", resp.Status, len(resp.Body), err)
	}
	resp, err = mod.Handle(ctx, rpc.Request{Method: "POST", Path: "/echo/big", Query: "size=" + strconv.Itoa(rpc.MaxResponseBody+1)})
	if err != nil || resp.Status != http.StatusBadGateway || !strings.Contains(string(resp.Body), "module_response_too_large") {
		t.Errorf("response over the cap: %d %.200s %v", resp.Status, resp.Body, err)
	}
	if _, err := mod.Handle(ctx, rpc.Request{Method: "POST", Path: "/echo/x", Body: make([]byte, rpc.MaxRequestBody+1)}); !errors.Is(err, rpc.ErrRequestTooLarge) {
		t.Errorf("request over the cap: %v", err)
	}

	// Hooks across the process boundary: a result, a refusal, a failure,
	// and a hook the module does not provide.
	if out, err := mod.CallHook(ctx, sdk.HookKeyLimit, []byte(`{"org_id":"o1"}`)); err != nil || string(out) != `{"plan":"test-o1","max_keys":2,"limited":true}` {
		t.Errorf("key_limit = %s, %v", out, err)
	}
	if _, err := mod.CallHook(ctx, sdk.HookDeductAPICallToken, []byte(`{"org_id":"o1","cost":1,"request_id":"r1"}`)); err != nil {
		t.Errorf("deduct cost 1: %v", err)
	}
	_, err = mod.CallHook(ctx, sdk.HookDeductAPICallToken, []byte(`{"org_id":"o1","cost":6}`))
	if he, ok := errors.AsType[*rpc.HookError](err); !ok || he.Code != "insufficient_balance" {
		t.Errorf("deduct cost 6: %v", err)
	}
	_, err = mod.CallHook(ctx, sdk.HookDeductAPICallToken, []byte(`{"org_id":"o1","cost":-1}`))
	if _, ok := errors.AsType[*rpc.HookError](err); ok || err == nil || !strings.Contains(err.Error(), "negative cost") {
		t.Errorf("deduct failure: %v", err)
	}
	if _, err := mod.CallHook(ctx, sdk.HookResolveOrgID, []byte(`{}`)); status.Code(errors.Unwrap(err)) != codes.Unimplemented {
		t.Errorf("a hook not provided: %v", err)
	}

	if got, want := host.all(), []string{"INFO started id=", "INFO handled id=abc"}; !reflect.DeepEqual(got, want) {
		t.Errorf("host logs = %q, want %q", got, want)
	}

	if err := mod.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	pid := client.ReattachConfig().Pid
	client.Kill()
	if !client.Exited() {
		t.Error("client does not report the module exited")
	}
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("module process %d still exists after Kill", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := mod.Handle(ctx, rpc.Request{Method: "POST", Path: "/echo/x"}); !rpc.IsUnavailable(err) {
		t.Errorf("Handle after Kill = %v, want unavailable", err)
	}
}
