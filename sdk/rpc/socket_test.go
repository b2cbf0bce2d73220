package rpc

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/indigo-hq/indigo/sdk/internal/proto"
	"github.com/indigo-hq/indigo/sdk/internal/spec"
)

// capturingPlugin serves like Plugin and keeps the module side's server,
// so that a test can break its data socket as a dying module would.
type capturingPlugin struct {
	Plugin
	ms *moduleServer
}

func (p *capturingPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	p.ms = &moduleServer{impl: p.Impl, broker: broker}
	pb.RegisterModuleServer(s, p.ms)
	return nil
}

// socketed connects a fake module in memory, reads its manifest (which
// offers a data socket) and opens the socket, as the host does.
func socketed(t *testing.T, fake *fakeModule, withTLS bool) (*moduleClient, *moduleServer) {
	t.Helper()
	fake.manifest.DataSocket = true
	cp := &capturingPlugin{Plugin: Plugin{Impl: fake}}
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{PluginName: cp})
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(PluginName)
	if err != nil {
		t.Fatal(err)
	}
	c := raw.(*moduleClient)
	if _, err := c.Describe(t.Context()); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), DataSocketName)
	if err := OpenSocket(t.Context(), c, SocketOptions{Path: path, TLS: withTLS}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { CloseSocket(c) })
	return c, cp.ms
}

// kill breaks every connection of the module's data socket and stops it
// listening, as the death of its process does.
func (ds *dataServer) kill() {
	ds.close()
	ds.conns.Range(func(_, v any) bool {
		_ = v.(*serverConn).nc.Close()
		return true
	})
}

// keep copies what the wire lends, for a test to read after the call.
func keep(r Response) Response {
	out := Response{Status: r.Status, Header: r.Header, Body: bytes.Clone(r.Body)}
	if r.Body == nil {
		out.Body = nil
	}
	r.Release()
	return out
}

func TestSocketRoundTrip(t *testing.T) {
	for _, withTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%t", withTLS), func(t *testing.T) {
			// The socket also keeps a nil header value and bytes of every
			// value in a header.
			want, wantResp := exchange()
			want.Header["X-Nil"] = nil
			want.Header["X-Bytes"] = []string{string(allBytes())}
			wantResp.Header["X-Bytes"] = []string{string(allBytes())}
			fake := &fakeModule{handle: func(context.Context, Request) (Response, error) { return wantResp, nil }}
			c, _ := socketed(t, fake, withTLS)
			got, err := c.Handle(t.Context(), want)
			if err != nil {
				t.Fatal(err)
			}
			if got.Owner == nil {
				t.Error("the answer's buffer is not lent")
			}
			if got = keep(got); !reflect.DeepEqual(got, wantResp) {
				t.Errorf("response:\n got %+v\nwant %+v", got, wantResp)
			}
			if len(fake.seen()) != 1 {
				t.Fatalf("module saw %d requests", len(fake.seen()))
			}
			if gotReq := fake.seen()[0]; !reflect.DeepEqual(gotReq, want) {
				t.Errorf("request:\n got %+v\nwant %+v", gotReq, want)
			}
			// An empty request arrives with maps to write to, and an
			// empty list of scopes stays a list.
			fake.setHandle(nil)
			empty := Request{Method: "GET", Path: "/x", Caller: spec.Caller{Scopes: []string{}}}
			resp, err := c.Handle(t.Context(), empty)
			if err != nil || resp.Status != 200 || resp.Header == nil || resp.Body != nil {
				t.Fatalf("empty: %+v %v", resp, err)
			}
			r := fake.seen()[1]
			if r.Header == nil || r.Body != nil || r.PathParams != nil || r.Caller.Scopes == nil || len(r.Caller.Scopes) != 0 {
				t.Errorf("empty request arrived as %+v", r)
			}
		})
	}
}

// Concurrent calls each get their own answer, on as many connections as
// there are calls at once, which are then kept for the next calls.
func TestSocketConcurrentCalls(t *testing.T) {
	fake := &fakeModule{handle: func(_ context.Context, req Request) (Response, error) {
		time.Sleep(time.Millisecond)
		return Response{Status: 200, Header: http.Header{"X-Path": {req.Path}}, Body: []byte(req.Path + "?" + req.Query)}, nil
	}}
	c, ms := socketed(t, fake, false)
	for range 3 {
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Go(func() {
				path := fmt.Sprintf("/echo/%d", i)
				resp, err := c.Handle(t.Context(), Request{Method: "GET", Path: path, Query: "q=1"})
				if err != nil || string(resp.Body) != path+"?q=1" || resp.Header.Get("X-Path") != path {
					t.Errorf("call %d: %+v, %v", i, resp, err)
				}
				resp.Release()
			})
		}
		wg.Wait()
	}
	if len(fake.seen()) != 150 {
		t.Fatalf("module saw %d calls", len(fake.seen()))
	}
	p := c.sock.Load()
	n := 0
	ms.data.conns.Range(func(any, any) bool { n++; return true })
	if dialled := p.nextConn.Load(); dialled > 51 || n != len(p.idle) {
		t.Errorf("%d connections dialled for 50 calls at once, %d open, %d idle", dialled, n, len(p.idle))
	}
}

// Calls with bodies of every size at once, both ways, inline and
// written apart (above inlineBody): each call gets its own answer.
func TestSocketMixedSizesAtOnce(t *testing.T) {
	fake := &fakeModule{handle: func(_ context.Context, req Request) (Response, error) {
		n, _ := strconv.Atoi(req.Query)
		return Response{Status: 200, Header: http.Header{"X-Sum": {strconv.Itoa(sum(req.Body))}}, Body: pattern(n, byte(n))}, nil
	}}
	c, _ := socketed(t, fake, false)
	sizes := []int{0, 10, 4 << 10, inlineBody, inlineBody + 1, 200 << 10, 1 << 20}
	var wg sync.WaitGroup
	for g := range 12 {
		wg.Go(func() {
			for i := range 20 {
				in := pattern(sizes[(g+i)%len(sizes)], byte(g))
				out := sizes[(g*7+i)%len(sizes)]
				resp, err := c.Handle(t.Context(), Request{Method: "POST", Path: "/mix", Query: strconv.Itoa(out), Body: in})
				if err != nil || resp.Header.Get("X-Sum") != strconv.Itoa(sum(in)) || !bytes.Equal(resp.Body, pattern(out, byte(out))) {
					t.Errorf("goroutine %d call %d: %d bytes, %v, %v", g, i, len(resp.Body), resp.Header, err)
					return
				}
				resp.Release()
			}
		})
	}
	wg.Wait()
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*31)
	}
	return b
}

func sum(b []byte) int {
	s := 0
	for i, x := range b {
		s += (i + 1) * int(x)
	}
	return s
}

// A call with a large body whose caller goes away, while the module still
// reads it or after: the handler's context ends, and the next call works.
func TestSocketLargeCallCancelled(t *testing.T) {
	ended := make(chan error, 1)
	fake := &fakeModule{handle: func(ctx context.Context, _ Request) (Response, error) {
		<-ctx.Done()
		ended <- ctx.Err()
		return Response{}, ctx.Err()
	}}
	c, _ := socketed(t, fake, false)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(30*time.Millisecond, cancel)
	_, err := c.Handle(ctx, Request{Method: "POST", Path: "/big", Body: make([]byte, 1<<20)})
	if !errors.Is(err, context.Canceled) || IsUnavailable(err) {
		t.Fatalf("err = %v", err)
	}
	select {
	case got := <-ended:
		if !errors.Is(got, context.Canceled) {
			t.Fatalf("the handler saw %v", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler was not cancelled")
	}
	// The closed connection is not reused: the next large call works.
	fake.setHandle(func(context.Context, Request) (Response, error) { return Response{Status: 201}, nil })
	if resp, err := c.Handle(t.Context(), Request{Method: "POST", Path: "/big", Body: make([]byte, 1<<20)}); err != nil || resp.Status != 201 {
		t.Fatalf("the next large call: %+v %v", resp, err)
	}
}

// A deadline that passes ends the call with a deadline error and ends the
// handler's context in the module; a caller that gives up cancels it too
// (CancelCall), without the call looking like a crash; calls go on after.
func TestSocketDeadlineAndCancel(t *testing.T) {
	ended := make(chan error, 2)
	fake := &fakeModule{handle: func(ctx context.Context, _ Request) (Response, error) {
		<-ctx.Done()
		ended <- ctx.Err()
		return Response{}, ctx.Err()
	}}
	c, _ := socketed(t, fake, false)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Handle(ctx, Request{Method: "GET", Path: "/slow"})
	if !IsDeadline(err) || IsUnavailable(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("past the deadline: %v", err)
	}
	select {
	case got := <-ended:
		if !errors.Is(got, context.DeadlineExceeded) {
			t.Fatalf("the handler saw %v at the deadline", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the module's handler did not end at the deadline")
	}

	ctx, cancel = context.WithCancel(t.Context())
	time.AfterFunc(30*time.Millisecond, cancel)
	_, err = c.Handle(ctx, Request{Method: "GET", Path: "/slow"})
	if !errors.Is(err, context.Canceled) || IsUnavailable(err) || IsDeadline(err) {
		t.Fatalf("cancelled by the caller: %v", err)
	}
	select {
	case got := <-ended:
		if !errors.Is(got, context.Canceled) {
			t.Fatalf("the handler saw %v", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the cancel did not reach the module")
	}

	fake.setHandle(func(context.Context, Request) (Response, error) { return Response{Status: 204}, nil })
	if resp, err := c.Handle(t.Context(), Request{Method: "GET", Path: "/ok"}); err != nil || resp.Status != 204 {
		t.Fatalf("after a timeout and a cancel: %+v %v", resp, err)
	}
}

// A cancel that overtakes its call (it comes over gRPC, the call over
// the socket) still ends the call once it starts.
func TestSocketCancelBeforeTheCall(t *testing.T) {
	sc := &serverConn{}
	sc.cancelCall(7)
	ctx, cancel := context.WithCancel(t.Context())
	if !sc.begin(7, cancel) {
		t.Fatal("the early cancel was forgotten")
	}
	cancel()
	sc.end()
	if sc.begin(8, func() {}) {
		t.Fatal("another call counts as cancelled")
	}
	_ = ctx
}

// A module's failure keeps its status across the socket: a module shutting
// down is unavailable and never ran the call.
func TestSocketErrorsKeepTheirStatus(t *testing.T) {
	fake := &fakeModule{handle: func(_ context.Context, req Request) (Response, error) {
		switch req.Path {
		case "/closing":
			return Response{}, status.Error(codes.Unavailable, "module is shutting down")
		case "/bad":
			return Response{}, status.Error(codes.InvalidArgument, "bad request line")
		default:
			return Response{}, errors.New("plain failure")
		}
	}}
	c, _ := socketed(t, fake, false)
	_, err := c.Handle(t.Context(), Request{Method: "GET", Path: "/closing"})
	if !IsUnavailable(err) || IsOutcomeUnknown(err) {
		t.Fatalf("a module shutting down: %v", err)
	}
	_, err = c.Handle(t.Context(), Request{Method: "GET", Path: "/bad"})
	if status.Code(errors.Unwrap(err)) != codes.InvalidArgument || IsUnavailable(err) {
		t.Fatalf("invalid argument: %v", err)
	}
	_, err = c.Handle(t.Context(), Request{Method: "GET", Path: "/plain"})
	if err == nil || IsUnavailable(err) || IsDeadline(err) {
		t.Fatalf("a plain error: %v", err)
	}
}

// A module that went away: a call it had is of unknown outcome; a call
// made after is unavailable and never sent.
func TestSocketModuleGone(t *testing.T) {
	t.Run("during a call", func(t *testing.T) {
		started := make(chan struct{})
		fake := &fakeModule{handle: func(ctx context.Context, _ Request) (Response, error) {
			close(started)
			<-ctx.Done()
			return Response{}, ctx.Err()
		}}
		c, ms := socketed(t, fake, false)
		go func() { <-started; ms.data.kill() }()
		_, err := c.Handle(t.Context(), Request{Method: "POST", Path: "/write"})
		if !IsUnavailable(err) || !IsOutcomeUnknown(err) {
			t.Fatalf("err = %v, want unavailable with the outcome unknown", err)
		}
	})
	t.Run("before the call", func(t *testing.T) {
		c, ms := socketed(t, &fakeModule{}, false)
		if _, err := c.Handle(t.Context(), Request{Method: "GET", Path: "/x"}); err != nil {
			t.Fatal(err)
		}
		ms.data.kill() // an idle connection now leads nowhere
		for i := range 2 {
			_, err := c.Handle(t.Context(), Request{Method: "GET", Path: "/x"})
			if !IsUnavailable(err) || IsOutcomeUnknown(err) {
				t.Fatalf("call %d: err = %v, want unavailable and never sent", i, err)
			}
		}
	})
	t.Run("closed by the host", func(t *testing.T) {
		c, _ := socketed(t, &fakeModule{}, false)
		CloseSocket(c)
		_, err := c.Handle(t.Context(), Request{Method: "GET", Path: "/x"})
		if !IsUnavailable(err) || IsOutcomeUnknown(err) {
			t.Fatalf("err = %v, want unavailable and never sent", err)
		}
	})
}

// Bodies up to the wire's limits cross both ways, from a byte to 9 MiB,
// and above the request limit nothing is sent.
func TestSocketBodies(t *testing.T) {
	fake := &fakeModule{handle: func(_ context.Context, req Request) (Response, error) {
		n, _ := strconv.Atoi(req.Query)
		body := bytes.Repeat([]byte{0xa5}, n)
		return Response{Status: 200, Header: http.Header{"X-Got": {strconv.Itoa(len(req.Body))}}, Body: body}, nil
	}}
	c, _ := socketed(t, fake, false)
	for _, n := range []int{1, inlineBody, inlineBody + 1, frameBufSize, 9 << 20} {
		in := bytes.Repeat([]byte{0x5a}, n)
		resp, err := c.Handle(t.Context(), Request{Method: "POST", Path: "/echo", Query: strconv.Itoa(n), Body: in})
		if err != nil || resp.Header.Get("X-Got") != strconv.Itoa(n) || len(resp.Body) != n || (n > 0 && resp.Body[n-1] != 0xa5) {
			t.Fatalf("%d bytes: %d %v (%v)", n, len(resp.Body), resp.Header, err)
		}
		if seen := fake.seen(); !bytes.Equal(seen[len(seen)-1].Body, in) {
			t.Fatalf("%d bytes: the module got another body", n)
		}
		resp.Release()
	}
	if _, err := c.Handle(t.Context(), Request{Method: "POST", Path: "/x", Body: make([]byte, MaxRequestBody+1)}); !errors.Is(err, ErrRequestTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
}

// A connection without the token, or with a wrong one, or that does not
// speak the framing, is closed before it can make a call; with TLS, a
// connection without it, or with a certificate of its own, gets nowhere.
func TestSocketRefusesStrangers(t *testing.T) {
	for _, withTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%t", withTLS), func(t *testing.T) {
			fake := &fakeModule{}
			c, _ := socketed(t, fake, withTLS)
			p := c.sock.Load()
			try := func(name string, tlsConf *tls.Config, token []byte) {
				t.Helper()
				nc, err := net.Dial("unix", p.path)
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
				if tlsConf != nil {
					tc := tls.Client(nc, tlsConf)
					if err := tc.Handshake(); err != nil {
						return // refused at the handshake
					}
					nc = tc
				}
				dc := &dataConn{frameConn: frameConn{nc: nc}, id: 999}
				err = dc.hello(t.Context(), token)
				if err == nil {
					t.Fatalf("%s: the module took the connection", name)
				}
			}
			wrong := bytes.Repeat([]byte{1}, tokenLen)
			if !withTLS {
				try("wrong token", nil, wrong)
				try("short token", nil, p.token[:10])
				// Garbage instead of a hello.
				nc, err := net.Dial("unix", p.path)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = nc.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
				_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
				if n, err := nc.Read(make([]byte, 1)); err != io.EOF {
					t.Errorf("after garbage: read %d, %v; want the connection closed", n, err)
				}
				_ = nc.Close()
			} else {
				try("no TLS", nil, p.token[:])
				own, err := newCert()
				if err != nil {
					t.Fatal(err)
				}
				// A stranger's certificate, with the right token and the
				// module's certificate trusted: still refused.
				try("another certificate", &tls.Config{Certificates: []tls.Certificate{own}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}, p.token[:])
			}
			if len(fake.seen()) != 0 {
				t.Fatalf("a stranger's call reached the module: %+v", fake.seen())
			}
			// The host's own connections still work.
			if _, err := c.Handle(t.Context(), Request{Method: "GET", Path: "/ok"}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A module that serves no data socket (an older SDK) keeps its calls on
// gRPC.
func TestOpenSocketWithoutDataSocket(t *testing.T) {
	mod, _, _ := connect(t, &fakeModule{})
	if _, err := mod.Describe(t.Context()); err != nil {
		t.Fatal(err)
	}
	err := OpenSocket(t.Context(), mod, SocketOptions{Path: filepath.Join(t.TempDir(), DataSocketName)})
	if !errors.Is(err, ErrNoDataSocket) {
		t.Fatalf("OpenSocket = %v", err)
	}
	if _, err := mod.Handle(t.Context(), Request{Method: "GET", Path: "/x"}); err != nil {
		t.Fatal(err)
	}
}

// Malformed frames are refused, never read past their end.
func TestFrameDecodingRefusesMalformed(t *testing.T) {
	var fc frameConn
	fc.appendCall(3, 100, &Request{Method: "GET", Path: "/p", Header: http.Header{"A": {"1"}}})
	good := append([]byte(nil), fc.wbuf[4:]...)
	if _, _, _, err := decodeCall(good); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(good); i++ {
		if _, _, _, err := decodeCall(good[:i]); err == nil {
			t.Errorf("a call cut at %d of %d bytes decoded", i, len(good))
		}
	}
	// A header claiming more values than the frame holds.
	huge := binary.AppendUvarint([]byte{frameAnswer, 0}, 1<<40)
	if _, _, _, _, err := decodeAnswer(huge); err == nil {
		t.Error("an impossible answer decoded")
	}
}

// echoModule answers every call with the same small response, and records
// nothing.
type echoModule struct {
	fakeModule
	resp Response
}

func (e *echoModule) Handle(context.Context, Request) (Response, error) { return e.resp, nil }

// BenchmarkSocketCall is one small call's round trip over the data
// socket, both ends in this process: the wire's own cost (and its
// allocations, both ends together), less a second process's scheduling.
func BenchmarkSocketCall(b *testing.B) {
	m := &echoModule{resp: Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: []byte(`{"projects":[{"id":"prj_1","name":"Apollo"},{"id":"prj_2","name":"Gemini"}]}` + "\n")}}
	m.manifest.DataSocket = true
	cp := &capturingPlugin{Plugin: Plugin{Impl: m}}
	client, _ := plugin.TestPluginGRPCConn(b, false, map[string]plugin.Plugin{PluginName: cp})
	b.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(PluginName)
	if err != nil {
		b.Fatal(err)
	}
	c := raw.(*moduleClient)
	if _, err := c.Describe(b.Context()); err != nil {
		b.Fatal(err)
	}
	if err := OpenSocket(b.Context(), c, SocketOptions{Path: filepath.Join(b.TempDir(), DataSocketName)}); err != nil {
		b.Fatal(err)
	}
	req := Request{Method: "GET", Path: "/projects", Header: http.Header{"Accept": {"*/*"}, "User-Agent": {"bench"}},
		Caller: spec.Caller{OrgID: "org_1", KeyID: "key_1", Superkey: true, RequestID: "req_0123456789"}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ctx, cancel := context.WithTimeout(b.Context(), 10*time.Second)
			resp, err := c.Handle(ctx, req)
			cancel()
			if err != nil || resp.Status != 200 {
				b.Fatal(resp.Status, err)
			}
			resp.Release()
		}
	})
}
