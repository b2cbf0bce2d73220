package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/indigo-hq/indigo/sdk/rpc"
)

// Adapt returns m as the module side of the wire: what Serve serves in the
// module process, what sdktest drives in memory, and what a host may call
// directly to run a module in its own process.
func Adapt(m Module) rpc.Module {
	return &server{m: m}
}

type server struct {
	m    Module
	host atomic.Pointer[host] // set by the latest ServerInit

	// mu orders Shutdown against requests coming in, so that none slips
	// past the drain.
	mu       sync.Mutex
	closing  bool
	inflight sync.WaitGroup

	routerOnce sync.Once
	router     http.Handler
}

func (s *server) Describe(context.Context) (Manifest, error) {
	return s.m.Manifest(), nil
}

func (s *server) ServerInit(ctx context.Context, req rpc.InitRequest, services rpc.HostServices) (err error) {
	h, err := newHost(s.m.Name, req, services)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if s.m.Database {
		if err := s.openDatabase(ctx, h, req); err != nil {
			return err
		}
	}
	if old := s.host.Swap(h); old != nil && old.db != nil && old.db != h.db {
		_ = old.db.Close()
	}
	if s.m.ServerInit == nil {
		return nil
	}
	// A panicking ServerInit must fail the load, not kill the process
	// before the host can say why.
	defer func() {
		if p := recover(); p != nil {
			s.logPanic("server init", p)
			err = status.Errorf(codes.Internal, "module %s: ServerInit panicked: %v", s.m.Name, p)
		}
	}()
	return s.m.ServerInit(ctx, h)
}

// openDatabase opens the database the host provisioned and applies the
// module's migrations before anything else runs. A failed migration is
// FailedPrecondition, which the host reads as "this module is down", not
// as a failure of the host's start.
func (s *server) openDatabase(ctx context.Context, h *host, req rpc.InitRequest) error {
	if req.DBEngine == "" {
		return status.Errorf(codes.FailedPrecondition, "module %s asks for a database and the host gave none", s.m.Name)
	}
	db, err := openDB(req.DBEngine, req.DBDSN)
	if err == nil {
		err = db.PingContext(ctx)
	}
	if err != nil {
		return status.Errorf(codes.Unavailable, "module %s: open its %s database: %v", s.m.Name, req.DBEngine, err)
	}
	if s.m.Migrations != nil {
		if err := migrateUp(db, req.DBEngine, s.m.Migrations); err != nil {
			_ = db.Close()
			return status.Errorf(codes.FailedPrecondition, "module %s: migration %v", s.m.Name, err)
		}
	}
	h.db, h.engine = db, req.DBEngine
	return nil
}

func (s *server) Handle(ctx context.Context, req rpc.Request) (rpc.Response, error) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return rpc.Response{}, status.Error(codes.Unavailable, "module is shutting down")
	}
	s.inflight.Add(1)
	s.mu.Unlock()
	defer s.inflight.Done()

	r, err := newRequest(ctx, req)
	if err != nil {
		return rpc.Response{}, status.Error(codes.InvalidArgument, err.Error())
	}
	w := writers.Get().(*responseWriter)
	if p := s.serveHTTP(w, r); p != nil {
		w.Release()
		if p != http.ErrAbortHandler { // net/http compares it the same way: it is never wrapped
			s.logPanic(req.Method+" "+r.URL.Path, p)
		}
		return errorResponse(http.StatusInternalServerError, "module_panic",
			"the module failed while handling the request"), nil
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		w.Release()
		// The handler gave up (or finished) after the call's deadline: what
		// it wrote is moot, and answering it would race the host's 504.
		return rpc.Response{}, status.Error(codes.DeadlineExceeded, "the module's handler passed the call's deadline")
	}
	if w.overflow {
		w.Release()
		return errorResponse(http.StatusBadGateway, "module_response_too_large",
			fmt.Sprintf("the module's response exceeds %d bytes", rpc.MaxResponseBody)), nil
	}
	return w.result(), nil
}

// serveHTTP runs the handler and returns what it panicked with, if it did:
// one bad request must not take the process, and every other request, down.
func (s *server) serveHTTP(w http.ResponseWriter, r *http.Request) (panicked any) {
	defer func() { panicked = recover() }()
	s.handler().ServeHTTP(w, r)
	return nil
}

// handler is the module's Handler, or one built from its routes' own
// handlers (each route declared once, with its handler).
func (s *server) handler() http.Handler {
	s.routerOnce.Do(func() {
		s.router = s.m.Handler
		if s.router == nil {
			s.router = newRouter(s.m.Routes)
		}
	})
	return s.router
}

// logPanic reports a panic with its stack to the host's log when the module
// has one, and to stderr (which go-plugin forwards to the host) otherwise.
func (s *server) logPanic(where string, p any) {
	stack := string(debug.Stack())
	if h := s.host.Load(); h != nil {
		h.logger.Error("module panic", "where", where, "panic", fmt.Sprint(p), "stack", stack)
		return
	}
	fmt.Fprintf(os.Stderr, "module panic in %s: %v\n%s", where, p, stack)
}

// Shutdown refuses new requests and waits for those in flight until ctx
// ends.
func (s *server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.stop(ctx)
}

// stop runs the module's Stop hook, then closes its database.
func (s *server) stop(ctx context.Context) (err error) {
	h := s.host.Load()
	defer func() {
		if p := recover(); p != nil {
			s.logPanic("stop", p)
			err = status.Errorf(codes.Internal, "module %s: Stop panicked: %v", s.m.Name, p)
		}
		if h != nil && h.db != nil {
			_ = h.db.Close()
		}
	}()
	if s.m.Stop != nil {
		return s.m.Stop(ctx)
	}
	return nil
}

// newRequest rebuilds the request the host received, as the module's
// handler expects to see it.
func newRequest(ctx context.Context, req rpc.Request) (*http.Request, error) {
	// Without a body the handler gets http.NoBody, as net/http's server
	// gives it, rather than an empty reader: that saves the reader, its
	// wrapper and a GetBody closure (a client-side field) on every GET.
	var body io.Reader = http.NoBody
	if len(req.Body) > 0 {
		body = bytes.NewReader(req.Body)
	}
	r, err := http.NewRequestWithContext(WithCaller(ctx, req.Caller), req.Method, "/", body)
	if err != nil {
		return nil, fmt.Errorf("rebuild request: %w", err)
	}
	// The path stays as the host sent it, relative to the API version, so
	// that a ServeMux in the module registers the same paths as its Routes.
	// "/" parsed to a URL with nothing else set: fill it in, not a second one.
	r.URL.Path, r.URL.RawQuery = req.Path, req.Query
	r.RequestURI = r.URL.RequestURI()
	r.Header = req.Header
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	// net/http keeps Host out of the header map; so does the module.
	if host := r.Header.Get("Host"); host != "" {
		r.Host = host
		r.Header.Del("Host")
	}
	for name, value := range req.PathParams {
		r.SetPathValue(name, value)
	}
	return r, nil
}

var errResponseTooLarge = errors.New("sdk: response body exceeds the module response limit")

// responseWriter buffers a response in memory, as the wire carries it whole.
// It follows net/http where a handler could notice: the header is
// snapshotted when the status is written, the first status wins, and a
// missing Content-Type is sniffed.
//
// Writers are pooled: the response it returns lends its maps and buffer,
// and the wire gives them back (rpc.Response.Release) once it has sent
// them.
type responseWriter struct {
	header   http.Header
	sent     http.Header
	vals     []string // the backing array of sent's values
	status   int
	body     bytes.Buffer
	overflow bool
}

var writers = sync.Pool{New: func() any {
	return &responseWriter{header: make(http.Header), sent: make(http.Header)}
}}

// Release readies w for another call and puts it back in the pool.
func (w *responseWriter) Release() {
	clear(w.header)
	clear(w.sent)
	clear(w.vals)
	w.vals = w.vals[:0]
	w.status, w.overflow = 0, false
	if w.body.Cap() > 64<<10 {
		w.body = bytes.Buffer{} // a large answer once is no reason to keep its buffer
	}
	w.body.Reset()
	writers.Put(w)
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	// An informational status cannot cross the wire before the final one;
	// dropping it is what a client that ignores 1xx would see anyway.
	if w.status != 0 || (code < 200 && code != http.StatusSwitchingProtocols) {
		return
	}
	w.status = code
	// The snapshot copies the values, into an array kept across calls:
	// a handler may still change its header, even a value in place.
	for name, vs := range w.header {
		if vs == nil {
			w.sent[name] = nil
			continue
		}
		at := len(w.vals)
		w.vals = append(w.vals, vs...)
		w.sent[name] = w.vals[at:len(w.vals):len(w.vals)]
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.overflow {
		return 0, errResponseTooLarge
	}
	if w.body.Len()+len(p) > rpc.MaxResponseBody {
		// The handler learns at once, and the partial body is dropped:
		// a truncated response must not reach a client as if whole.
		w.overflow = true
		w.body = bytes.Buffer{}
		return 0, errResponseTooLarge
	}
	return w.body.Write(p)
}

// Flush is a no-op (the response goes out whole) that lets handlers written
// for streaming servers run unchanged.
func (w *responseWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
}

func (w *responseWriter) result() rpc.Response {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	body := w.body.Bytes()
	if _, has := w.sent["Content-Type"]; !has && len(body) > 0 {
		w.sent.Set("Content-Type", http.DetectContentType(body))
	}
	return rpc.Response{Status: w.status, Header: w.sent, Body: body, Owner: w}
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// errorResponse has the shape of every Indigo API error, so that a client
// cannot tell a module's failure from the host's by its format.
func errorResponse(status int, code, message string) rpc.Response {
	var e errorBody
	e.Error.Code, e.Error.Message = code, message
	body, _ := json.Marshal(e)
	return rpc.Response{
		Status: status,
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   append(body, '\n'),
	}
}
