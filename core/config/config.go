// Package config loads indigo.toml, applies INDIGO_<SECTION>_<KEY>
// environment overrides and validates the result, so that a bad setting
// fails at start with the file, the key and the reason.
package config

import (
	"encoding"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// Duration is a time.Duration written as "15m", "24h" or "0".
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration (want e.g. 30s, 15m, 24h): %q", string(b))
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration back in Go syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Config is the whole host configuration.
type Config struct {
	Server   Server   `toml:"server"`
	Database Database `toml:"database"`
	Redis    Redis    `toml:"redis"`
	API      API      `toml:"api"`
	Identity Identity `toml:"identity"`
	V1       V1       `toml:"v1"`
	Modules  []Module `toml:"modules"`

	// Notifications configures key event notifications ([notifications]).
	Notifications Notifications `toml:"notifications"`

	// File is the config file that was read ("" when none), and Dir the
	// folder that relative paths resolve against.
	File string `toml:"-"`
	Dir  string `toml:"-"`

	// fromEnv maps each dotted key set from the environment to its
	// variable, so that an error in that value names the variable.
	fromEnv map[string]string
}

// Source says where the value of a dotted key came from: the environment
// variable that set it, else the file, else "built-in default".
func (c *Config) Source(key string) string {
	if v, ok := c.fromEnv[key]; ok {
		return v
	}
	if c.File != "" {
		return c.File
	}
	return "built-in default"
}

// Server holds the HTTP listener settings.
type Server struct {
	Addr            string   `toml:"addr"`
	PublicURL       string   `toml:"public_url"`
	DataDir         string   `toml:"data_dir"`
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	TrustProxy      bool     `toml:"trust_proxy"`
}

// Database selects the engine. For SQLite, URL is a file path.
type Database struct {
	Driver      string `toml:"driver"`
	URL         string `toml:"url"`
	AutoMigrate bool   `toml:"auto_migrate"`
	// QueryTimeout bounds each request's database work: past it the
	// request answers 503 instead of waiting on a database that hangs.
	QueryTimeout Duration `toml:"query_timeout"`
	// StartTimeout is how long `indigo serve` keeps trying to reach the
	// database at start (a host starting beside its database).
	StartTimeout Duration `toml:"start_timeout"`
}

// Redis holds the counters that several hosts share: rate limits and
// quotas. Without a URL a host counts alone, in memory.
type Redis struct {
	URL string `toml:"url"` // redis://[:password@]host:port[/db]
	// OnError is what a host does while Redis does not answer: "local"
	// limits alone, to its share of each limit (the limit divided by the
	// live hosts); "deny" refuses calls of limited keys.
	OnError string `toml:"on_error"`
}

// API holds the core-api settings.
//
// The request log queues its entries in memory, up to LogQueueSize. While
// the database is unreachable or behind, past three quarters of that the
// queue moves to a spool on disk (<data_dir>/spool/requestlog), up to
// LogSpoolMaxBytes, replayed when the database answers and at the next
// start; an entry is dropped, and counted, only when both are full.
type API struct {
	// Enabled turns core-api on (`indigo add core-api` sets it). Dev runs it
	// without a license, for loopback-only development (`--dev`).
	Enabled            bool     `toml:"enabled"`
	Dev                bool     `toml:"dev"`
	KeyPrefix          string   `toml:"key_prefix"`
	RollGrace          Duration `toml:"roll_grace"`
	DefaultRateLimit   string   `toml:"default_rate_limit"`
	LogRetention       Duration `toml:"log_retention"`
	LogQueueSize       int      `toml:"log_queue_size"`      // request log entries held in memory
	LogSpoolMaxBytes   int64    `toml:"log_spool_max_bytes"` // and on disk past that; 0: none
	LogBatchSize       int      `toml:"log_batch_size"`
	LogFlushInterval   Duration `toml:"log_flush_interval"`
	UsageFlushInterval Duration `toml:"usage_flush_interval"`
	ChangePollInterval Duration `toml:"change_poll_interval"`
	// ChangeSafetyPoll is how often a PostgreSQL host polls the change feed
	// although LISTEN/NOTIFY wakes it at each change: the bound on how long
	// a missed notification can leave a cached key stale.
	ChangeSafetyPoll  Duration `toml:"change_safety_poll"`
	MaintenanceEvery  Duration `toml:"maintenance_interval"`
	MeteringFailOpen  bool     `toml:"metering_fail_open"`
	ModuleCallTimeout Duration `toml:"module_call_timeout"`
	// ModuleHangThreshold is how many calls in a row that time out, or
	// health checks in a row that fail, make the host kill a module's
	// process and start a new one; 0 never does.
	ModuleHangThreshold int `toml:"module_hang_threshold"`
	// ModuleHealthInterval is how often the host checks that each module's
	// process answers (within its call timeout); 0 does not check.
	ModuleHealthInterval Duration `toml:"module_health_interval"`
	// ModuleWire is how calls reach module processes: "socket" (a data
	// socket of each module's, in a directory only the host's user can
	// open) or "grpc" (the previous release's wire, every call on
	// go-plugin's gRPC connection with mTLS), kept for one release.
	// INDIGO_MODULE_WIRE sets it too.
	ModuleWire string `toml:"module_wire"`
	// ModuleMTLS runs the "socket" wire's connections over mutual TLS,
	// which docs/security.md explains it does not need.
	// INDIGO_MODULE_MTLS sets it too.
	ModuleMTLS bool `toml:"module_mtls"`
	// IdempotencyTTL is how long the answer to a module call sent with an
	// Idempotency-Key is kept to answer its retries; 0 ignores the header.
	IdempotencyTTL Duration `toml:"idempotency_ttl"`
	// IdempotencyMaxEntries and IdempotencyMaxMB (MiB) bound the answers
	// kept, in each host's memory; the oldest go first.
	IdempotencyMaxEntries int  `toml:"idempotency_max_entries"`
	IdempotencyMaxMB      int  `toml:"idempotency_max_mb"`
	Deps                  Deps `toml:"deps"`
}

// Deps names the providers of the DI hooks.
type Deps struct {
	ResolveOrgID       string `toml:"resolve_org_id"`
	DeductAPICallToken string `toml:"deduct_api_call_token"`
}

// Identity configures sign-in.
type Identity struct {
	Provider     string   `toml:"provider"`
	SessionTTL   Duration `toml:"session_ttl"`
	LoginLinkTTL Duration `toml:"login_link_ttl"`
	DefaultOrg   string   `toml:"default_org"`
	DefaultOwner string   `toml:"default_owner"`
	JWT          JWT      `toml:"jwt"`
}

// JWT configures provider = "jwt" ([identity.jwt]): sign-in with JSON Web
// Tokens issued by an external OpenID Connect provider and checked against
// its published key set. The env overrides are INDIGO_IDENTITY_JWT_<KEY>.
type JWT struct {
	JWKSURL   string `toml:"jwks_url"`   // the provider's key set (http or https)
	Issuer    string `toml:"issuer"`     // must equal the token's iss
	Audience  string `toml:"audience"`   // must be one of the token's aud
	UserClaim string `toml:"user_claim"` // the user ID (required in tokens)
	// EmailClaim is optional in tokens; "" ignores the email.
	EmailClaim string `toml:"email_claim"`
	OrgClaim   string `toml:"org_claim"` // the org ID (required in tokens)
	// RoleClaim holds a role or a list of roles; "" makes everyone a member.
	RoleClaim string `toml:"role_claim"`
	// AdminRole, among the roles, makes the caller an operator (the
	// cross-org admin pages); "" makes nobody an operator.
	AdminRole string `toml:"admin_role"`
	// Cookie names a cookie set by the host application that carries the
	// same JWT, for a UI behind the host's own session; "" reads only the
	// Authorization header.
	Cookie                 string   `toml:"cookie"`
	Leeway                 Duration `toml:"leeway"` // clock skew allowed on exp, nbf and iat
	JWKSRefreshMinInterval Duration `toml:"jwks_refresh_min_interval"`
}

// V1 is the free, read-only API on one global key (INDIGO_V1_API_KEY).
// With no key, /api/v1 answers 404.
type V1 struct {
	APIKey string `toml:"api_key"`
}

// Notifications configures key event notifications (created, rolled,
// revoked, disabled, enabled, expiring_soon, expired). The env overrides are
// INDIGO_NOTIFICATIONS_<KEY>.
type Notifications struct {
	// WebhookURL receives every event as a signed JSON POST; "" sends none.
	WebhookURL string `toml:"webhook_url"`
	// WebhookSecret signs the webhook (X-Indigo-Signature); required with
	// WebhookURL, at least 16 characters.
	WebhookSecret string `toml:"webhook_secret"`
	// ExpiringSoon is how long before expires_at key.expiring_soon is sent;
	// 0 sends none.
	ExpiringSoon Duration `toml:"expiring_soon"`
	// MaxAttempts is how often a delivery is tried before it is failed.
	MaxAttempts int `toml:"max_attempts"`
	// Log writes every event to the host log.
	Log bool `toml:"log"`
}

// MinWebhookSecret is the shortest webhook secret accepted.
const MinWebhookSecret = 16

// Module is one [[modules]] entry; the module runtime reads it.
type Module struct {
	Name    string         `toml:"name"`
	Path    string         `toml:"path"`
	SHA256  string         `toml:"sha256"`
	Timeout Duration       `toml:"timeout"` // per call; api.module_call_timeout when 0
	Config  map[string]any `toml:"config"`
	// Env is added to the environment the module's process inherits from
	// the host (and wins over it): runtime tuning such as GOMAXPROCS or
	// GOMEMLIMIT, or a setting the module reads from its environment.
	Env map[string]string `toml:"env"`
}

// Default returns the embedded-default configuration.
func Default() Config {
	return Config{
		Server: Server{
			Addr:            "127.0.0.1:8080",
			DataDir:         "data",
			ShutdownTimeout: Duration{10 * time.Second},
		},
		Database: Database{Driver: "sqlite", URL: "data/indigo.db", AutoMigrate: true,
			QueryTimeout: Duration{5 * time.Second}, StartTimeout: Duration{60 * time.Second}},
		Redis: Redis{OnError: "local"},
		API: API{
			Enabled:               true,
			KeyPrefix:             "indigo_sk",
			RollGrace:             Duration{24 * time.Hour},
			DefaultRateLimit:      "600/1m",
			LogRetention:          Duration{30 * 24 * time.Hour},
			LogQueueSize:          10000,
			LogSpoolMaxBytes:      1 << 30,
			LogBatchSize:          2000,
			LogFlushInterval:      Duration{500 * time.Millisecond},
			UsageFlushInterval:    Duration{10 * time.Second},
			ChangePollInterval:    Duration{250 * time.Millisecond},
			ChangeSafetyPoll:      Duration{10 * time.Second},
			MaintenanceEvery:      Duration{time.Minute},
			ModuleCallTimeout:     Duration{10 * time.Second},
			ModuleHangThreshold:   3,
			ModuleHealthInterval:  Duration{5 * time.Second},
			ModuleWire:            "socket",
			IdempotencyTTL:        Duration{24 * time.Hour},
			IdempotencyMaxEntries: 100_000,
			IdempotencyMaxMB:      64,
			Deps:                  Deps{ResolveOrgID: "local"},
		},
		Identity: Identity{
			Provider:     "local",
			SessionTTL:   Duration{7 * 24 * time.Hour},
			LoginLinkTTL: Duration{15 * time.Minute},
			DefaultOrg:   "Default",
			DefaultOwner: "owner@localhost",
			JWT: JWT{
				UserClaim:              "sub",
				EmailClaim:             "email",
				OrgClaim:               "org_id",
				RoleClaim:              "role",
				AdminRole:              "indigo-admin",
				Leeway:                 Duration{30 * time.Second},
				JWKSRefreshMinInterval: Duration{10 * time.Second},
			},
		},
		Notifications: Notifications{
			ExpiringSoon: Duration{72 * time.Hour},
			MaxAttempts:  12,
			Log:          true,
		},
	}
}

// Error is a configuration problem with where it came from.
type Error struct {
	Source string // file name or environment variable
	Key    string // dotted key, e.g. database.driver
	Reason string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s: %s", e.Source, e.Reason)
	}
	return fmt.Sprintf("%s: %s: %s", e.Source, e.Key, e.Reason)
}

// Load reads the file at path (when path is "" or the file is missing and
// mustExist is false, the defaults are used), then applies the environment.
func Load(path string, mustExist bool, environ []string) (*Config, error) {
	cfg := Default()
	if path != "" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, err
		}
		data, err := os.ReadFile(abs)
		switch {
		case err == nil:
			if err := decode(&cfg, data, path); err != nil {
				return nil, err
			}
			cfg.File = abs
		case errors.Is(err, os.ErrNotExist) && !mustExist:
		default:
			return nil, &Error{Source: path, Reason: err.Error()}
		}
		cfg.Dir = filepath.Dir(abs)
	}
	if cfg.Dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		cfg.Dir = wd
	}
	return finish(cfg, environ)
}

// decode reads a file's TOML over cfg; source names the file in errors.
func decode(cfg *Config, data []byte, source string) error {
	md, err := toml.Decode(string(data), cfg)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return &Error{Source: source, Reason: fmt.Sprintf("line %d: %s", perr.Position.Line, perr.Message)}
		}
		return &Error{Source: source, Reason: err.Error()}
	}
	for _, k := range md.Undecoded() {
		if len(k) >= 2 && k[0] == "modules" {
			continue // module config tables are free-form
		}
		return &Error{Source: source, Key: k.String(), Reason: "unknown key"}
	}
	return nil
}

// finish applies the environment over the file's settings, validates and
// resolves relative paths against cfg.Dir.
func finish(cfg Config, environ []string) (*Config, error) {
	if err := applyEnv(&cfg, environ); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.resolvePaths()
	return &cfg, nil
}

// Environ is the environment m's process starts with: host's, then m's
// env in a stable order (for a name set twice, exec uses the last).
func (m Module) Environ(host []string) []string {
	env := make([]string, 0, len(host)+len(m.Env))
	env = append(env, host...)
	for _, k := range slices.Sorted(maps.Keys(m.Env)) {
		env = append(env, k+"="+m.Env[k])
	}
	return env
}

// checkModuleEnv says what is wrong with a [[modules]] env entry, or "".
// The host's handshake with the module (go-plugin's PLUGIN_* variables and
// the INDIGO_MODULE cookie) is not the config's to change.
func checkModuleEnv(name, value string) string {
	switch {
	case !envNameRE.MatchString(name):
		return "a variable's name is letters, digits and _, not starting with a digit"
	case strings.HasPrefix(name, "PLUGIN_") || name == "INDIGO_MODULE":
		return "is the host's handshake with the module, which it sets itself"
	case !utf8.ValidString(value) || strings.IndexByte(value, 0) >= 0:
		return "must be UTF-8 text without NUL"
	}
	return ""
}

var (
	envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	prefixRE  = regexp.MustCompile(`^[a-z][a-z0-9_]{1,15}$`)
	sha256RE  = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	// cookieRE is an RFC 6265 cookie name (an RFC 7230 token).
	cookieRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

func (c *Config) validate() error {
	bad := func(key, format string, a ...any) error {
		return &Error{Source: c.Source(key), Key: key, Reason: fmt.Sprintf(format, a...)}
	}
	if err := checkAddr(c.Server.Addr); err != nil {
		return bad("server.addr", "%v", err)
	}
	switch c.Database.Driver {
	case "sqlite", "postgres":
	default:
		return bad("database.driver", "must be \"sqlite\" or \"postgres\", got %q", c.Database.Driver)
	}
	if c.Database.URL == "" {
		return bad("database.url", "must not be empty")
	}
	if !prefixRE.MatchString(c.API.KeyPrefix) {
		return bad("api.key_prefix", "must match %s, got %q", prefixRE, c.API.KeyPrefix)
	}
	if c.Database.StartTimeout.Duration < 0 {
		return bad("database.start_timeout", "must not be negative")
	}
	if c.API.RollGrace.Duration < 0 {
		return bad("api.roll_grace", "must not be negative")
	}
	if c.API.DefaultRateLimit != "" {
		if _, _, err := ParseRateLimit(c.API.DefaultRateLimit); err != nil {
			return bad("api.default_rate_limit", "%v", err)
		}
	}
	for key, v := range map[string]int{"api.log_queue_size": c.API.LogQueueSize, "api.log_batch_size": c.API.LogBatchSize} {
		if v <= 0 {
			return bad(key, "must be positive, got %d", v)
		}
	}
	if c.API.ModuleHangThreshold < 0 {
		return bad("api.module_hang_threshold", "must not be negative (0 never replaces a module), got %d", c.API.ModuleHangThreshold)
	}
	if c.API.ModuleHealthInterval.Duration < 0 {
		return bad("api.module_health_interval", "must not be negative (0 turns the checks off)")
	}
	switch c.API.ModuleWire {
	case "socket", "grpc":
	default:
		return bad("api.module_wire", "must be \"socket\" or \"grpc\", got %q", c.API.ModuleWire)
	}
	if c.API.IdempotencyTTL.Duration < 0 {
		return bad("api.idempotency_ttl", "must not be negative (0 ignores Idempotency-Key)")
	}
	if c.API.IdempotencyTTL.Duration > 0 {
		for key, v := range map[string]int{"api.idempotency_max_entries": c.API.IdempotencyMaxEntries, "api.idempotency_max_mb": c.API.IdempotencyMaxMB} {
			if v <= 0 {
				return bad(key, "must be positive while api.idempotency_ttl is set, got %d", v)
			}
		}
	}
	if c.API.LogSpoolMaxBytes < 0 {
		return bad("api.log_spool_max_bytes", "must not be negative (0 turns the spool off), got %d", c.API.LogSpoolMaxBytes)
	}
	for key, d := range map[string]Duration{
		"api.log_flush_interval":   c.API.LogFlushInterval,
		"api.usage_flush_interval": c.API.UsageFlushInterval,
		"api.change_poll_interval": c.API.ChangePollInterval,
		"api.change_safety_poll":   c.API.ChangeSafetyPoll,
		"api.maintenance_interval": c.API.MaintenanceEvery,
		"api.module_call_timeout":  c.API.ModuleCallTimeout,
		"database.query_timeout":   c.Database.QueryTimeout,
		"identity.session_ttl":     c.Identity.SessionTTL,
		"identity.login_link_ttl":  c.Identity.LoginLinkTTL,
	} {
		if d.Duration <= 0 {
			return bad(key, "must be a positive duration")
		}
	}
	switch c.Identity.Provider {
	case "local":
	case "jwt":
		if err := c.Identity.JWT.validate(bad); err != nil {
			return err
		}
	default:
		return bad("identity.provider", "must be \"local\" or \"jwt\", got %q", c.Identity.Provider)
	}
	if err := c.Notifications.validate(bad); err != nil {
		return err
	}
	if c.Redis.URL != "" {
		if u, err := url.Parse(c.Redis.URL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			return bad("redis.url", "must be a redis:// or rediss:// URL, got %q", c.Redis.URL)
		}
	}
	switch c.Redis.OnError {
	case "local", "deny":
	default:
		return bad("redis.on_error", "must be \"local\" or \"deny\", got %q", c.Redis.OnError)
	}
	seen := map[string]bool{}
	for i, m := range c.Modules {
		key := fmt.Sprintf("modules[%d]", i)
		if m.Name == "" || m.Path == "" {
			return bad(key, "needs a name and a path")
		}
		if seen[m.Name] {
			return bad(key+".name", "module %q is listed twice", m.Name)
		}
		seen[m.Name] = true
		if m.SHA256 != "" && !sha256RE.MatchString(m.SHA256) {
			return bad(key+".sha256", "must be 64 hex characters")
		}
		if m.Timeout.Duration < 0 {
			return bad(key+".timeout", "must not be negative")
		}
		for _, name := range slices.Sorted(maps.Keys(m.Env)) {
			if err := checkModuleEnv(name, m.Env[name]); err != "" {
				return bad(key+".env."+name, "%s", err)
			}
		}
	}
	// A hook names a built-in provider or a listed module that provides it
	// (the loader checks that the module really does).
	switch d := c.API.Deps.ResolveOrgID; {
	case d == "jwt" && c.Identity.Provider != "jwt":
		return bad("api.deps.resolve_org_id", "\"jwt\" needs identity.provider = \"jwt\" and its [identity.jwt] table")
	case d == "" || d == "local" || d == "jwt" || seen[d]:
	default:
		return bad("api.deps.resolve_org_id", "unknown provider %q: use \"local\", \"jwt\" or the name of a module in [[modules]]", d)
	}
	if d := c.API.Deps.DeductAPICallToken; d != "" && !seen[d] {
		return bad("api.deps.deduct_api_call_token", "no module %q is listed in [[modules]] to provide metering", d)
	}
	return nil
}

// validate checks [identity.jwt]; it runs only when provider = "jwt", so a
// prepared but unused table does not stop a local-provider host.
func (j *JWT) validate(bad func(key, format string, a ...any) error) error {
	if j.JWKSURL == "" {
		return bad("identity.jwt.jwks_url", "is required when identity.provider = \"jwt\"")
	}
	u, err := url.Parse(j.JWKSURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("identity.jwt.jwks_url", "must be an http or https URL, got %q", j.JWKSURL)
	}
	if j.Issuer == "" {
		return bad("identity.jwt.issuer", "is required when identity.provider = \"jwt\"")
	}
	if j.Audience == "" {
		return bad("identity.jwt.audience", "is required when identity.provider = \"jwt\"")
	}
	if j.UserClaim == "" {
		return bad("identity.jwt.user_claim", "must not be empty")
	}
	if j.OrgClaim == "" {
		return bad("identity.jwt.org_claim", "must not be empty")
	}
	switch j.AdminRole {
	case "owner", "admin", "member":
		// An org role would make every org's owners (or admins, or
		// members) operators of all orgs.
		return bad("identity.jwt.admin_role", "must not be an org role (owner, admin, member), got %q", j.AdminRole)
	}
	if j.Cookie != "" && !cookieRE.MatchString(j.Cookie) {
		return bad("identity.jwt.cookie", "is not a valid cookie name: %q", j.Cookie)
	}
	if j.Leeway.Duration < 0 {
		return bad("identity.jwt.leeway", "must not be negative")
	}
	if j.JWKSRefreshMinInterval.Duration <= 0 {
		return bad("identity.jwt.jwks_refresh_min_interval", "must be a positive duration")
	}
	return nil
}

// validate checks [notifications].
func (n *Notifications) validate(bad func(key, format string, a ...any) error) error {
	if n.WebhookURL != "" {
		u, err := url.Parse(n.WebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("notifications.webhook_url", "must be an http or https URL, got %q", n.WebhookURL)
		}
		if n.WebhookSecret == "" {
			return bad("notifications.webhook_secret", "is required when notifications.webhook_url is set")
		}
		if len(n.WebhookSecret) < MinWebhookSecret {
			return bad("notifications.webhook_secret", "must be at least %d characters", MinWebhookSecret)
		}
	}
	if n.ExpiringSoon.Duration < 0 {
		return bad("notifications.expiring_soon", "must not be negative")
	}
	if n.MaxAttempts < 1 {
		return bad("notifications.max_attempts", "must be at least 1, got %d", n.MaxAttempts)
	}
	return nil
}

func (c *Config) abs(p string) string {
	if p == "" || filepath.IsAbs(p) || p == ":memory:" {
		return p
	}
	return filepath.Join(c.Dir, p)
}

func (c *Config) resolvePaths() {
	c.Server.DataDir = c.abs(c.Server.DataDir)
	if c.Database.Driver == "sqlite" {
		c.Database.URL = c.abs(strings.TrimPrefix(c.Database.URL, "file:"))
	}
	for i := range c.Modules {
		c.Modules[i].Path = c.abs(c.Modules[i].Path)
	}
}

// checkAddr accepts a listen address: host:port with a port from 0 to
// 65535 and an empty host, a name or an IP.
func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("must be host:port, such as 127.0.0.1:8080 or :8080, got %q", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return fmt.Errorf("the port must be a number from 0 to 65535, got %q in %q", port, addr)
	}
	if strings.ContainsAny(host, " /\\") {
		return fmt.Errorf("%q is not a host name or IP address", host)
	}
	return nil
}

// ParseRateLimit reads "N/WINDOW" (e.g. "100/1m", "10/30s") into a limit and
// a window. "0" or "" means no limit.
func ParseRateLimit(s string) (int64, time.Duration, error) {
	if s == "" || s == "0" {
		return 0, 0, nil
	}
	n, w, ok := strings.Cut(s, "/")
	if !ok {
		return 0, 0, fmt.Errorf("want N/WINDOW such as 100/1m, got %q", s)
	}
	limit, err := strconv.ParseInt(n, 10, 64)
	if err != nil || limit <= 0 {
		return 0, 0, fmt.Errorf("limit must be a positive integer, got %q", n)
	}
	if w != "" && (w[0] < '0' || w[0] > '9') {
		w = "1" + w // "100/m" reads as one minute
	}
	window, err := time.ParseDuration(w)
	if err != nil || window < time.Second || window%time.Second != 0 {
		return 0, 0, fmt.Errorf("window must be a whole number of seconds such as 1s, 1m or 1h, got %q", w)
	}
	return limit, window, nil
}

// applyEnv walks the config struct and sets every leaf from
// INDIGO_<SECTION>_<KEY> when that variable is present.
// Hand-written, not koanf: its env provider reads only os.Environ, needs a key table anyway (INDIGO_API_DEFAULT_RATE_LIMIT is api.default_rate_limit), and its errors name the key, not the variable.
func applyEnv(cfg *Config, environ []string) error {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "INDIGO_") {
			env[k] = v
		}
	}
	aliased := map[string]string{}
	for short, long := range envAliases {
		if v, ok := env[short]; ok {
			if _, both := env[long]; both {
				return &Error{Source: short, Reason: fmt.Sprintf("%s is set too; set one of them", long)}
			}
			env[long] = v
			aliased[long] = short
		}
	}
	if len(env) == 0 {
		return nil
	}
	cfg.fromEnv = map[string]string{}
	err := walk(reflect.ValueOf(cfg).Elem(), nil, env, cfg.fromEnv)
	for key, name := range cfg.fromEnv {
		if short, ok := aliased[name]; ok {
			cfg.fromEnv[key] = short
		}
	}
	if e, ok := errors.AsType[*Error](err); ok {
		if short, ok := aliased[e.Source]; ok {
			e.Source = short
		}
	}
	return err
}

// envAliases are shorter names of a few variables, as the release notes
// give them: the module wire's switches.
var envAliases = map[string]string{
	"INDIGO_MODULE_WIRE": "INDIGO_API_MODULE_WIRE",
	"INDIGO_MODULE_MTLS": "INDIGO_API_MODULE_MTLS",
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

func walk(v reflect.Value, path []string, env, set map[string]string) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("toml")
		if tag == "" || tag == "-" {
			continue
		}
		fv := v.Field(i)
		p := append(append([]string{}, path...), tag)
		if fv.Kind() == reflect.Struct && !reflect.PointerTo(f.Type).Implements(textUnmarshaler) {
			if err := walk(fv, p, env, set); err != nil {
				return err
			}
			continue
		}
		name := "INDIGO_" + strings.ToUpper(strings.Join(p, "_"))
		raw, ok := env[name]
		if !ok {
			continue
		}
		if !utf8.ValidString(raw) {
			// A setting the file could not hold (TOML is UTF-8), nor a
			// log line or a header show as it is.
			return &Error{Source: name, Key: strings.Join(p, "."), Reason: "is not valid UTF-8"}
		}
		if err := setFromString(fv, raw); err != nil {
			return &Error{Source: name, Key: strings.Join(p, "."), Reason: err.Error()}
		}
		set[strings.Join(p, ".")] = name
	}
	return nil
}

func setFromString(v reflect.Value, raw string) error {
	if v.CanAddr() && v.Addr().Type().Implements(textUnmarshaler) {
		return v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(raw))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("not a boolean: %q", raw)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer: %q", raw)
		}
		v.SetInt(n)
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}
