package sdktest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/sdk"
	"github.com/indigo-hq/indigo/sdk/rpc"
	"github.com/indigo-hq/indigo/sdk/sdktest"
)

// echo is what the test module reports about each request.
type echo struct {
	Method string              `json:"method"`
	Path   string              `json:"path"`
	Query  string              `json:"query"`
	ID     string              `json:"id"`
	Name   string              `json:"name"`
	Header map[string][]string `json:"header"`
	Body   []byte              `json:"body"`
	Caller sdk.Caller          `json:"caller"`
	HasDL  bool                `json:"has_deadline"`
}

type testModule struct {
	calls atomic.Int64
	inits atomic.Int64
	host  atomic.Pointer[sdk.Host]
	seen  struct {
		config  map[string]any
		dataDir string
		scopes  []sdk.RegisteredScope
	}
}

func (tm *testModule) module() sdk.Module {
	return sdk.Module{
		Name:    "projects",
		Version: "0.1.0",
		Scopes: []sdk.Scope{
			{ID: "projects:read", Label: "Read projects"},
			{ID: "projects:write", Label: "Write projects"},
		},
		Routes: []sdk.Route{
			{Method: "GET", Path: "/projects/{id}", Scopes: []string{"projects:read"}},
			{Method: "PUT", Path: "/projects/{id}/files/{name:[a-z.]+}", Scopes: []string{"projects:write"}},
			{Method: "GET", Path: "/panic", Scopes: []string{"projects:read"}},
			{Method: "GET", Path: "/slow", Scopes: []string{"projects:read"}},
		},
		ServerInit: func(ctx context.Context, h sdk.Host) error {
			tm.inits.Add(1)
			tm.host.Store(&h)
			scopes, err := h.Scopes(ctx)
			if err != nil {
				return err
			}
			tm.seen.config, tm.seen.dataDir, tm.seen.scopes = h.Config(), h.DataDir(), scopes
			if err := os.WriteFile(filepath.Join(h.DataDir(), "state"), []byte("ok"), 0o600); err != nil {
				return err
			}
			h.Logger().InfoContext(ctx, "initialised", "n", tm.inits.Load())
			return nil
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tm.calls.Add(1)
			switch r.URL.Path {
			case "/panic":
				panic("boom")
			case "/slow":
				<-r.Context().Done()
				return
			}
			body, _ := io.ReadAll(r.Body)
			caller, _ := sdk.CallerFrom(r.Context())
			_, hasDL := r.Context().Deadline()
			(*tm.host.Load()).Logger().Warn("handled", "id", r.PathValue("id"))
			w.Header().Add("X-Multi", "1")
			w.Header().Add("X-Multi", "2")
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(echo{
				Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
				ID: r.PathValue("id"), Name: r.PathValue("name"),
				Header: r.Header, Body: body, Caller: caller, HasDL: hasDL,
			})
		}),
	}
}

func TestDoRoundTrip(t *testing.T) {
	tm := &testModule{}
	h := sdktest.New(t, tm.module())
	body := make([]byte, 1024)
	for i := range body {
		body[i] = byte(i)
	}
	caller := sdk.Caller{OrgID: "o1", KeyID: "k1", Scopes: []string{"projects:write"}, Superkey: true, RequestID: "r1", V1: true}

	resp := h.Do("PUT", "/projects/p1/files/a.txt?x=1&x=2", caller, body,
		"Accept", "text/plain", "Accept", "application/json", "X-One", "1")
	if resp.Status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	if got := resp.Header.Values("X-Multi"); !reflect.DeepEqual(got, []string{"1", "2"}) {
		t.Errorf("X-Multi = %q", got)
	}
	var got echo
	if err := resp.Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := echo{
		Method: "PUT", Path: "/projects/p1/files/a.txt", Query: "x=1&x=2",
		ID: "p1", Name: "a.txt",
		Header: map[string][]string{"Accept": {"text/plain", "application/json"}, "X-One": {"1"}},
		Body:   body, Caller: caller, HasDL: true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("module saw:\n%+v\nwant:\n%+v", got, want)
	}
}

func TestDoUndeclaredRouteIs404(t *testing.T) {
	tm := &testModule{}
	h := sdktest.New(t, tm.module())
	for _, tc := range []struct{ method, path string }{
		{"GET", "/nope"},
		{"DELETE", "/projects/p1"},          // declared path, undeclared method
		{"PUT", "/projects/p1/files/UPPER"}, // the variable's pattern refuses it
		{"GET", "/projects/p1/extra"},       // a template matches whole paths
		{"GET", "/api/v2/projects/p1"},      // paths are already below /api/v2
	} {
		if resp := h.Do(tc.method, tc.path, sdk.Caller{}, nil); resp.Status != http.StatusNotFound {
			t.Errorf("%s %s: status %d", tc.method, tc.path, resp.Status)
		}
	}
	if n := tm.calls.Load(); n != 0 {
		t.Errorf("the module was called %d times", n)
	}
}

func TestServerInitReachesModule(t *testing.T) {
	tm := &testModule{}
	core := sdk.RegisteredScope{ID: "keys:read", Label: "Read keys", Module: "core"}
	h := sdktest.New(t, tm.module(), sdktest.WithConfig(map[string]any{"region": "eu", "limit": 3}), sdktest.WithScopes(core))

	if want := map[string]any{"region": "eu", "limit": 3.0}; !reflect.DeepEqual(tm.seen.config, want) {
		t.Errorf("config = %v", tm.seen.config)
	}
	if b, err := os.ReadFile(filepath.Join(tm.seen.dataDir, "state")); err != nil || string(b) != "ok" {
		t.Errorf("data dir %q: %q %v", tm.seen.dataDir, b, err)
	}
	wantScopes := []sdk.RegisteredScope{
		core,
		{ID: "projects:read", Label: "Read projects", Module: "projects"},
		{ID: "projects:write", Label: "Write projects", Module: "projects"},
	}
	if !reflect.DeepEqual(tm.seen.scopes, wantScopes) {
		t.Errorf("scopes = %v", tm.seen.scopes)
	}

	h.Do("GET", "/projects/p9", sdk.Caller{}, nil)
	logs := h.Logs()
	want := []sdktest.LogRecord{
		{Level: slog.LevelInfo, Message: "initialised", Attrs: map[string]string{"n": "1"}},
		{Level: slog.LevelWarn, Message: "handled", Attrs: map[string]string{"id": "p9"}},
	}
	if !reflect.DeepEqual(logs, want) {
		t.Errorf("logs = %+v", logs)
	}

	// A second ServerInit reuses the host-services connection: the module
	// still reaches the host through it.
	err := h.Module().ServerInit(t.Context(), rpc.InitRequest{ConfigJSON: []byte(`{"region":"us"}`), DataDir: t.TempDir()}, h.Host())
	if err != nil {
		t.Fatal(err)
	}
	if tm.inits.Load() != 2 || tm.seen.config["region"] != "us" || len(tm.seen.scopes) != 3 {
		t.Errorf("second init: %d inits, config %v, scopes %v", tm.inits.Load(), tm.seen.config, tm.seen.scopes)
	}
	if logs := h.Logs(); len(logs) != 3 || logs[2].Attrs["n"] != "2" {
		t.Errorf("logs after the second init = %+v", logs)
	}
}

func TestDescribe(t *testing.T) {
	tm := &testModule{}
	h := sdktest.New(t, tm.module())
	got, err := h.Module().Describe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := tm.module().Manifest(); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestPanicIs500AndModuleKeepsServing(t *testing.T) {
	tm := &testModule{}
	h := sdktest.New(t, tm.module())
	resp := h.Do("GET", "/panic", sdk.Caller{}, nil)
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := resp.Decode(&e); err != nil || resp.Status != http.StatusInternalServerError || e.Error.Code != "module_panic" {
		t.Fatalf("status %d body %s (%v)", resp.Status, resp.Body, err)
	}
	if resp := h.Do("GET", "/projects/p1", sdk.Caller{}, nil); resp.Status != http.StatusOK {
		t.Errorf("after a panic: status %d", resp.Status)
	}
	var logged bool
	for _, l := range h.Logs() {
		logged = logged || (l.Message == "module panic" && l.Attrs["panic"] == "boom")
	}
	if !logged {
		t.Errorf("panic not logged to the host: %+v", h.Logs())
	}
}

func TestHandleDeadline(t *testing.T) {
	tm := &testModule{}
	h := sdktest.New(t, tm.module())
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := h.Module().Handle(ctx, rpc.Request{Method: "GET", Path: "/slow"})
	if !rpc.IsDeadline(err) || rpc.IsUnavailable(err) {
		t.Fatalf("err = %v", err)
	}
	// The module is still there for the next request.
	if resp := h.Do("GET", "/projects/p1", sdk.Caller{}, nil); resp.Status != http.StatusOK {
		t.Errorf("status %d", resp.Status)
	}
}

func TestDoTimeoutOption(t *testing.T) {
	tm := &testModule{}
	h := sdktest.New(t, tm.module(), sdktest.WithTimeout(time.Minute))
	_, err := h.Module().Handle(t.Context(), rpc.Request{Method: "GET", Path: "/projects/p1"})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLargeBodies(t *testing.T) {
	tm := &testModule{}
	h := sdktest.New(t, tm.module())
	// Large, but under gRPC's default 4 MiB that go-plugin's in-memory
	// server keeps; the process test covers sizes up to the real limits.
	body := bytes.Repeat([]byte{0xfe, 0x00}, 1<<20)
	resp := h.Do("PUT", "/projects/p1/files/big", sdk.Caller{}, body)
	var got echo
	if err := resp.Decode(&got); err != nil || !bytes.Equal(got.Body, body) {
		t.Fatalf("status %d, %d bytes back, %v", resp.Status, len(got.Body), err)
	}
}
