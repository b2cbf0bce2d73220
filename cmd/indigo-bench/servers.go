package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/core/apikey"
	"github.com/indigo-hq/indigo/core/config"
)

// route is one measured path, the Authorization header the load generator
// sends, and the body and Content-Type both servers answer it with.
type route struct {
	path  string
	body  []byte
	ctype string
	auth  string
}

// servers are the servers under test: the real host, and the bare
// net/http server beside it that replays the host's answers (the bare
// twins of the v2_me route and of the module routes); unless Redis is not
// measured, a second host configured with Redis and the bare twins of its
// routes (redis.go); and with -postgres, a third host on PostgreSQL and
// the bare twin of its route (postgres.go).
type servers struct {
	host     *core.Host
	bare     *http.Server
	bareAddr string
	auth     string // the superkey's Authorization header
	ctype    string // Content-Type of the host's GET /api/v2/me answer
	me       route
	mod      route      // benchmod's route, from memory; recorded with -module only
	mod16k   route      // benchmod's route with a 16 KiB body; recorded with -module only
	modDB    route      // the projects module's list, from its database; recorded with -module only
	redis    *redisSide // the Redis-configured host and its routes; nil when Redis is not measured
	noRedis  string     // why Redis is not measured (redis is nil then)
	pg       *pgSide    // the PostgreSQL host and its route; nil when PostgreSQL is not measured
	noPG     string     // why PostgreSQL is not measured (pg is nil then)
	grpc     *grpcSide  // the host on the gRPC wire, for the module pairs; nil without -grpc-wire or module pairs
	closers  []func()   // what close undoes, in the order it was done
}

// startServers starts the host and the bare server. On error it undoes
// what it had done.
func startServers(ctx context.Context, o options) (*servers, error) {
	s := &servers{}
	fail := func(err error) (*servers, error) {
		s.close()
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "indigo-bench-")
	if err != nil {
		return nil, err
	}
	s.onClose(func() { os.RemoveAll(tmp) })

	cfg, modProfile, err := hostConfig(tmp, o)
	if err != nil {
		return fail(err)
	}
	if modProfile != "" {
		// Printed after the host shut the module down, which writes it.
		s.onClose(func() { fmt.Printf("module process CPU profile (all rounds) -> %s\n", modProfile) })
	}
	if s.host, err = startHost(ctx, &cfg); err != nil {
		return fail(err)
	}
	s.onClose(func() { shutdownHost(s.host, cfg.Server.ShutdownTimeout.Duration) })

	org, err := s.host.Local.CreateOrg(ctx, "bench")
	if err != nil {
		return fail(err)
	}
	if s.auth, err = createKey(ctx, s.host, org.ID, nil); err != nil {
		return fail(err)
	}
	if !o.requestLog {
		s.host.API.Logs = nil // diagnosis: withApiV2Route then enqueues nothing
	}
	if err := s.recordAnswers(ctx, o.module); err != nil {
		return fail(err)
	}

	routes := []route{s.me}
	if o.module {
		routes = append(routes, s.mod, s.mod16k, s.modDB)
	}
	if s.bare, s.bareAddr, err = s.startBare(routes); err != nil {
		return fail(err)
	}
	if o.module && o.pairs["module"] && o.grpcWire {
		if s.grpc, err = s.startGRPCSide(ctx, o, tmp); err != nil {
			return fail(err)
		}
	}
	if s.redis, s.noRedis, err = s.startRedisSide(ctx, o); err != nil {
		return fail(err)
	}
	if s.pg, s.noPG, err = s.startPostgresSide(ctx, o); err != nil {
		return fail(err)
	}
	return s, nil
}

// hosts are the hosts under test.
func (s *servers) hosts() []*core.Host {
	hosts := []*core.Host{s.host}
	if s.grpc != nil {
		hosts = append(hosts, s.grpc.host)
	}
	if s.redis != nil {
		hosts = append(hosts, s.redis.host)
	}
	if s.pg != nil {
		hosts = append(hosts, s.pg.host)
	}
	return hosts
}

func (s *servers) onClose(f func()) { s.closers = append(s.closers, f) }

// close stops the servers and removes the temporary folder, in the reverse
// order of their start.
func (s *servers) close() {
	for _, f := range slices.Backward(s.closers) {
		f()
	}
	s.closers = nil
}

// hostConfig is the host's configuration in the temporary folder tmp. With
// -module it builds the benchmod and projects modules there, and with
// -module-cpuprofile it also returns the absolute path of benchmod's
// profile.
func hostConfig(tmp string, o options) (cfg config.Config, modProfile string, err error) {
	cfg = config.Default()
	cfg.Server.Addr = "127.0.0.1:0"
	cfg.Server.DataDir = tmp
	cfg.Database.Driver = "sqlite"
	cfg.Database.URL = filepath.Join(tmp, "indigo.db")
	cfg.Dir = tmp
	cfg.API.DefaultRateLimit = "" // the load must not be refused
	if !o.module {
		return cfg, "", nil
	}
	// With several packages, go build -o into a folder writes each binary
	// under its package's last path element: benchmod and projects.
	build := exec.Command("go", "build", "-o", tmp+string(filepath.Separator), "./cmd/indigo-bench/benchmod", "./modules/projects")
	if out, err := build.CombinedOutput(); err != nil {
		return cfg, "", fmt.Errorf("build the benchmod and projects modules (run from the repository root): %v\n%s", err, out)
	}
	cfg.Modules = []config.Module{
		{Name: memModule, Path: filepath.Join(tmp, memModule), Env: o.moduleEnv},
		{Name: dbModule, Path: filepath.Join(tmp, dbModule)},
	}
	cfg.API.ModuleMTLS = o.moduleMTLS
	if o.modProfile == "" {
		return cfg, "", nil
	}
	// The module inherits the host's environment and runs in its data
	// directory, hence an absolute path. benchmod alone reads this
	// variable, and hands it on to the SDK's profiling (rpc.CPUProfileEnv),
	// so the projects module is not profiled into the same file.
	abs, err := filepath.Abs(o.modProfile)
	if err != nil {
		return cfg, "", err
	}
	if err := os.Setenv(envModProfile, abs); err != nil {
		return cfg, "", err
	}
	return cfg, abs, nil
}

func startHost(ctx context.Context, cfg *config.Config) (*core.Host, error) {
	logger := core.NewLogger(os.Stderr, slog.LevelWarn)
	svc, err := core.Open(ctx, cfg, core.Options{Logger: logger})
	if err != nil {
		return nil, err
	}
	host := core.New(svc, core.Options{Logger: logger})
	if err := host.Start(ctx); err != nil {
		_ = svc.Close()
		return nil, err
	}
	return host, nil
}

func shutdownHost(host *core.Host, timeout time.Duration) {
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := host.Shutdown(sctx); err != nil {
		fmt.Fprintln(os.Stderr, "indigo-bench: host shutdown:", err)
	}
}

// createKey creates a superkey in the org, with the rate limit rl (nil:
// none), and returns the key's Authorization header.
func createKey(ctx context.Context, host *core.Host, orgID string, rl *apikey.RateLimit) (string, error) {
	in := apikey.CreateInput{Name: "bench", Superkey: true, RateLimit: rl, RateLimitSet: true}
	_, rawKey, err := host.Keys.Create(ctx, orgID, apikey.Actor{ID: "bench"}, in)
	if err != nil {
		return "", err
	}
	return "Bearer " + rawKey, nil
}

// recordAnswers records the host's answers that the bare server replays:
// GET /api/v2/me, and with the modules GET /api/v2/benchmod/hello, GET
// /api/v2/benchmod/16k and GET /api/v2/projects, once two projects exist.
func (s *servers) recordAnswers(ctx context.Context, module bool) error {
	addr := s.host.Addr()
	body, ctype, err := fetch(ctx, addr, mePath, s.auth)
	if err != nil {
		return err
	}
	s.me, s.ctype = route{mePath, body, ctype, s.auth}, ctype
	s.mod, s.mod16k, s.modDB = route{path: modPath, auth: s.auth}, route{path: mod16Path, auth: s.auth}, route{path: modDBPath, auth: s.auth}
	if !module {
		return nil
	}
	if s.mod.body, s.mod.ctype, err = fetch(ctx, addr, modPath, s.auth); err != nil {
		return err
	}
	if s.mod16k.body, s.mod16k.ctype, err = fetch(ctx, addr, mod16Path, s.auth); err != nil {
		return err
	}
	for _, name := range []string{"Apollo", "Gemini"} {
		if err := post(ctx, addr, modDBPath, s.auth, `{"name":"`+name+`"}`); err != nil {
			return err
		}
	}
	if s.modDB.body, s.modDB.ctype, err = fetch(ctx, addr, modDBPath, s.auth); err != nil {
		return err
	}
	return nil
}

// post sends one real POST with a JSON body and wants 201 Created.
func post(ctx context.Context, addr, path, auth, body string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST %s answered %d: %s", path, resp.StatusCode, b)
	}
	return nil
}

// fetch returns one real GET answer's body and Content-Type.
func fetch(ctx context.Context, addr, path, auth string) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("GET %s answered %d: %s", path, resp.StatusCode, b)
	}
	http.DefaultClient.CloseIdleConnections()
	return b, resp.Header.Get("Content-Type"), nil
}

// startBare serves each route's body with its Content-Type on another
// loopback port, with the same http.Server settings as the host, so that
// the two differ only by Indigo's router and wrapper (and, for a module
// route, the module process behind them). close shuts it down.
func (s *servers) startBare(routes []route) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.HandleFunc("GET "+rt.path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", rt.ctype)
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(rt.body)
		})
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "indigo-bench: bare server:", err)
		}
	}()
	s.onClose(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	return srv, ln.Addr().String(), nil
}
