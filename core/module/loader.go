// Package module loads Indigo modules as separate processes with
// hashicorp/go-plugin: it starts each binary (checking its SHA-256 when one
// is recorded), carries its calls on the wire the host is configured with
// (a data socket of the module's, or gRPC; see rpc.ClientSetup), registers
// its scopes, mounts its routes behind withApiV2Route (and v1 when marked),
// runs its serverInit, restarts it with backoff when it crashes, and kills
// every child process on shutdown.
package module

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/indigo-hq/indigo/core/api"
	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/core/httpapi"
	"github.com/indigo-hq/indigo/core/idempotency"
	"github.com/indigo-hq/indigo/core/scope"
	"github.com/indigo-hq/indigo/db"
	"github.com/indigo-hq/indigo/sdk"
	"github.com/indigo-hq/indigo/sdk/rpc"
)

// MaxRequestBody caps what a request may carry to a module.
const MaxRequestBody = 10 << 20

// Backoff bounds between restarts of a crashed module.
var (
	MinBackoff = 100 * time.Millisecond
	MaxBackoff = 10 * time.Second
)

// DefaultShutdownTimeout bounds Shutdown when neither its context nor the
// loader's ShutdownTimeout gives a deadline.
const DefaultShutdownTimeout = 10 * time.Second

const (
	// killGrace is how long kill lets go-plugin stop a process gracefully
	// before it sends SIGKILL.
	killGrace = 5 * time.Second
	// reapWait bounds the wait for a killed process to be reaped.
	reapWait = 5 * time.Second
)

// Loader owns the module processes of one host.
type Loader struct {
	log     *slog.Logger
	api     *api.Server
	scopes  *scope.Registry
	timeout time.Duration
	dataDir string

	mu       sync.Mutex
	mods     []*Instance
	stop     chan struct{}
	stopOnce sync.Once

	// Provision makes (or finds) the database of a module that asks for
	// one, in dir, the module's folder; the host sets it.
	Provision func(ctx context.Context, name, dir string) (db.ModuleDB, error)
	// ShutdownTimeout bounds Shutdown when its context has no deadline
	// (server.shutdown_timeout; DefaultShutdownTimeout when 0).
	ShutdownTimeout time.Duration
	// HangThreshold is how many calls in a row that time out, or health
	// checks in a row that fail, get a module's process killed and
	// restarted (api.module_hang_threshold); 0 never.
	HangThreshold int
	// HealthInterval is how often each module's process is checked
	// (api.module_health_interval); 0 never.
	HealthInterval time.Duration
	// Idempotency keeps the answers to module calls sent with an
	// Idempotency-Key (non-GET); nil ignores the header.
	Idempotency *idempotency.Store
	// Wire is how calls reach the modules (api.module_wire): rpc.WireSocket
	// ("" too) or rpc.WireGRPC. MTLS puts the socket wire on mutual TLS
	// (api.module_mtls).
	Wire string
	MTLS bool
}

func (l *Loader) setup() rpc.ClientSetup {
	w := l.Wire
	if w == "" {
		w = rpc.WireSocket
	}
	return rpc.ClientSetup{Wire: w, MTLS: l.MTLS}
}

func (l *Loader) stopCh() <-chan struct{} { return l.stop }

// NewLoader returns a loader that mounts routes on srv and registers scopes
// in reg. dataDir holds one folder per module.
func NewLoader(srv *api.Server, reg *scope.Registry, dataDir string, timeout time.Duration, log *slog.Logger) *Loader {
	return &Loader{api: srv, scopes: reg, dataDir: dataDir, timeout: timeout, log: log, stop: make(chan struct{})}
}

// Instance is one module and its current process.
type Instance struct {
	cfg     config.Module
	timeout time.Duration
	dataDir string
	log     *slog.Logger
	loader  *Loader

	mu       sync.RWMutex
	client   *plugin.Client
	cmd      *exec.Cmd  // the client's process, for SIGKILL
	sockDir  string     // the process's socket directory ("" on the grpc wire), removed once it exited
	mod      rpc.Module // serving; nil while down
	pending  rpc.Module // launched, before serverInit
	ping     func(context.Context) error
	manifest sdk.Manifest

	// Evidence that the serving process hangs: calls in a row that timed
	// out, and health checks in a row that failed.
	timeouts, healthFails atomic.Int64

	restarts atomic.Int64
	closing  atomic.Bool
	// broken is why the module is down for good (a failed migration); it
	// stays down until the host restarts.
	broken atomic.Pointer[string]
	kick   chan struct{}
	done   chan struct{}
}

// Name is the module's name.
func (m *Instance) Name() string { return m.cfg.Name }

// Manifest is what the module declared.
func (m *Instance) Manifest() sdk.Manifest { return m.manifest }

// Restarts is how often the module was restarted after a crash.
func (m *Instance) Restarts() int64 { return m.restarts.Load() }

// Up reports whether the module is serving.
func (m *Instance) Up() bool { return m.current() != nil }

// PID is the module process id, or 0 when it is down.
func (m *Instance) PID() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.client == nil || m.mod == nil {
		return 0
	}
	if rc := m.client.ReattachConfig(); rc != nil {
		return rc.Pid
	}
	return 0
}

// RunTask runs one of the module's declared tasks in its process.
func (m *Instance) RunTask(ctx context.Context, task string) error {
	if reason := m.broken.Load(); reason != nil {
		return fmt.Errorf("module %s is down: %s", m.cfg.Name, *reason)
	}
	mod := m.current()
	if mod == nil {
		return fmt.Errorf("module %s is restarting", m.cfg.Name)
	}
	payload, err := json.Marshal(map[string]string{"task": task})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, max(m.timeout, time.Minute))
	defer cancel()
	_, err = mod.CallHook(ctx, sdk.HookRunTask, payload)
	return err
}

// Modules lists the loaded modules.
func (l *Loader) Modules() []*Instance {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Instance(nil), l.mods...)
}

// Load starts every configured module. An error names the module and
// leaves no process behind.
func (l *Loader) Load(ctx context.Context, mods []config.Module) error {
	for _, mc := range mods {
		if err := l.load(ctx, mc); err != nil {
			l.Shutdown(context.Background())
			return fmt.Errorf("module %q: %w", mc.Name, err)
		}
	}
	return nil
}

func (l *Loader) load(ctx context.Context, mc config.Module) error {
	timeout := l.timeout
	if mc.Timeout.Duration > 0 {
		timeout = mc.Timeout.Duration
	}
	inst := &Instance{
		cfg: mc, timeout: timeout, dataDir: filepath.Join(l.dataDir, "modules", mc.Name),
		log: l.log.With("module", mc.Name), loader: l, kick: make(chan struct{}, 1), done: make(chan struct{}),
	}
	if err := os.MkdirAll(inst.dataDir, 0o700); err != nil {
		return err
	}
	if err := inst.launch(ctx); err != nil {
		return err
	}
	man := inst.manifest
	if err := sdk.CheckManifest(mc.Name, man); err != nil {
		inst.kill()
		return err
	}
	if err := l.scopes.Register(mc.Name, mc.Name, scopesOf(man)...); err != nil {
		inst.kill()
		return err
	}
	mount(l.api, mc.Name, man.Routes, inst.proxy)
	if err := inst.init(ctx); err != nil {
		inst.kill()
		if !rpc.IsFailedPrecondition(err) {
			return fmt.Errorf("serverInit: %w", err)
		}
		// The module cannot run (its migration failed): it stays down and
		// says why, and the host and the other modules serve.
		reason := err.Error()
		inst.broken.Store(&reason)
		inst.log.Error("module is down until it is fixed and the host restarts", "reason", reason)
		l.mu.Lock()
		l.mods = append(l.mods, inst)
		l.mu.Unlock()
		close(inst.done)
		return nil
	}
	l.mu.Lock()
	l.mods = append(l.mods, inst)
	l.mu.Unlock()
	go inst.supervise()
	if l.HealthInterval > 0 {
		go inst.watchHealth(l.HealthInterval)
	}
	inst.log.Info("module loaded", "version", man.Version, "routes", len(man.Routes), "scopes", len(man.Scopes), "pid", inst.PID())
	return nil
}

type hclogWriter struct{ log *slog.Logger }

func (w hclogWriter) Write(p []byte) (int, error) {
	w.log.Debug("plugin", "line", strings.TrimSpace(string(p)))
	return len(p), nil
}

// launch starts a fresh process and client, and reads its manifest.
func (m *Instance) launch(ctx context.Context) error {
	var secure *plugin.SecureConfig
	if m.cfg.SHA256 != "" {
		sum, err := hex.DecodeString(m.cfg.SHA256)
		if err != nil {
			return fmt.Errorf("sha256: %w", err)
		}
		secure = &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	}
	cmd := exec.Command(m.cfg.Path)
	cmd.Dir = m.dataDir
	cmd.Env = m.cfg.Environ(os.Environ())
	setChildAttrs(cmd)
	cfg := &plugin.ClientConfig{
		HandshakeConfig: rpc.Handshake,
		Plugins:         rpc.PluginMap(nil),
		Cmd:             cmd,
		SkipHostEnv:     true, // cmd.Env has it, before the module's own
		SecureConfig:    secure,
		StartTimeout:    30 * time.Second,
		Managed:         false,
		Logger: hclog.New(&hclog.LoggerOptions{Name: "module." + m.cfg.Name, Level: hclog.Warn,
			Output: hclogWriter{m.log}}),
	}
	setup := m.loader.setup()
	sockDir, err := setup.Setup(cfg)
	if err != nil {
		return err
	}
	client := plugin.NewClient(cfg)
	kill := func() {
		client.Kill()
		if sockDir != "" {
			_ = os.RemoveAll(sockDir)
		}
	}
	conn, err := client.Client()
	if err != nil {
		kill()
		if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
			return fmt.Errorf("refusing %s: its SHA-256 does not match the one recorded in the config", m.cfg.Path)
		}
		return fmt.Errorf("start %s: %w", m.cfg.Path, err)
	}
	raw, err := conn.Dispense(rpc.PluginName)
	if err != nil {
		kill()
		return fmt.Errorf("dispense: %w", err)
	}
	mod, ok := raw.(rpc.Module)
	if !ok {
		kill()
		return fmt.Errorf("dispensed %T, not a module", raw)
	}
	var ping func(context.Context) error
	if gc, ok := conn.(*plugin.GRPCClient); ok {
		// go-plugin's own Ping has no deadline.
		health := grpc_health_v1.NewHealthClient(gc.Conn)
		ping = func(ctx context.Context) error {
			_, err := health.Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: plugin.GRPCServiceName})
			return err
		}
	}
	dctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	man, err := mod.Describe(dctx)
	if err != nil {
		kill()
		return fmt.Errorf("describe: %w", err)
	}
	if sockDir != "" {
		err := rpc.OpenSocket(dctx, mod, rpc.SocketOptions{Path: rpc.DataSocketPath(sockDir), TLS: setup.MTLS})
		switch {
		case errors.Is(err, rpc.ErrNoDataSocket):
			m.log.Info("the module serves no data socket (an older SDK built it): its calls go over gRPC")
		case err != nil:
			kill()
			return fmt.Errorf("open the module's data socket: %w", err)
		}
	}
	m.mu.Lock()
	if m.closing.Load() {
		// Shutdown has already taken the previous process: this one
		// would outlive it.
		m.mu.Unlock()
		kill()
		return errClosing
	}
	m.client, m.cmd, m.sockDir, m.manifest, m.pending, m.ping = client, cmd, sockDir, man, mod, ping // serving starts after serverInit
	m.mu.Unlock()
	return nil
}

var errClosing = errors.New("the host is shutting down")

// init runs serverInit on the launched process and starts serving.
func (m *Instance) init(ctx context.Context) error {
	cfgJSON, err := json.Marshal(m.cfg.Config)
	if err != nil {
		return err
	}
	ictx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	m.mu.RLock()
	mod, man := m.pending, m.manifest
	m.mu.RUnlock()
	req := rpc.InitRequest{ConfigJSON: cfgJSON, DataDir: m.dataDir}
	if man.Database {
		if m.loader.Provision == nil {
			return fmt.Errorf("module %s asks for a database and this host has none to give", m.cfg.Name)
		}
		mdb, err := m.loader.Provision(ictx, m.cfg.Name, m.dataDir)
		if err != nil {
			return fmt.Errorf("provision the module's database: %w", err)
		}
		req.DBEngine, req.DBDSN = mdb.Engine, mdb.DSN
	}
	if err := mod.ServerInit(ictx, req, hostServices{m}); err != nil {
		return err
	}
	m.mu.Lock()
	m.mod = mod
	m.timeouts.Store(0)
	m.healthFails.Store(0)
	m.mu.Unlock()
	return nil
}

// answered notes that the serving process answered a call.
func (m *Instance) answered() {
	if m.timeouts.Load() != 0 { // no write, and no shared cache line, per call
		m.timeouts.Store(0)
	}
}

// failed adds one to a count of evidence (timeouts or healthFails) that
// mod, the process that failed, hangs; at the threshold it is replaced.
func (m *Instance) failed(mod rpc.Module, count *atomic.Int64, what string) {
	if m.current() != mod {
		return // a process already replaced
	}
	n := count.Add(1)
	if th := int64(m.loader.HangThreshold); th > 0 && n >= th {
		m.replace(mod, fmt.Sprintf("%d %s in a row", n, what))
	}
}

// replace kills mod's process, which has stopped answering, so that the
// supervisor starts another one. A hung process would not answer a
// graceful stop: it gets SIGKILL at once.
func (m *Instance) replace(mod rpc.Module, reason string) {
	m.mu.Lock()
	if m.mod != mod {
		m.mu.Unlock()
		return
	}
	m.mod = nil // new calls answer 503 until the new process serves
	cmd := m.cmd
	m.mu.Unlock()
	pid := 0
	if cmd != nil && cmd.Process != nil {
		pid = cmd.Process.Pid
		_ = cmd.Process.Kill()
	}
	m.log.Error("module stopped answering; killed it to start a new process", "reason", reason, "pid", pid, "timeout", m.timeout)
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// watchHealth checks every interval that the serving process answers
// go-plugin's health service within the module's call timeout: a process
// that hangs without traffic is found too.
func (m *Instance) watchHealth(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.loader.stopCh():
			return
		case <-t.C:
		}
		m.mu.RLock()
		mod, ping := m.mod, m.ping
		m.mu.RUnlock()
		if mod == nil || ping == nil || m.closing.Load() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), m.timeout)
		err := ping(ctx)
		cancel()
		if err == nil {
			m.healthFails.Store(0)
			continue
		}
		m.log.Warn("module health check failed", "err", err, "in_a_row", m.healthFails.Load()+1)
		m.failed(mod, &m.healthFails, "failed health checks")
	}
}

func (m *Instance) current() rpc.Module {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.mod
}

// markDown stops routing to the current process and wakes the supervisor.
func (m *Instance) markDown() {
	m.mu.Lock()
	m.mod = nil
	m.mu.Unlock()
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// kill takes the process out of service and ends it, by SIGKILL if it has
// not stopped within killGrace.
func (m *Instance) kill() {
	ctx, cancel := context.WithTimeout(context.Background(), killGrace)
	defer cancel()
	m.stop(ctx)
}

// stop takes the process out of service and ends it. go-plugin's Kill asks
// the process to exit over gRPC and waits for the answer without a
// deadline, which a hung (stopped, deadlocked) process never gives: when
// ctx ends first, the process gets SIGKILL, and Kill returns once the
// process is reaped.
func (m *Instance) stop(ctx context.Context) {
	m.mu.Lock()
	c, cmd, dir, mod := m.client, m.cmd, m.sockDir, m.pending
	m.mod, m.client, m.cmd, m.sockDir = nil, nil, nil, ""
	m.mu.Unlock()
	if c == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Kill()
		rpc.CloseSocket(mod)
		if dir != "" {
			_ = os.RemoveAll(dir)
		}
	}()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	pid := 0
	if cmd != nil && cmd.Process != nil {
		pid = cmd.Process.Pid
		m.log.Warn("module did not stop in time; killing it", "pid", pid)
		_ = cmd.Process.Kill() // os.Process holds a pidfd: never another process
	}
	select {
	case <-done:
	case <-time.After(reapWait):
		m.log.Error("module process not reaped after SIGKILL", "pid", pid)
	}
}

// supervise restarts the module when its process exits, with backoff, on a
// fresh client.
func (m *Instance) supervise() {
	defer close(m.done)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-m.kick:
		}
		if m.closing.Load() {
			return
		}
		m.mu.RLock()
		exited := m.client == nil || m.client.Exited()
		up := m.mod != nil
		m.mu.RUnlock()
		if !exited && up {
			continue
		}
		m.log.Error("module is down; restarting", "exited", exited)
		m.kill()
		backoff := MinBackoff
		for !m.closing.Load() {
			err := m.restart()
			if err == nil {
				m.restarts.Add(1)
				m.log.Info("module restarted", "pid", m.PID(), "restarts", m.restarts.Load())
				break
			}
			m.log.Error("module restart failed", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-m.loader.stopCh():
			}
			backoff = min(backoff*2, MaxBackoff)
		}
	}
}

func (m *Instance) restart() error {
	ctx := context.Background()
	old := m.manifest
	if err := m.launch(ctx); err != nil {
		return err
	}
	if !sameRoutes(old, m.manifest) {
		m.log.Warn("module changed its routes or scopes; keeping the ones mounted at start until the host restarts")
	}
	if err := m.init(ctx); err != nil {
		m.kill()
		return fmt.Errorf("serverInit: %w", err)
	}
	return nil
}

func sameRoutes(a, b sdk.Manifest) bool {
	ja, _ := json.Marshal([]any{a.Routes, a.Scopes})
	jb, _ := json.Marshal([]any{b.Routes, b.Scopes})
	return string(ja) == string(jb)
}

// Shutdown asks every module at once to stop, and kills each process by
// SIGKILL if it has not stopped when ctx ends (after ShutdownTimeout when
// ctx has no deadline). It returns once every process is reaped.
func (l *Loader) Shutdown(ctx context.Context) {
	l.stopOnce.Do(func() { close(l.stop) })
	if _, ok := ctx.Deadline(); !ok {
		d := l.ShutdownTimeout
		if d <= 0 {
			d = DefaultShutdownTimeout
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	var wg sync.WaitGroup
	for _, m := range l.Modules() {
		m.closing.Store(true)
		wg.Go(func() { m.shutdown(ctx) })
	}
	wg.Wait()
}

func (m *Instance) shutdown(ctx context.Context) {
	if mod := m.current(); mod != nil {
		if err := mod.Shutdown(ctx); err != nil && !rpc.IsUnavailable(err) {
			m.log.Warn("module shutdown", "err", err)
		}
	}
	m.stop(ctx)
	// The supervisor ends at its next tick; a restart it has under way
	// sees closing and kills its own process.
	select {
	case <-m.done:
	case <-ctx.Done():
	}
}

// mount puts a module's routes on the host's router: on /api/v2 those
// with scopes, and on /api/v1 too the GET routes marked V1.
func mount(s *api.Server, module string, routes []sdk.Route, handler func(sdk.Route) http.Handler) {
	for _, rt := range routes {
		h := handler(rt)
		if len(rt.Scopes) > 0 {
			s.HandleV2(api.Route{Method: rt.Method, Path: rt.Path, Scopes: rt.Scopes, Cost: rt.Cost,
				Doc: api.ModuleDoc(module, rt.Method, rt.Path)}, h)
		}
		if rt.V1 && rt.Method == http.MethodGet {
			s.HandleV1(api.V1Route{Path: rt.Path, Module: module}, h)
		}
	}
}

// hop-by-hop headers, and headers the host owns, never come back from a
// module; the rest are capped.
var droppedHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Content-Length": true,
	"Set-Cookie": true, "Strict-Transport-Security": true, "Content-Security-Policy": true,
	"X-Request-Id": true, "Ratelimit-Limit": true, "Ratelimit-Remaining": true, "Ratelimit-Reset": true,
	"Www-Authenticate": true, "Access-Control-Allow-Origin": true, "Access-Control-Allow-Credentials": true,
}

const (
	maxHeaders     = 64
	maxHeaderBytes = 16 << 10
)

// forwarded request headers: never the caller's credentials (net/http
// gives the names canonical).
var strippedRequestHeaders = map[string]bool{"Authorization": true, "Cookie": true, "X-Csrf-Token": true, "Proxy-Authorization": true}

func (m *Instance) proxy(rt sdk.Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if r.Body != nil && r.Body != http.NoBody {
			var err error
			body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBody))
			if err != nil {
				httpapi.WriteError(w, httpapi.Errorf(http.StatusRequestEntityTooLarge, "body_too_large", "request body is larger than %d bytes", MaxRequestBody))
				return
			}
		}
		// The path, query and data headers were checked at the router; a
		// body that is not text is refused before it can claim an
		// Idempotency-Key.
		if err := api.CheckBodyText(r.Header.Get("Content-Type"), body); err != nil {
			httpapi.WriteError(w, err)
			return
		}
		c := api.CallerFrom(r.Context())
		ctx := r.Context()
		var claim *idempotency.Claim
		if key := r.Header.Get("Idempotency-Key"); key != "" && m.loader.Idempotency != nil && c != nil && !c.V1 &&
			r.Method != http.MethodGet && r.Method != http.MethodHead {
			// Before the module's state: a kept answer replays even while
			// the module is down.
			if claim = m.idempotent(w, r, c, key, body); claim == nil {
				return
			}
			defer claim.Release() // unless finished: without an answer, a retry runs again
			// The answer is kept for the retry, so a caller that goes away
			// does not cut the call short.
			ctx = context.WithoutCancel(ctx)
		}
		mod := m.current()
		if reason := m.broken.Load(); reason != nil {
			httpapi.WriteError(w, httpapi.Errorf(http.StatusServiceUnavailable, "module_unavailable", "module %s is down: %s", m.cfg.Name, *reason))
			return
		}
		if mod == nil {
			w.Header().Set("Retry-After", "1")
			httpapi.WriteError(w, httpapi.Errorf(http.StatusServiceUnavailable, "module_unavailable", "module %s is restarting; try again", m.cfg.Name))
			return
		}
		resp := m.forward(ctx, w, r, rt, mod, c, body)
		if resp == nil {
			return
		}
		status := resp.Status
		if status < 100 || status > 599 {
			status = http.StatusBadGateway
		}
		head := r.Method == http.MethodHead
		h := w.Header()
		copyHeader(h, resp.Header, head)
		var length []string
		if status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified && !head {
			// The whole body is at hand: its length goes to the client,
			// which net/http would otherwise chunk past 2 KiB.
			length = []string{strconv.Itoa(len(resp.Body))}
			h["Content-Length"] = length
		}
		if claim != nil {
			kept := http.Header{}
			copyHeader(kept, resp.Header, head)
			if length != nil {
				kept["Content-Length"] = length
			}
			claim.Finish(idempotency.Response{Status: status, Header: kept, Body: bytes.Clone(resp.Body)})
		}
		w.WriteHeader(status)
		_, _ = w.Write(resp.Body)
		resp.Release()
	})
}

// copyHeader puts a module's response header into dst, less the headers
// the host owns, capped, and without a value that could split the header.
// A HEAD answer keeps the module's Content-Length, which describes the
// body a GET would get.
func copyHeader(dst, src http.Header, head bool) {
	n, size := 0, 0
	for k, vs := range src {
		k = http.CanonicalHeaderKey(k)
		if droppedHeaders[k] && (k != "Content-Length" || !head) {
			continue
		}
		n0, size0 := n, size
		all := true
		for _, v := range vs {
			n, size = n+1, size+len(k)+len(v)
			all = all && keepValue(k, v, n, size)
		}
		if all && dst[k] == nil {
			// The wire decodes a header into memory of its own (only a
			// body is lent), so its values are taken as they are.
			dst[k] = vs
			continue
		}
		n, size = n0, size0
		for _, v := range vs {
			n, size = n+1, size+len(k)+len(v)
			if keepValue(k, v, n, size) {
				dst.Add(k, v)
			}
		}
	}
}

// keepValue says whether the n-th value of a module's header, which
// brings the header to size bytes, may reach the client.
func keepValue(k, v string, n, size int) bool {
	return n <= maxHeaders && size <= maxHeaderBytes && !strings.ContainsAny(v, "\r\n") &&
		(k != "Content-Length" || isDigits(v))
}

func isDigits(s string) bool {
	if s == "" || len(s) > 19 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// forward sends the request to the module and returns its answer. When the
// module does not answer (timed out, gone) it writes the host's answer and
// returns nil, as it does when the caller went away.
func (m *Instance) forward(ctx context.Context, w http.ResponseWriter, r *http.Request, rt sdk.Route, mod rpc.Module, c *api.Caller, body []byte) *rpc.Response {
	// A copy of the map, not of the values: the wire reads them and
	// nothing changes them.
	header := make(http.Header, len(r.Header))
	for k, vs := range r.Header {
		if !strippedRequestHeaders[k] {
			header[k] = vs
		}
	}
	path := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, api.V2Prefix), api.V1Prefix)
	req := rpc.Request{Method: r.Method, Path: path, PathParams: api.Vars(r), Query: r.URL.RawQuery, Header: header, Body: body}
	if c != nil {
		req.Caller = sdk.Caller{OrgID: c.OrgID, KeyID: c.KeyID, Scopes: c.Scopes, Superkey: c.Superkey, RequestID: c.RequestID, V1: c.V1}
	}
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	resp, err := mod.Handle(ctx, req)
	if err == nil {
		m.answered()
	}
	switch {
	case err == nil && ctx.Err() == nil:
		return &resp
	case rpc.IsDeadline(err) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		// Also a response that arrived just as the deadline passed.
		if err != nil {
			m.failed(mod, &m.timeouts, "calls timed out")
		}
		httpapi.WriteError(w, httpapi.Errorf(http.StatusGatewayTimeout, "module_timeout", "module %s did not answer within %s", m.cfg.Name, m.timeout))
	case err == nil || r.Context().Err() != nil:
		// The caller went away (the call was cancelled with it): not the
		// module's failure. 499, nginx's "client closed request", is what
		// the request log and the metrics record; nobody reads it.
		m.log.Debug("caller went away during a module call", "route", rt.Path, "request_id", req.Caller.RequestID, "err", err)
		w.WriteHeader(StatusClientClosed)
	case rpc.IsOutcomeUnknown(err):
		// The module had the request when it went away: it may have
		// applied it, and "try again" could apply it twice.
		m.markDown()
		m.log.Error("module went down during a call; its outcome is unknown", "err", err, "route", rt.Path, "request_id", req.Caller.RequestID)
		httpapi.WriteError(w, httpapi.Errorf(http.StatusBadGateway, "module_outcome_unknown",
			"module %s went down while handling the request: it may have been applied, so check before you repeat it", m.cfg.Name))
	case rpc.IsUnavailable(err): // never sent: safe to repeat
		m.markDown()
		w.Header().Set("Retry-After", "1")
		httpapi.WriteError(w, httpapi.Errorf(http.StatusServiceUnavailable, "module_unavailable", "module %s is restarting; try again", m.cfg.Name))
	default:
		m.log.Error("module call failed", "err", err, "route", rt.Path)
		httpapi.WriteError(w, httpapi.Errorf(http.StatusBadGateway, "module_error", "module %s failed to answer", m.cfg.Name))
	}
	return nil
}

// StatusClientClosed is recorded for a call whose caller went away before
// the module answered.
const StatusClientClosed = httpapi.StatusClientClosed

// hostServices is what a module may ask of the host.
type hostServices struct{ m *Instance }

func (h hostServices) Log(ctx context.Context, level slog.Level, msg string, attrs map[string]string) error {
	args := make([]any, 0, 2*len(attrs))
	for k, v := range attrs {
		args = append(args, k, v)
	}
	h.m.log.Log(ctx, level, msg, args...)
	return nil
}

func (h hostServices) Scopes(context.Context) ([]sdk.RegisteredScope, error) {
	list := h.m.loader.scopes.List()
	out := make([]sdk.RegisteredScope, len(list))
	for i, s := range list {
		out[i] = sdk.RegisteredScope{ID: s.ID, Label: s.Label, Module: s.Module}
	}
	return out, nil
}
