// Package core is the Indigo host runtime. It composes the configuration,
// the store, API keys, identity, request logs, maintenance and the HTTP API
// into one Host that `indigo serve` starts and stops.
package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/indigo-hq/indigo/core/api"
	"github.com/indigo-hq/indigo/core/apikey"
	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/core/idempotency"
	"github.com/indigo-hq/indigo/core/identity"
	"github.com/indigo-hq/indigo/core/maintenance"
	"github.com/indigo-hq/indigo/core/metering"
	"github.com/indigo-hq/indigo/core/module"
	"github.com/indigo-hq/indigo/core/notify"
	"github.com/indigo-hq/indigo/core/ratelimit"
	"github.com/indigo-hq/indigo/core/requestlog"
	"github.com/indigo-hq/indigo/core/scope"
	"github.com/indigo-hq/indigo/db"
	"github.com/indigo-hq/indigo/sdk"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Options are what a caller (the CLI, a test, a host embedding Indigo) can
// set beyond the configuration.
type Options struct {
	Now       func() time.Time  // the clock; time.Now when nil
	Logger    *slog.Logger      // slog.Default when nil
	Resolver  identity.Resolver // the resolveOrgId hook; the local provider when nil
	Meter     metering.Meter    // the deductApiCallToken hook; none when nil
	NoMigrate bool              // skip the automatic migration at start
	// WaitForDatabase keeps trying to reach the database for this long,
	// with backoff, logging each attempt (serve: database.start_timeout);
	// 0 tries once.
	WaitForDatabase time.Duration
	Scopes          *scope.Registry // a registry to extend; core's when nil
	// DescribeModules registers the configured modules' scopes from their
	// describe output, for commands that do not start the modules.
	DescribeModules bool
	// ExistingDatabase refuses to create an embedded database that is not
	// there yet: commands that read or change existing records use it.
	ExistingDatabase bool
	// NoMaintenance leaves the periodic tasks to the caller (Host.Maint.RunOnce).
	// Tests on a fake clock use it, so that no task runs at a moment they did
	// not choose.
	NoMaintenance bool
}

// Services are the parts that commands use without an HTTP server.
type Services struct {
	Cfg    *config.Config
	Store  *db.Store
	Keys   *apikey.Service
	Local  *identity.Local
	Scopes *scope.Registry
	Log    *slog.Logger
}

// Open connects to the configured database (migrating it unless told not
// to) and builds the services.
func Open(ctx context.Context, cfg *config.Config, opts Options) (*Services, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if opts.ExistingDatabase {
		if err := DatabaseExists(cfg); err != nil {
			return nil, err
		}
	}
	store, err := openWaiting(ctx, cfg, opts.WaitForDatabase, log)
	if err != nil {
		return nil, err
	}
	if err := migrateOrCheck(ctx, store, cfg, !opts.NoMigrate && cfg.Database.AutoMigrate); err != nil {
		_ = store.Close()
		return nil, err
	}
	reg := opts.Scopes
	if reg == nil {
		reg = scope.NewWithCore()
	}
	if opts.DescribeModules {
		module.RegisterDescribed(ctx, reg, cfg.Modules, func(err error) { log.Warn("module scopes unknown to this command", "err", err) })
	}
	settings := apikey.Settings{Prefix: cfg.API.KeyPrefix, RollGrace: cfg.API.RollGrace.Duration, QueryTimeout: cfg.Database.QueryTimeout.Duration}
	if limit, window, _ := config.ParseRateLimit(cfg.API.DefaultRateLimit); limit > 0 {
		settings.DefaultRateLimit = &apikey.RateLimit{Limit: limit, WindowSeconds: int64(window / time.Second)}
	}
	return &Services{
		Cfg: cfg, Store: store, Scopes: reg, Log: log,
		Keys:  apikey.New(store, reg, settings, opts.Now, log),
		Local: identity.NewLocal(store, opts.Now, cfg.Identity.SessionTTL.Duration, cfg.Identity.LoginLinkTTL.Duration),
	}, nil
}

// openWaiting opens the database, trying again with backoff (0.25 s
// doubling to 5 s) for up to wait while it is unreachable, so that a host
// starting beside its database comes up once the database does. Errors
// that waiting cannot fix (a bad URL, a wrong password) return at once.
func openWaiting(ctx context.Context, cfg *config.Config, wait time.Duration, log *slog.Logger) (*db.Store, error) {
	// wall clock: how long a real database has been unreachable
	deadline := time.Now().Add(wait)
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		store, err := db.Open(ctx, cfg.Database.Driver, cfg.Database.URL)
		if err == nil {
			if attempt > 1 {
				log.Info("database reachable", "attempt", attempt)
			}
			return store, nil
		}
		// wall clock: the same deadline
		if !db.Unavailable(err) || time.Now().Add(backoff).After(deadline) {
			if attempt > 1 {
				return nil, fmt.Errorf("%w (gave up after %d attempts over database.start_timeout %s)", err, attempt, wait)
			}
			return nil, err
		}
		log.Warn("database unreachable; trying again", "attempt", attempt, "in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// DatabaseExists reports an embedded (SQLite) database file that is not
// there, saying where the path came from and how to create it. A server
// database is always taken to exist: connecting says otherwise.
func DatabaseExists(cfg *config.Config) error {
	if cfg.Database.Driver != db.SQLite {
		return nil
	}
	path, _, _ := strings.Cut(cfg.Database.URL, "?")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no database at %s (database.url from %s): start the host once with `indigo serve`, or run `indigo db migrate up`, to create it",
			path, cfg.Source("database.url"))
	}
	return nil
}

// migrateOrCheck migrates the schema up, or, when migration is off,
// refuses a dirty or unmigrated one. The migrations are the project's
// db/migrations/<engine> beside the config file when it has them (core-api's
// and the project's own), else the ones built in.
func migrateOrCheck(ctx context.Context, store *db.Store, cfg *config.Config, up bool) error {
	m, from, err := db.ProjectMigrator(ctx, store, cfg.Dir)
	if err != nil {
		return err
	}
	defer m.Close()
	if up {
		if err := m.Up(); err != nil {
			if from != "" {
				return fmt.Errorf("migrate %s database from %s: %w", cfg.Database.Driver, from, err)
			}
			return fmt.Errorf("migrate %s database: %w", cfg.Database.Driver, err)
		}
		return nil
	}
	st, err := m.Status()
	if err != nil {
		return err
	}
	if st.Dirty {
		return fmt.Errorf("%w at version %d: fix it by hand, then run `indigo db migrate force %d`", db.ErrDirty, st.Version, st.Version)
	}
	if st.Version < st.Latest {
		return fmt.Errorf("database schema is at version %d, this build needs %d: run `indigo db migrate up`", st.Version, st.Latest)
	}
	return nil
}

// Close releases the store.
func (s *Services) Close() error { return s.Store.Close() }

// Host is a running Indigo server.
type Host struct {
	*Services
	API     *api.Server
	Logs    *requestlog.Writer
	Maint   *maintenance.Scheduler
	Modules *module.Loader
	// Notify delivers key events to the configured notifiers. Register
	// more (a module's) before Start or StartBackground.
	Notify *notify.Dispatcher

	// Shared is the Redis limiter when [redis] url is set, else nil.
	Shared *ratelimit.Shared
	redis  *redis.Client

	noMaint bool
	hookSet struct{ meter, resolver bool } // set as Go functions in Options
	srv     *http.Server
	ln      net.Listener
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	stopped sync.Once
}

// New builds a host on open services.
func New(svc *Services, opts Options) *Host {
	cfg := svc.Cfg
	logs := requestlog.New(svc.Store, requestlog.Options{
		QueueSize: cfg.API.LogQueueSize, BatchSize: cfg.API.LogBatchSize, FlushInterval: cfg.API.LogFlushInterval.Duration,
		SpoolDir: SpoolDir(cfg), SpoolMaxBytes: cfg.API.LogSpoolMaxBytes, Log: svc.Log, Now: svc.Keys.Now,
	})
	resolver := opts.Resolver
	local := opts.Resolver == nil && cfg.Identity.Provider != "jwt"
	switch {
	case resolver != nil:
	case cfg.Identity.Provider == "jwt":
		j := cfg.Identity.JWT
		resolver = identity.NewJWT(identity.JWTConfig{
			JWKSURL: j.JWKSURL, Issuer: j.Issuer, Audience: j.Audience,
			UserClaim: j.UserClaim, EmailClaim: j.EmailClaim, OrgClaim: j.OrgClaim, RoleClaim: j.RoleClaim,
			AdminRole: j.AdminRole, Cookie: j.Cookie, Leeway: j.Leeway.Duration, JWKSRefreshMinInterval: j.JWKSRefreshMinInterval.Duration,
		}, nil, svc.Keys.Now, svc.Log)
	default:
		resolver = svc.Local
	}
	if !local {
		resolver = identity.Provisioned(resolver, svc.Local)
	}
	h := &Host{Services: svc, Logs: logs, noMaint: opts.NoMaintenance}
	h.hookSet.meter, h.hookSet.resolver = opts.Meter != nil, opts.Resolver != nil
	h.API = &api.Server{
		Keys: svc.Keys, Identity: resolver, Local: svc.Local, Meter: opts.Meter, FailOpen: cfg.API.MeteringFailOpen,
		Logs: logs, Log: svc.Log, TrustXFF: cfg.Server.TrustProxy, SessionTTL: cfg.Identity.SessionTTL.Duration,
		QueryTimeout: cfg.Database.QueryTimeout.Duration,
		Metrics:      api.NewMetrics(svc.Keys.CacheStats, logs.Dropped, logs.Depth), V1Key: cfg.V1.APIKey,
	}
	h.API.Metrics.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "indigo_api_key_unknown_refused_total",
		Help: "Keys refused without a database lookup: no stored key has their hash.",
	}, func() float64 { return float64(svc.Keys.UnknownRefused()) }))
	h.API.Unmetered = metering.NewBacklog(svc.Store, svc.Log, svc.Keys.Now, 10_000)
	h.Modules = module.NewLoader(h.API, svc.Scopes, cfg.Server.DataDir, cfg.API.ModuleCallTimeout.Duration, svc.Log)
	h.Modules.Provision = svc.Store.ProvisionModule
	h.Modules.ShutdownTimeout = cfg.Server.ShutdownTimeout.Duration
	h.Modules.HangThreshold = cfg.API.ModuleHangThreshold
	h.Modules.HealthInterval = cfg.API.ModuleHealthInterval.Duration
	h.Modules.Wire, h.Modules.MTLS = cfg.API.ModuleWire, cfg.API.ModuleMTLS
	if ttl := cfg.API.IdempotencyTTL.Duration; ttl > 0 {
		h.Modules.Idempotency = idempotency.New(idempotency.Settings{
			TTL: ttl, MaxEntries: cfg.API.IdempotencyMaxEntries, MaxBytes: int64(cfg.API.IdempotencyMaxMB) << 20,
		}, svc.Keys.Now)
	}
	if !local {
		// Sign-in belongs to the host's identity provider: no local links.
		h.API.Local = nil
		h.API.BearerIdentity = true
	}
	now := svc.Keys.Now
	nc := cfg.Notifications
	h.Notify = notify.New(svc.Store, svc.Log, now)
	if nc.MaxAttempts > 0 {
		h.Notify.MaxAttempts = nc.MaxAttempts
	}
	if nc.Log {
		h.Notify.Register(notify.LogNotifier{Log: svc.Log})
	}
	if nc.WebhookURL != "" {
		h.Notify.Register(&notify.Webhook{URL: nc.WebhookURL, Secret: nc.WebhookSecret})
	}
	svc.Keys.SetNotifyWake(h.Notify.Wake)
	h.Maint = maintenance.New(svc.Store, svc.Log,
		maintenance.Task{ID: "expire-keys", Interval: cfg.API.MaintenanceEvery.Duration, Run: func(ctx context.Context) (int64, error) {
			n, err := svc.Keys.ExpireDue(ctx)
			return int64(n), err
		}},
		maintenance.Task{ID: "prune-request-logs", Interval: cfg.API.MaintenanceEvery.Duration, Run: func(ctx context.Context) (int64, error) {
			return requestlog.Prune(ctx, svc.Store, now(), cfg.API.LogRetention.Duration)
		}},
		// PostgreSQL: the request log's daily partitions, a week ahead.
		maintenance.Task{ID: "log-partitions", Interval: cfg.API.MaintenanceEvery.Duration, Run: func(ctx context.Context) (int64, error) {
			return svc.Store.EnsureLogPartitions(ctx, now(), 7)
		}},
		maintenance.Task{ID: "prune-key-changes", Interval: cfg.API.MaintenanceEvery.Duration, Run: func(ctx context.Context) (int64, error) {
			return svc.Keys.PruneChanges(ctx, time.Hour)
		}},
		maintenance.Task{ID: "prune-sessions", Interval: cfg.API.MaintenanceEvery.Duration, Run: func(ctx context.Context) (int64, error) {
			return svc.Local.PruneSessions(ctx)
		}},
		// Charges the calls let through while the metering provider was
		// down (fail open), once it answers again.
		maintenance.Task{ID: "reconcile-metering", Interval: cfg.API.MaintenanceEvery.Duration, Run: func(ctx context.Context) (int64, error) {
			return metering.Reconcile(ctx, svc.Store, h.API.Meter, now, svc.Log)
		}},
		maintenance.Task{ID: "prune-key-events", Interval: cfg.API.MaintenanceEvery.Duration, Run: func(ctx context.Context) (int64, error) {
			return notify.Prune(ctx, svc.Store, now())
		}},
		maintenance.Task{ID: "notify-expiring-keys", Interval: cfg.API.MaintenanceEvery.Duration, Run: func(ctx context.Context) (int64, error) {
			n, err := notify.ExpiringSoon(ctx, svc.Store, now(), nc.ExpiringSoon.Duration)
			if n > 0 {
				h.Notify.Wake()
			}
			return n, err
		}},
	)
	h.Maint.Now = now
	h.API.Metrics.Registry.MustRegister(h.Maint.Collectors()...)
	h.API.Metrics.Registry.MustRegister(logs.Collectors()...)
	if cfg.Redis.URL != "" {
		h.useRedis()
	}
	return h
}

// useRedis moves rate limits and quotas into Redis ([redis] url), shared by
// every host that points there.
func (h *Host) useRedis() {
	opts, err := redis.ParseURL(h.Cfg.Redis.URL) // validated with the config
	if err != nil {
		h.Log.Error("redis url", "err", err)
		return
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = time.Second, 250*time.Millisecond, 250*time.Millisecond
	h.redis = redis.NewClient(opts)
	h.Shared = ratelimit.NewShared(h.redis, h.Cfg.Redis.OnError, h.Maint.Host, h.Log)
	h.Keys.SetLimiter(h.Shared)
	h.API.Ready = append(h.API.Ready, api.Check{Name: "redis", Optional: h.Cfg.Redis.OnError == ratelimit.OnErrorLocal,
		Run: func(ctx context.Context) error { return h.redis.Ping(ctx).Err() }})
	h.API.Metrics.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "indigo_redis_fallback", Help: "1 while Redis does not answer and limits fall back ([redis] on_error).",
	}, func() float64 {
		if h.Shared.Degraded() {
			return 1
		}
		return 0
	}))
	for via, count := range map[string]func() uint64{
		"redis":    func() uint64 { r, _ := h.Shared.Decided(); return r },
		"lease":    h.Shared.Leased,
		"fallback": func() uint64 { _, f := h.Shared.Decided(); return f },
	} {
		h.API.Metrics.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "indigo_ratelimit_decisions_total",
			Help:        "Calls of limited keys decided through Redis: by a round trip (redis), from a lease this host holds (lease), or by the local fallback while Redis does not answer (fallback).",
			ConstLabels: prometheus.Labels{"via": via},
		}, func() float64 { return float64(count()) }))
	}
}

// SpoolDir is where the request log keeps what the database cannot take
// yet: <data_dir>/spool/requestlog ("" without a data folder).
func SpoolDir(cfg *config.Config) string {
	if cfg.Server.DataDir == "" {
		return ""
	}
	return filepath.Join(cfg.Server.DataDir, "spool", "requestlog")
}

// Handler is the host's HTTP handler.
func (h *Host) Handler() http.Handler { return h.API.Handler() }

// LoadModules starts the configured modules and mounts their routes. It
// must run before the host serves requests.
func (h *Host) LoadModules(ctx context.Context) error {
	h.API.Router() // core routes first, so a module can never shadow them
	if err := h.Modules.Load(ctx, h.Cfg.Modules); err != nil {
		return err
	}
	if err := h.wireModuleHooks(); err != nil {
		h.Modules.Shutdown(ctx)
		return err
	}
	// Module tasks join the core's schedule: once per interval across hosts.
	for _, m := range h.Modules.Modules() {
		for _, t := range m.Manifest().Tasks {
			h.Maint.Add(maintenance.Task{ID: "module:" + m.Name() + ":" + t.Name, Interval: time.Duration(t.IntervalSeconds) * time.Second,
				Run: func(ctx context.Context) (int64, error) { return 0, m.RunTask(ctx, t.Name) }})
		}
	}
	return nil
}

// wireModuleHooks points the DI hooks that indigo.toml gives to modules
// ([api.deps]) at them, and uses a module's key limit when one provides
// it. Hooks set as Go functions (Options) take precedence.
func (h *Host) wireModuleHooks() error {
	deps := h.Cfg.API.Deps
	want := func(key, name, hook string) (*module.Instance, error) {
		m := h.Modules.Find(name)
		if m == nil {
			return nil, fmt.Errorf("api.deps.%s: module %q is not loaded", key, name)
		}
		if !m.Provides(hook) {
			return nil, fmt.Errorf("api.deps.%s: module %q does not provide %s (it provides %v)", key, name, hook, m.Manifest().Hooks)
		}
		return m, nil
	}
	if name := deps.DeductAPICallToken; name != "" && !h.hookSet.meter {
		m, err := want("deduct_api_call_token", name, sdk.HookDeductAPICallToken)
		if err != nil {
			return err
		}
		h.API.Meter = m.Meter()
		h.Log.Info("metering every v2 call through a module", "module", name, "fail_open", h.Cfg.API.MeteringFailOpen)
	}
	if name := deps.ResolveOrgID; name != "" && name != "local" && name != "jwt" && !h.hookSet.resolver {
		m, err := want("resolve_org_id", name, sdk.HookResolveOrgID)
		if err != nil {
			return err
		}
		h.API.Identity = identity.Provisioned(m.Resolver(), h.Local)
		h.API.Local = nil
		h.API.BearerIdentity = true
	}
	for _, m := range h.Modules.Modules() {
		if m.Provides(sdk.HookKeyEvents) {
			h.Notify.Register(m.Notifier())
		}
	}
	m, err := h.Modules.Hooked(sdk.HookKeyLimit)
	if err != nil {
		return err
	}
	if m != nil {
		h.Keys.SetKeyLimiter(m.KeyLimiter())
		h.Log.Info("plan key limits come from a module", "module", m.Name())
	}
	return nil
}

// Start loads the modules, listens on the configured address and starts
// the background work.
func (h *Host) Start(ctx context.Context) error {
	if err := h.LoadModules(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", h.Cfg.Server.Addr)
	if err != nil {
		h.Modules.Shutdown(ctx)
		return fmt.Errorf("listen on %s: %w", h.Cfg.Server.Addr, err)
	}
	h.ln = ln
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h.cancel = cancel
	h.StartBackground(bg)
	h.srv = &http.Server{
		Handler:           h.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(h.Log.Handler(), slog.LevelWarn),
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		if err := h.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.Log.Error("http server", "err", err)
		}
	}()
	return nil
}

// StartBackground starts the log writer, the change-feed follower, the
// usage flusher, the key notification dispatcher and maintenance; Start
// calls it, tests may call it alone.
func (h *Host) StartBackground(ctx context.Context) {
	if h.cancel == nil {
		ctx, h.cancel = context.WithCancel(ctx)
	}
	cfg := h.Cfg.API
	wake := make(chan struct{}, 1)
	// Read where the feed ends before serving, so that no change made after
	// this point can be skipped, however late the follower starts.
	pos, err := h.Keys.ChangePosition(ctx)
	if err != nil {
		h.Log.Error("change feed: read position", "err", err)
	}
	h.wg.Add(7)
	go func() {
		defer h.wg.Done()
		// wall clock: how long loading took, for the log
		start := time.Now()
		if err := h.Keys.LoadKnownKeys(ctx); err != nil {
			h.Log.Warn("known keys: load (every uncached key is looked up until it succeeds)", "err", err)
			return
		}
		h.Log.Debug("known keys loaded", "took", time.Since(start)) // wall clock: the same
	}()
	go func() { defer h.wg.Done(); h.Notify.Run(ctx) }()
	go func() { defer h.wg.Done(); h.API.Unmetered.Run(ctx) }()
	go func() { defer h.wg.Done(); h.Logs.Run() }()
	// PostgreSQL wakes the follower at each change (LISTEN/NOTIFY): its
	// poll is only a safety net. SQLite has no notifications: it polls.
	poll := cfg.ChangePollInterval.Duration
	if h.Store.Engine == db.Postgres {
		poll = cfg.ChangeSafetyPoll.Duration
	}
	go func() { defer h.wg.Done(); h.Keys.FollowChanges(ctx, pos, poll, wake) }()
	go func() { defer h.wg.Done(); h.Store.Listen(ctx, db.KeyChangesChannel, wake) }()
	go func() {
		defer h.wg.Done()
		every(ctx, cfg.UsageFlushInterval.Duration, func() {
			if err := h.Keys.FlushUsage(ctx, false); err != nil && ctx.Err() == nil {
				h.Log.Warn("save key usage", "err", err)
			}
		})
	}()
	// The limiter's memory follows the keys in use: what it holds for a
	// key idle longer than this goes (an idle key's window is empty, and
	// its quota saved by then).
	idle := max(limitSweepIdle, 3*cfg.UsageFlushInterval.Duration)
	h.wg.Go(func() {
		every(ctx, time.Minute, func() {
			if n := h.Keys.SweepLimits(idle); n > 0 {
				h.Log.Debug("rate limiter: dropped the state of idle keys", "keys", n)
			}
		})
	})
	if !h.noMaint {
		h.Maint.Start(ctx)
	}
	if h.Shared != nil { // only the shared limiter's fallback counts hosts
		h.wg.Go(func() { h.heartbeat(ctx) })
	}
}

// every runs fn every d until ctx ends.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// limitSweepIdle is how long a key goes without a call before the rate
// limiter drops what it keeps for it (at least 3 usage write-backs).
const limitSweepIdle = 10 * time.Minute

// heartbeatEvery is how often a host records that it is alive; a host
// missing for three beats no longer counts.
const heartbeatEvery = 5 * time.Second

// heartbeat keeps this host in saas_hosts and tells the shared limiter how
// many hosts there are, for its fallback share.
func (h *Host) heartbeat(ctx context.Context) {
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		h.Beat(ctx)
		select {
		case <-ctx.Done():
			_ = h.Store.Q().ForgetHost(context.WithoutCancel(ctx), db.ForgetHostParams{Host: h.Maint.Host, Before: h.Keys.Now().UnixMilli() - 3600_000})
			return
		case <-t.C:
		}
	}
}

// Beat records this host as alive now and reads how many hosts are.
func (h *Host) Beat(ctx context.Context) {
	now := h.Keys.Now().UnixMilli()
	if err := h.Store.Q().BeatHost(ctx, db.BeatHostParams{Host: h.Maint.Host, Now: now}); err != nil || h.Shared == nil {
		return
	}
	if n, err := h.Store.Q().CountLiveHosts(ctx, now-3*heartbeatEvery.Milliseconds()); err == nil {
		h.Shared.SetLiveHosts(n)
	}
}

// Addr is the address the host listens on.
func (h *Host) Addr() string {
	if h.ln == nil {
		return h.Cfg.Server.Addr
	}
	return h.ln.Addr().String()
}

// URL is the base URL for links.
func (h *Host) URL() string {
	if h.Cfg.Server.PublicURL != "" {
		return h.Cfg.Server.PublicURL
	}
	return "http://" + h.Addr()
}

// Shutdown stops accepting requests, finishes those in flight, stops the
// modules (killing any that has not stopped by the deadline), writes the
// queued log entries (spooling to disk those the database cannot take
// before ctx ends) and the in-memory usage, and closes the store. Without
// a deadline on ctx, server.shutdown_timeout applies.
func (h *Host) Shutdown(ctx context.Context) error {
	var errs []error
	h.stopped.Do(func() {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, h.Cfg.Server.ShutdownTimeout.Duration)
			defer cancel()
		}
		// Requests and modules stop a little before the deadline, so that
		// the writes after them still have time when a hung module takes
		// all it gives.
		dl, _ := ctx.Deadline()
		// wall clock: context deadlines are on the real clock
		reserve := min(time.Until(dl)/5, 2*time.Second)
		stopCtx, cancel := context.WithDeadline(ctx, dl.Add(-reserve))
		defer cancel()
		if h.srv != nil {
			if err := h.srv.Shutdown(stopCtx); err != nil {
				errs = append(errs, err)
			}
		}
		h.Modules.Shutdown(stopCtx)
		h.Logs.Close(ctx) // what the database cannot take in time waits in the spool
		if h.cancel != nil {
			h.cancel()
		}
		h.Maint.Wait()
		h.wg.Wait()
		if err := h.Keys.FlushUsage(ctx, true); err != nil {
			errs = append(errs, err)
		}
		if err := h.Store.Close(); err != nil {
			errs = append(errs, err)
		}
		if h.redis != nil {
			h.Shared.Close()
			_ = h.redis.Close()
		}
	})
	return errors.Join(errs...)
}

// FirstSignIn is what the host prints at start in local sign-in mode: the
// organization and a one-time link for its owner, valid until ExpiresAt.
type FirstSignIn struct {
	OrgID, OrgName, URL string
	ExpiresAt           time.Time
}

// Bootstrap makes sure the default org and its owner exist (on a new
// database) and returns a one-time sign-in link for that owner.
func (h *Host) Bootstrap(ctx context.Context) (FirstSignIn, error) {
	var first FirstSignIn
	// Hosts starting together make one default org and one owner.
	err := h.Store.Exclusive(ctx, "bootstrap", func() error {
		orgs, err := h.Local.ListOrgs(ctx)
		if err != nil {
			return err
		}
		if len(orgs) == 0 {
			o, err := h.Local.CreateOrg(ctx, h.Cfg.Identity.DefaultOrg)
			if err != nil {
				return err
			}
			orgs = append(orgs, o)
		}
		// Read before the link is made, so the link is valid at least this long.
		expires := h.Keys.Now().Add(h.Cfg.Identity.LoginLinkTTL.Duration)
		tok, err := h.Local.LoginLink(ctx, orgs[0].ID, h.Cfg.Identity.DefaultOwner, identity.RoleOwner, true)
		if err != nil {
			return err
		}
		first = FirstSignIn{OrgID: orgs[0].ID, OrgName: orgs[0].Name, URL: LoginURL(h.URL(), tok), ExpiresAt: expires}
		return nil
	})
	return first, err
}

// LoginURL is the sign-in link for a token.
func LoginURL(base, token string) string { return base + "/auth/login?token=" + token }

// NewLogger is the host's structured logger.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	if w == nil {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
