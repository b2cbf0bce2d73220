package rpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/indigo-hq/indigo/sdk/internal/proto"
	"github.com/indigo-hq/indigo/sdk/internal/spec"
)

// fakeModule records what crossed the wire and answers what the test says.
type fakeModule struct {
	manifest spec.Manifest
	handle   func(ctx context.Context, req Request) (Response, error)
	hook     func(ctx context.Context, name string, payload []byte) ([]byte, error)

	mu       sync.Mutex
	requests []Request
	inits    []InitRequest
	hosts    []HostServices
	shutdown int
}

func (f *fakeModule) Describe(context.Context) (spec.Manifest, error) { return f.manifest, nil }

func (f *fakeModule) ServerInit(ctx context.Context, req InitRequest, host HostServices) error {
	f.mu.Lock()
	f.inits = append(f.inits, req)
	f.hosts = append(f.hosts, host)
	f.mu.Unlock()
	// Call back into the host while the host is waiting on us, as a
	// module's ServerInit may.
	if err := host.Log(ctx, slog.LevelWarn, "init", map[string]string{"n": fmt.Sprint(len(f.inits))}); err != nil {
		return err
	}
	_, err := host.Scopes(ctx)
	return err
}

func (f *fakeModule) Handle(ctx context.Context, req Request) (Response, error) {
	f.mu.Lock()
	f.requests = append(f.requests, req)
	handle := f.handle
	f.mu.Unlock()
	if handle != nil {
		return handle(ctx, req)
	}
	return Response{Status: http.StatusOK}, nil
}

// seen is the requests so far. The race detector sees no order in a
// socket's bytes, so reads after a call go through the lock.
func (f *fakeModule) seen() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.requests...)
}

func (f *fakeModule) setHandle(h func(ctx context.Context, req Request) (Response, error)) {
	f.mu.Lock()
	f.handle = h
	f.mu.Unlock()
}

func (f *fakeModule) CallHook(ctx context.Context, name string, payload []byte) ([]byte, error) {
	if f.hook == nil {
		return nil, status.Error(codes.Unimplemented, "no hooks")
	}
	return f.hook(ctx, name, payload)
}

func (f *fakeModule) Shutdown(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shutdown++
	return nil
}

type logLine struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

type fakeHost struct {
	scopes []spec.RegisteredScope
	mu     sync.Mutex
	logs   []logLine
}

func (h *fakeHost) Log(_ context.Context, level slog.Level, msg string, attrs map[string]string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.logs = append(h.logs, logLine{level, msg, attrs})
	return nil
}

func (h *fakeHost) Scopes(context.Context) ([]spec.RegisteredScope, error) { return h.scopes, nil }

func (h *fakeHost) lines() []logLine {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]logLine(nil), h.logs...)
}

// connect serves impl in memory and returns the host's side.
func connect(t *testing.T, impl Module) (Module, *plugin.GRPCClient, *plugin.GRPCServer) {
	t.Helper()
	client, server := plugin.TestPluginGRPCConn(t, false, PluginMap(impl))
	// Close stops the server too, through go-plugin's controller; a
	// second Stop from here would race with it.
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(PluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(Module), client, server
}

func allBytes() []byte {
	b := make([]byte, 256*3)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// exchange is a request and an answer that use every field: bytes of
// every value in the bodies, repeated, empty and lower-case headers.
func exchange() (Request, Response) {
	req := Request{
		Method:     http.MethodPatch,
		Path:       "/projects/p1/files/a b",
		PathParams: map[string]string{"id": "p1", "name": "a b"},
		Query:      "x=1&x=2&y=%20",
		Header: http.Header{
			"Accept":       {"application/json", "text/plain"},
			"X-Empty":      {""},
			"x-lower-case": {"kept as sent"},
		},
		Body: allBytes(),
		Caller: spec.Caller{
			OrgID: "org_1", KeyID: "key_1", Scopes: []string{"projects:read", "projects:write"},
			Superkey: true, RequestID: "req-42", V1: true,
		},
	}
	resp := Response{
		Status: http.StatusTeapot,
		Header: http.Header{"Set-Cookie": {"a=1", "b=2"}, "Content-Type": {"application/octet-stream"}},
		Body:   append([]byte{0, 0xff}, allBytes()...),
	}
	return req, resp
}

func TestHandleRoundTrip(t *testing.T) {
	want, wantResp := exchange()
	fake := &fakeModule{handle: func(context.Context, Request) (Response, error) { return wantResp, nil }}
	mod, _, _ := connect(t, fake)

	got, err := mod.Handle(t.Context(), want)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, wantResp) {
		t.Errorf("response:\n got %+v\nwant %+v", got, wantResp)
	}
	if len(fake.requests) != 1 {
		t.Fatalf("module saw %d requests", len(fake.requests))
	}
	if gotReq := fake.requests[0]; !reflect.DeepEqual(gotReq, want) {
		t.Errorf("request:\n got %+v\nwant %+v", gotReq, want)
	}
}

// A hook's payload and result cross unchanged, a refusal comes back as a
// *HookError with its code, and a failure stays an error of the call.
func TestCallHookRoundTrip(t *testing.T) {
	fake := &fakeModule{hook: func(_ context.Context, name string, payload []byte) ([]byte, error) {
		switch name {
		case "echo":
			return append([]byte("got:"), payload...), nil
		case "refuse":
			return nil, &HookError{Code: "insufficient_balance", Message: "spent"}
		default:
			return nil, status.Error(codes.Unimplemented, "no such hook")
		}
	}}
	mod, _, _ := connect(t, fake)
	out, err := mod.CallHook(t.Context(), "echo", []byte(`{"a":1}`))
	if err != nil || string(out) != `got:{"a":1}` {
		t.Fatalf("echo: %q, %v", out, err)
	}
	_, err = mod.CallHook(t.Context(), "refuse", nil)
	he, ok := errors.AsType[*HookError](err)
	if !ok || he.Code != "insufficient_balance" || he.Message != "spent" {
		t.Fatalf("refuse: %v", err)
	}
	_, err = mod.CallHook(t.Context(), "missing", nil)
	if _, ok := errors.AsType[*HookError](err); ok || err == nil || !strings.Contains(err.Error(), "no such hook") {
		t.Fatalf("missing hook: %v", err)
	}
}

// The same header always encodes the same way, and a name a sender repeats
// keeps all its values in order.
func TestHeaderConversion(t *testing.T) {
	h := http.Header{"B": {"2"}, "A": {"1", "0"}, "C": nil, "a": {"lower"}}
	for range 5 { // map order varies from run to run
		var names []string
		for _, m := range toProtoHeader(h) {
			name := string(m.GetName())
			names = append(names, name)
			var values []string
			for _, v := range m.GetValues() {
				values = append(values, string(v))
			}
			if !reflect.DeepEqual(values, h[name]) {
				t.Errorf("%s: values %q, want %q", name, values, h[name])
			}
		}
		if want := []string{"A", "B", "C", "a"}; !reflect.DeepEqual(names, want) {
			t.Fatalf("names %q, want %q", names, want)
		}
	}
	got := fromProtoHeader([]*pb.Header{
		{Name: []byte("X"), Values: [][]byte{[]byte("1")}}, {Name: []byte("Y")}, {Name: []byte("X"), Values: [][]byte{[]byte("2"), []byte("3")}},
		{Name: []byte("Z"), Values: [][]byte{[]byte("caf\xe9"), {}}},
	})
	if want := (http.Header{"X": {"1", "2", "3"}, "Y": nil, "Z": {"caf\xe9", ""}}); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	// Each value list is its own: adding to one leaves the next alone.
	got = fromProtoHeader([]*pb.Header{{Name: []byte("A"), Values: [][]byte{[]byte("1")}}, {Name: []byte("B"), Values: [][]byte{[]byte("2")}}})
	got.Add("A", "new")
	if got.Get("B") != "2" {
		t.Errorf("adding to one name changed another: %q", got)
	}
}

// Empty values must arrive usable: a nil header map would panic on Set.
func TestHandleEmptyRequest(t *testing.T) {
	fake := &fakeModule{}
	mod, _, _ := connect(t, fake)
	resp, err := mod.Handle(t.Context(), Request{Method: "GET", Path: "/x"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header == nil || fake.requests[0].Header == nil {
		t.Error("header map is nil after the trip")
	}
	if len(fake.requests[0].Body) != 0 {
		t.Errorf("body = %q", fake.requests[0].Body)
	}
}

func TestDescribe(t *testing.T) {
	want := spec.Manifest{
		Name: "projects", Version: "1.2.3", Protocol: ProtocolVersion,
		Hooks:  []string{"key_limit", "deduct_api_call_token"},
		Scopes: []spec.Scope{{ID: "projects:read", Label: "Read"}},
		Routes: []spec.Route{
			{Method: "GET", Path: "/projects/{id}", Scopes: []string{"projects:read"}, Cost: 2},
			{Method: "GET", Path: "/legacy", Scopes: []string{}, V1: true},
		},
	}
	mod, _, _ := connect(t, &fakeModule{manifest: want})
	got, err := mod.Describe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestServerInitReusesHostServices(t *testing.T) {
	fake := &fakeModule{}
	mod, _, _ := connect(t, fake)
	first := &fakeHost{scopes: []spec.RegisteredScope{{ID: "projects:read", Label: "Read", Module: "projects"}}}
	if err := mod.ServerInit(t.Context(), InitRequest{ConfigJSON: []byte(`{"a":1}`), DataDir: "/data/p"}, first); err != nil {
		t.Fatal(err)
	}
	id := mod.(*moduleClient).hostID

	scopes, err := fake.hosts[0].Scopes(t.Context())
	if err != nil || !reflect.DeepEqual(scopes, first.scopes) {
		t.Errorf("Scopes() = %+v, %v; want %+v", scopes, err, first.scopes)
	}

	// A reload brings another HostServices: the same server must now
	// answer with it.
	second := &fakeHost{}
	if err := mod.ServerInit(t.Context(), InitRequest{DataDir: "/data/q"}, second); err != nil {
		t.Fatal(err)
	}
	if got := mod.(*moduleClient).hostID; got != id {
		t.Errorf("second ServerInit opened host-services server %d, want reuse of %d", got, id)
	}
	if fake.hosts[0] != fake.hosts[1] {
		t.Error("module side dialled the host services again")
	}
	if got := fake.inits; !bytes.Equal(got[0].ConfigJSON, []byte(`{"a":1}`)) || got[0].DataDir != "/data/p" || got[1].DataDir != "/data/q" {
		t.Errorf("init requests = %+v", got)
	}
	if l := first.lines(); len(l) != 1 || l[0].level != slog.LevelWarn || l[0].msg != "init" || l[0].attrs["n"] != "1" {
		t.Errorf("first host logs = %+v", l)
	}
	if l := second.lines(); len(l) != 1 || l[0].attrs["n"] != "2" {
		t.Errorf("second host logs = %+v", l)
	}
}

func TestHandleDeadline(t *testing.T) {
	fake := &fakeModule{handle: func(ctx context.Context, _ Request) (Response, error) {
		<-ctx.Done() // the module sees the host's deadline
		return Response{}, ctx.Err()
	}}
	mod, _, _ := connect(t, fake)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := mod.Handle(ctx, Request{Method: "GET", Path: "/slow"})
	if !IsDeadline(err) || IsUnavailable(err) {
		t.Fatalf("err = %v: IsDeadline %v, IsUnavailable %v", err, IsDeadline(err), IsUnavailable(err))
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(err, context.DeadlineExceeded) = false for %v", err)
	}
}

func TestHandleCallerCancel(t *testing.T) {
	fake := &fakeModule{handle: func(ctx context.Context, _ Request) (Response, error) {
		<-ctx.Done()
		return Response{}, ctx.Err()
	}}
	mod, _, _ := connect(t, fake)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := mod.Handle(ctx, Request{Method: "GET", Path: "/slow"})
	if !errors.Is(err, context.Canceled) || IsUnavailable(err) || IsDeadline(err) {
		t.Fatalf("err = %v: a caller's cancel is neither unavailable nor a deadline", err)
	}
}

func TestHandleUnavailable(t *testing.T) {
	t.Run("module gone", func(t *testing.T) {
		mod, _, server := connect(t, &fakeModule{})
		server.Stop()
		_, err := mod.Handle(t.Context(), Request{Method: "GET", Path: "/x"})
		if !IsUnavailable(err) || IsDeadline(err) {
			t.Fatalf("err = %v, want unavailable", err)
		}
	})
	t.Run("client closed", func(t *testing.T) {
		mod, client, _ := connect(t, &fakeModule{})
		_ = client.Close()
		_, err := mod.Handle(t.Context(), Request{Method: "GET", Path: "/x"})
		if !IsUnavailable(err) || IsDeadline(err) || IsOutcomeUnknown(err) {
			t.Fatalf("err = %v, want unavailable and never sent", err)
		}
	})
}

func TestHandleRequestTooLarge(t *testing.T) {
	fake := &fakeModule{}
	mod, _, _ := connect(t, fake)
	_, err := mod.Handle(t.Context(), Request{Method: "POST", Path: "/x", Body: make([]byte, MaxRequestBody+1)})
	if !errors.Is(err, ErrRequestTooLarge) {
		t.Fatalf("err = %v", err)
	}
	if len(fake.requests) != 0 {
		t.Error("the oversized request reached the module")
	}
}

func TestShutdown(t *testing.T) {
	fake := &fakeModule{}
	mod, _, _ := connect(t, fake)
	if err := mod.ServerInit(t.Context(), InitRequest{}, nil); err != nil {
		t.Fatal(err)
	}
	if err := mod.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if fake.shutdown != 1 {
		t.Errorf("module shut down %d times", fake.shutdown)
	}
}

func TestErrorClassification(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		err                   error
		unavailable, deadline bool
	}{
		{"nil", nil, false, false},
		{"plain", errors.New("boom"), false, false},
		{"grpc unavailable", status.Error(codes.Unavailable, "connection closed"), true, false},
		{"grpc deadline", status.Error(codes.DeadlineExceeded, "late"), false, true},
		{"context deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), false, true},
		{"grpc internal", status.Error(codes.Internal, "bug"), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsUnavailable(tc.err); got != tc.unavailable {
				t.Errorf("IsUnavailable = %v", got)
			}
			if got := IsDeadline(tc.err); got != tc.deadline {
				t.Errorf("IsDeadline = %v", got)
			}
		})
	}
}

func TestPluginWithoutImplRefusesToServe(t *testing.T) {
	if err := (&Plugin{}).GRPCServer(nil, nil); err == nil {
		t.Error("a nil Impl was served")
	}
}

// streamed connects a fake module whose manifest offers HandleStream, and
// reads the manifest as the host does, which turns the stream on.
func streamed(t *testing.T, fake *fakeModule) *moduleClient {
	t.Helper()
	fake.manifest.StreamCalls = true
	mod, _, _ := connect(t, fake)
	if _, err := mod.Describe(t.Context()); err != nil {
		t.Fatal(err)
	}
	return mod.(*moduleClient)
}

// Concurrent calls share one stream and each gets its own answer.
func TestStreamCallsRoundTrip(t *testing.T) {
	fake := &fakeModule{handle: func(_ context.Context, req Request) (Response, error) {
		return Response{Status: 200, Header: http.Header{"X-Path": {req.Path}}, Body: []byte(req.Path + "?" + req.Query)}, nil
	}}
	c := streamed(t, fake)
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			path := fmt.Sprintf("/echo/%d", i)
			resp, err := c.Handle(t.Context(), Request{Method: "GET", Path: path, Query: "q=1", Caller: spec.Caller{OrgID: "o"}})
			if err != nil || string(resp.Body) != path+"?q=1" || resp.Header.Get("X-Path") != path {
				t.Errorf("call %d: %+v, %v", i, resp, err)
			}
		})
	}
	wg.Wait()
	if c.cs == nil {
		t.Fatal("the calls did not use the stream")
	}
	if len(fake.requests) != 100 {
		t.Fatalf("module saw %d calls", len(fake.requests))
	}
}

// A deadline that passes ends the call with a deadline error and cancels
// the handler's context in the module; a caller that gives up cancels it
// too, without the call looking like a crash.
func TestStreamCallDeadlineAndCancel(t *testing.T) {
	ended := make(chan error, 2)
	fake := &fakeModule{handle: func(ctx context.Context, _ Request) (Response, error) {
		<-ctx.Done()
		ended <- ctx.Err()
		return Response{Status: 200}, nil
	}}
	c := streamed(t, fake)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Handle(ctx, Request{Method: "GET", Path: "/slow"})
	if !IsDeadline(err) || IsUnavailable(err) {
		t.Fatalf("past the deadline: %v", err)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the module's handler was not cancelled at the deadline")
	}
	ctx, cancel = context.WithCancel(t.Context())
	go func() { time.Sleep(30 * time.Millisecond); cancel() }()
	_, err = c.Handle(ctx, Request{Method: "GET", Path: "/slow"})
	if err == nil || IsUnavailable(err) || IsDeadline(err) {
		t.Fatalf("cancelled by the caller: %v", err)
	}
	select {
	case got := <-ended:
		if !errors.Is(got, context.Canceled) {
			t.Fatalf("the handler saw %v", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the cancel frame did not reach the module")
	}
	// The stream still serves after both.
	fake.handle = func(context.Context, Request) (Response, error) { return Response{Status: 204}, nil }
	if resp, err := c.Handle(t.Context(), Request{Method: "GET", Path: "/ok"}); err != nil || resp.Status != 204 {
		t.Fatalf("after a timeout and a cancel: %+v %v", resp, err)
	}
}

// A module's error keeps its status across the stream, and a large body
// travels as its own call.
func TestStreamCallErrorsAndLargeBodies(t *testing.T) {
	fake := &fakeModule{handle: func(_ context.Context, req Request) (Response, error) {
		if req.Path == "/closing" {
			return Response{}, status.Error(codes.Unavailable, "module is shutting down")
		}
		return Response{Status: 200, Body: []byte(strconv.Itoa(len(req.Body)))}, nil
	}}
	c := streamed(t, fake)
	big := bytes.Repeat([]byte{'x'}, streamBodyMax+1)
	resp, err := c.Handle(t.Context(), Request{Method: "POST", Path: "/big", Body: big})
	if err != nil || string(resp.Body) != strconv.Itoa(len(big)) {
		t.Fatalf("large body: %+v %v", resp, err)
	}
	if c.cs != nil {
		t.Fatal("a large body went on the shared stream")
	}
	if _, err := c.Handle(t.Context(), Request{Method: "GET", Path: "/closing"}); !IsUnavailable(err) {
		t.Fatalf("a module shutting down: %v", err)
	}
	if c.cs == nil {
		t.Fatal("a small call did not use the stream")
	}
}
