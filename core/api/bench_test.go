package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/indigo-hq/indigo/core/coretest"
)

// discardWriter is a ResponseWriter that keeps the status and headers and
// throws the body away, so a benchmark measures the handler, not a recorder.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header { return w.h }

func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *discardWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(b)
	return len(b), nil
}

func (w *discardWriter) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}

// meFixture starts a host, makes a superkey and returns the host, a GET
// /api/v2/me request carrying the key, and that request's real body and
// Content-Type.
func meFixture(b *testing.B, requestLog bool) (*coretest.Env, *http.Request, []byte, string) {
	b.Helper()
	env := coretest.New(b, "sqlite")
	if !requestLog {
		env.Host.API.Logs = nil // the wrapper then enqueues no request log
	}
	_, raw := env.Superkey(env.Org("bench"))
	h := env.Host.Handler()
	req := httptest.NewRequest(http.MethodGet, "/api/v2/me", nil)
	req.Header.Set("Authorization", coretest.Bearer(raw))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("GET /api/v2/me answered %d: %s", rec.Code, rec.Body)
	}
	body, _ := io.ReadAll(rec.Body)
	return env, req, body, rec.Header().Get("Content-Type")
}

// v2 runs run on the host's handler and reports, per op, the request-log
// entries dropped because the writer fell behind (a dropped entry costs
// the request far less than a written one).
func v2(b *testing.B, env *coretest.Env, req *http.Request, size int, run func(*testing.B, http.Handler, *http.Request, int)) {
	d0 := env.Host.Logs.Dropped()
	run(b, env.Host.Handler(), req, size)
	b.ReportMetric(float64(env.Host.Logs.Dropped()-d0)/float64(b.N), "logdrops/op")
}

func bareHandler(body []byte, ctype string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
}

func serve(b *testing.B, h http.Handler, req *http.Request, size int) {
	b.Helper()
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK || w.n != size {
			b.Fatalf("status %d, %d bytes; want 200, %d bytes", w.status, w.n, size)
		}
	}
}

func serveParallel(b *testing.B, h http.Handler, req *http.Request, size int) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			w.reset()
			h.ServeHTTP(w, req)
			if w.status != http.StatusOK || w.n != size {
				b.Errorf("status %d, %d bytes; want 200, %d bytes", w.status, w.n, size)
				return
			}
		}
	})
}

// BenchmarkV2Me is GET /api/v2/me through the host's whole handler: the
// router, the recoverer and withApiV2Route (request id, Bearer parsing,
// cached verify, limiter, metrics, request-log enqueue) and the handler.
// allocs/op counts every heap allocation in the process while it runs,
// which includes the background request-log writer's share; at in-process
// speed the writer cannot keep up, so most entries are dropped (see
// logdrops/op) and this understates the logging cost per served request.
func BenchmarkV2Me(b *testing.B) {
	env, req, body, _ := meFixture(b, true)
	v2(b, env, req, len(body), serve)
}

// BenchmarkV2MeNoLog is BenchmarkV2Me without the request log: the
// wrapper's own cost, without the background SQLite writer competing for
// the CPU and adding its allocations to allocs/op.
func BenchmarkV2MeNoLog(b *testing.B) {
	env, req, body, _ := meFixture(b, false)
	v2(b, env, req, len(body), serve)
}

// BenchmarkBare writes the same bytes and Content-Type with no router and
// no wrapper: the floor that BenchmarkV2Me is compared with.
func BenchmarkBare(b *testing.B) {
	_, req, body, ctype := meFixture(b, true)
	serve(b, bareHandler(body, ctype), req, len(body))
}

// BenchmarkV2MeParallel is BenchmarkV2Me from GOMAXPROCS goroutines, to
// show contention in the wrapper (locks, the log queue, metrics).
func BenchmarkV2MeParallel(b *testing.B) {
	env, req, body, _ := meFixture(b, true)
	v2(b, env, req, len(body), serveParallel)
}

// BenchmarkBareParallel is BenchmarkBare from GOMAXPROCS goroutines.
func BenchmarkBareParallel(b *testing.B) {
	_, req, body, ctype := meFixture(b, true)
	serveParallel(b, bareHandler(body, ctype), req, len(body))
}

// BenchmarkV2MeNoLogParallel is BenchmarkV2MeNoLog from GOMAXPROCS
// goroutines: contention in the wrapper itself, without the log writer
// taking a core.
func BenchmarkV2MeNoLogParallel(b *testing.B) {
	env, req, body, _ := meFixture(b, false)
	v2(b, env, req, len(body), serveParallel)
}
