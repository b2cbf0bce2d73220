package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/sdk/rpc"
)

// These tests call the adapter directly; sdktest and the process test cover
// the same code behind the wire.

type seen struct {
	method, path, rawQuery, host, requestURI string
	id, name                                 string
	header                                   http.Header
	body                                     []byte
	contentLength                            int64
	caller                                   Caller
	callerOK                                 bool
	deadline                                 time.Time
}

func recordingModule(got *seen) Module {
	m := validModule()
	m.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		caller, ok := CallerFrom(r.Context())
		deadline, _ := r.Context().Deadline()
		*got = seen{
			method: r.Method, path: r.URL.Path, rawQuery: r.URL.RawQuery, host: r.Host, requestURI: r.RequestURI,
			id: r.PathValue("id"), name: r.PathValue("name"),
			header: r.Header, body: body, contentLength: r.ContentLength,
			caller: caller, callerOK: ok, deadline: deadline,
		}
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte{0, 1, 2})
	})
	return m
}

func TestHandleRebuildsRequest(t *testing.T) {
	var got seen
	mod := Adapt(recordingModule(&got))
	caller := Caller{OrgID: "o1", KeyID: "k1", Scopes: []string{"projects:read"}, RequestID: "r1"}
	deadline := time.Now().Add(time.Minute)
	ctx, cancel := context.WithDeadline(t.Context(), deadline)
	defer cancel()

	resp, err := mod.Handle(ctx, rpc.Request{
		Method:     "PUT",
		Path:       "/projects/p1",
		PathParams: map[string]string{"id": "p1", "name": "a/b"},
		Query:      "x=1&x=2",
		Header:     http.Header{"Host": {"api.example.com"}, "Accept": {"a", "b"}},
		Body:       []byte("hello"),
		Caller:     caller,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := seen{
		method: "PUT", path: "/projects/p1", rawQuery: "x=1&x=2", host: "api.example.com",
		requestURI: "/projects/p1?x=1&x=2",
		id:         "p1", name: "a/b",
		header:        http.Header{"Accept": {"a", "b"}},
		body:          []byte("hello"),
		contentLength: 5,
		caller:        caller, callerOK: true, deadline: deadline,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("handler saw:\n%+v\nwant:\n%+v", got, want)
	}
	wantResp := rpc.Response{
		Status: http.StatusAccepted,
		Header: http.Header{"Set-Cookie": {"a=1", "b=2"}, "Content-Type": {"application/octet-stream"}},
		Body:   []byte{0, 1, 2},
	}
	if resp.Owner == nil {
		t.Error("the response does not lend its writer's memory")
	}
	resp.Owner = nil
	if !reflect.DeepEqual(resp, wantResp) {
		t.Errorf("response:\n got %+v\nwant %+v", resp, wantResp)
	}
}

// Writers are pooled: a released one starts the next call clean, and a
// response not yet released keeps what it had.
func TestPooledWritersStartClean(t *testing.T) {
	m := Module{Name: "pool", Routes: []Route{{Method: "GET", Path: "/w/{n}", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := r.PathValue("n")
		w.Header().Set("X-N", n)
		if n == "1" {
			w.Header().Set("X-Only-First", "yes")
		}
		w.WriteHeader(200 + len(n))
		_, _ = w.Write([]byte("body " + n))
	})}}}
	s := Adapt(m)
	call := func(n string) rpc.Response {
		resp, err := s.Handle(t.Context(), rpc.Request{Method: "GET", Path: "/w/" + n, PathParams: map[string]string{"n": n}})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	first := call("1")
	for _, n := range []string{"22", "333", "4444"} {
		r := call(n)
		if r.Status != 200+len(n) || string(r.Body) != "body "+n || r.Header.Get("X-N") != n || r.Header.Get("X-Only-First") != "" || len(r.Header) != 2 {
			t.Fatalf("call %s: %d %q %v", n, r.Status, r.Body, r.Header)
		}
		r.Release()
	}
	if first.Status != 201 || string(first.Body) != "body 1" || first.Header.Get("X-Only-First") != "yes" || first.Header.Get("X-N") != "1" {
		t.Fatalf("an unreleased response changed: %d %q %v", first.Status, first.Body, first.Header)
	}
	first.Release()
	first.Release() // a second Release is harmless
}

// A ServeMux registered with the Routes' own paths serves the requests, and
// its variables agree with the host's.
func TestHandleServeMuxWithRoutePaths(t *testing.T) {
	m := validModule()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /projects/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.PathValue("id"))
	})
	m.Handler = mux
	resp, err := Adapt(m).Handle(t.Context(), rpc.Request{Method: "GET", Path: "/projects/p1", PathParams: map[string]string{"id": "p1"}})
	if err != nil || resp.Status != http.StatusOK || string(resp.Body) != "p1" {
		t.Errorf("got %d %q %v", resp.Status, resp.Body, err)
	}
}

func TestHandleRefusesBadMethod(t *testing.T) {
	mod := Adapt(validModule())
	if _, err := mod.Handle(t.Context(), rpc.Request{Method: "BAD METHOD", Path: "/x"}); err == nil {
		t.Error("a malformed method was served")
	}
}

func decodeError(t *testing.T, resp rpc.Response) (code, message string) {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(resp.Body, &e); err != nil {
		t.Fatalf("error body %q: %v", resp.Body, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	return e.Error.Code, e.Error.Message
}

func TestHandlerPanicIsA500(t *testing.T) {
	m := validModule()
	m.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("panic") {
			w.Header().Set("X-Partial", "1")
			_, _ = w.Write([]byte("partial"))
			panic("secret internal detail")
		}
		_, _ = io.WriteString(w, "fine")
	})
	mod := Adapt(m)
	host := &recordingServices{}
	if err := mod.ServerInit(t.Context(), rpc.InitRequest{}, host); err != nil {
		t.Fatal(err)
	}
	resp, err := mod.Handle(t.Context(), rpc.Request{Method: "GET", Path: "/projects", Query: "panic"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusInternalServerError || resp.Header.Get("X-Partial") != "" {
		t.Errorf("status %d, header %v", resp.Status, resp.Header)
	}
	code, msg := decodeError(t, resp)
	if code != "module_panic" || strings.Contains(msg, "secret") {
		t.Errorf("error %q %q: want module_panic without the panic value", code, msg)
	}
	// The operator, not the client, gets the detail.
	logs := host.records()
	if len(logs) != 1 || logs[0].msg != "module panic" || logs[0].attrs["panic"] != "secret internal detail" || logs[0].attrs["stack"] == "" {
		t.Errorf("logs = %+v", logs)
	}

	resp, err = mod.Handle(t.Context(), rpc.Request{Method: "GET", Path: "/projects"})
	if err != nil || resp.Status != http.StatusOK || string(resp.Body) != "fine" {
		t.Errorf("after the panic: %d %q %v", resp.Status, resp.Body, err)
	}
}

func TestServerInitPanicIsAnError(t *testing.T) {
	m := validModule()
	m.ServerInit = func(context.Context, Host) error { panic("boom") }
	if err := Adapt(m).ServerInit(t.Context(), rpc.InitRequest{}, nil); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("err = %v", err)
	}
}

func TestResponseTooLarge(t *testing.T) {
	for _, tc := range []struct {
		name   string
		size   int
		chunks int
		status int
	}{
		{"at the cap", rpc.MaxResponseBody, 1, http.StatusOK},
		{"over the cap in one write", rpc.MaxResponseBody + 1, 1, http.StatusBadGateway},
		{"over the cap in many writes", rpc.MaxResponseBody + 1, 64, http.StatusBadGateway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var writeErr error
			m := validModule()
			m.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				chunk := make([]byte, tc.size/tc.chunks+1)
				for left := tc.size; left > 0 && writeErr == nil; left -= len(chunk) {
					_, writeErr = w.Write(chunk[:min(len(chunk), left)])
				}
			})
			resp, err := Adapt(m).Handle(t.Context(), rpc.Request{Method: "GET", Path: "/projects"})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != tc.status {
				t.Fatalf("status %d, want %d", resp.Status, tc.status)
			}
			if tc.status == http.StatusOK {
				if len(resp.Body) != tc.size || writeErr != nil {
					t.Errorf("body %d bytes, write error %v", len(resp.Body), writeErr)
				}
				return
			}
			if code, _ := decodeError(t, resp); code != "module_response_too_large" {
				t.Errorf("code = %q", code)
			}
			if !errors.Is(writeErr, errResponseTooLarge) {
				t.Errorf("the handler's Write returned %v", writeErr)
			}
		})
	}
}

func TestResponseWriterFollowsNetHTTP(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		status  int
		header  http.Header
		body    string
	}{
		{"nothing written", func(http.ResponseWriter, *http.Request) {}, 200, http.Header{}, ""},
		{"sniffed", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "<html>") }, 200,
			http.Header{"Content-Type": {"text/html; charset=utf-8"}}, "<html>"},
		{"explicit empty content type is kept", func(w http.ResponseWriter, _ *http.Request) {
			w.Header()["Content-Type"] = nil
			_, _ = io.WriteString(w, "x")
		}, 200, http.Header{"Content-Type": nil}, "x"},
		{"first status wins", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusNoContent)
			w.WriteHeader(http.StatusTeapot)
		}, 204, http.Header{}, ""},
		{"informational status is skipped", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusCreated)
		}, 201, http.Header{}, ""},
		{"header changes after WriteHeader are ignored", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Before", "1")
			w.WriteHeader(http.StatusOK)
			w.Header().Set("X-After", "1")
		}, 200, http.Header{"X-Before": {"1"}}, ""},
		{"flush commits the header", func(w http.ResponseWriter, _ *http.Request) {
			w.(http.Flusher).Flush()
			w.WriteHeader(http.StatusTeapot)
		}, 200, http.Header{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := validModule()
			m.Handler = tc.handler
			resp, err := Adapt(m).Handle(t.Context(), rpc.Request{Method: "GET", Path: "/projects"})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != tc.status || !reflect.DeepEqual(resp.Header, tc.header) || string(resp.Body) != tc.body {
				t.Errorf("got %d %v %q, want %d %v %q", resp.Status, resp.Header, resp.Body, tc.status, tc.header, tc.body)
			}
		})
	}
}

func TestShutdownDrains(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	m := validModule()
	m.Handler = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		close(started)
		<-release
	})
	mod := Adapt(m)
	done := make(chan error, 1)
	go func() {
		_, err := mod.Handle(t.Context(), rpc.Request{Method: "GET", Path: "/projects"})
		done <- err
	}()
	<-started

	short, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := mod.Shutdown(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with a request in flight = %v", err)
	}
	if _, err := mod.Handle(t.Context(), rpc.Request{Method: "GET", Path: "/projects"}); !rpc.IsUnavailable(err) {
		t.Errorf("Handle after Shutdown = %v, want unavailable", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("in-flight request: %v", err)
	}
	if err := mod.Shutdown(t.Context()); err != nil {
		t.Errorf("Shutdown after drain = %v", err)
	}
}

func TestServerInitHost(t *testing.T) {
	var got Host
	m := validModule()
	m.ServerInit = func(_ context.Context, h Host) error { got = h; return nil }
	mod := Adapt(m)
	services := &recordingServices{scopes: []RegisteredScope{{ID: "keys:read", Label: "Read keys", Module: "core"}}}
	err := mod.ServerInit(t.Context(), rpc.InitRequest{ConfigJSON: []byte(`{"n":1,"s":"x"}`), DataDir: "/d"}, services)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Config(), map[string]any{"n": 1.0, "s": "x"}) || got.DataDir() != "/d" {
		t.Errorf("config %v, data dir %q", got.Config(), got.DataDir())
	}
	if scopes, err := got.Scopes(t.Context()); err != nil || !reflect.DeepEqual(scopes, services.scopes) {
		t.Errorf("scopes %v, %v", scopes, err)
	}

	for _, bad := range []string{`[1]`, `{`, `"x"`} {
		if err := mod.ServerInit(t.Context(), rpc.InitRequest{ConfigJSON: []byte(bad)}, nil); err == nil {
			t.Errorf("config %s accepted", bad)
		}
	}
	for _, empty := range []string{``, ` `, `null`, `{}`} {
		if err := mod.ServerInit(t.Context(), rpc.InitRequest{ConfigJSON: []byte(empty)}, nil); err != nil {
			t.Errorf("config %q: %v", empty, err)
		}
		if got.Config() == nil {
			t.Errorf("config %q gave a nil map", empty)
		}
	}
}

type record struct {
	level slog.Level
	msg   string
	attrs map[string]string
	ctx   context.Context
	err   error // ctx.Err() during the call
}

type recordingServices struct {
	scopes []RegisteredScope
	mu     sync.Mutex
	logs   []record
}

func (s *recordingServices) Log(ctx context.Context, level slog.Level, msg string, attrs map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logs = append(s.logs, record{level, msg, attrs, ctx, ctx.Err()})
	return nil
}

func (s *recordingServices) Scopes(context.Context) ([]RegisteredScope, error) { return s.scopes, nil }

func (s *recordingServices) records() []record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]record(nil), s.logs...)
}

type ctxKey struct{}

func TestLogger(t *testing.T) {
	services := &recordingServices{}
	h, err := newHost("m", rpc.InitRequest{}, services)
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	log := h.Logger().With("module", "projects").WithGroup("req").With("id", 7)

	ctx, cancel := context.WithCancel(context.WithValue(t.Context(), ctxKey{}, "v"))
	cancel() // a cancelled request still logs
	log.LogAttrs(ctx, slog.LevelWarn-1, "hello",
		slog.String("s", "x"),
		slog.Group("g", slog.Int("n", 1), slog.Group("inner", slog.Bool("b", true))),
		slog.Group("", slog.String("inlined", "y")),
		slog.Group("empty"),
		slog.Time("at", when),
		slog.Duration("took", 1500*time.Millisecond),
		slog.Any("err", errors.New("bad")),
		slog.Attr{},
	)
	logs := services.records()
	if len(logs) != 1 {
		t.Fatalf("%d records", len(logs))
	}
	r := logs[0]
	want := map[string]string{
		"module":        "projects",
		"req.id":        "7",
		"req.s":         "x",
		"req.g.n":       "1",
		"req.g.inner.b": "true",
		"req.inlined":   "y",
		"req.at":        "2026-01-02T03:04:05.000000006Z",
		"req.took":      "1.5s",
		"req.err":       "bad",
	}
	if r.level != slog.LevelWarn-1 || r.msg != "hello" || !reflect.DeepEqual(r.attrs, want) {
		t.Errorf("got %v %q %v\nwant attrs %v", r.level, r.msg, r.attrs, want)
	}
	if r.err != nil || r.ctx.Value(ctxKey{}) != "v" {
		t.Errorf("log context: err %v, value %v; want live with the caller's values", r.err, r.ctx.Value(ctxKey{}))
	}
	if _, ok := r.ctx.Deadline(); !ok {
		t.Error("log call has no deadline")
	}
}

func TestCallerFrom(t *testing.T) {
	if _, ok := CallerFrom(t.Context()); ok {
		t.Error("caller outside a request")
	}
	c := Caller{OrgID: "o", Superkey: true}
	got, ok := CallerFrom(WithCaller(t.Context(), c))
	if !ok || !reflect.DeepEqual(got, c) {
		t.Errorf("got %+v %v", got, ok)
	}
}
