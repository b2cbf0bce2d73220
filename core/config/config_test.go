package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "indigo.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestShippedConfigLoads(t *testing.T) {
	cfg, err := Load("../../indigo.toml", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	if cfg.Server.Addr != want.Server.Addr || cfg.Database.Driver != "sqlite" || cfg.API.KeyPrefix != "indigo_sk" ||
		cfg.API.RollGrace != want.API.RollGrace || !filepath.IsAbs(cfg.Database.URL) {
		t.Fatalf("shipped config differs from the defaults: %+v", cfg)
	}
}

func TestRelativeSQLitePathResolvesAgainstConfigFolder(t *testing.T) {
	p := write(t, "[database]\nurl = \"state/x.db\"\n[server]\ndata_dir = \"d\"\n")
	cfg, err := Load(p, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(filepath.Dir(p), "state", "x.db"); cfg.Database.URL != want {
		t.Fatalf("url = %q, want %q", cfg.Database.URL, want)
	}
	if want := filepath.Join(filepath.Dir(p), "d"); cfg.Server.DataDir != want {
		t.Fatalf("data_dir = %q, want %q", cfg.Server.DataDir, want)
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	p := write(t, "[server]\naddr = \"127.0.0.1:1\"\n")
	cfg, err := Load(p, true, []string{
		"INDIGO_SERVER_ADDR=127.0.0.1:9000",
		"INDIGO_DATABASE_DRIVER=postgres",
		"INDIGO_DATABASE_URL=postgres://u@localhost/db",
		"INDIGO_API_ROLL_GRACE=90s",
		"INDIGO_API_LOG_QUEUE_SIZE=7",
		"INDIGO_API_LOG_SPOOL_MAX_BYTES=4096",
		"INDIGO_API_DEPS_RESOLVE_ORG_ID=local",
		"INDIGO_DATABASE_AUTO_MIGRATE=false",
		"INDIGO_API_MODULE_HANG_THRESHOLD=0",
		"PATH=/bin",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Addr != "127.0.0.1:9000" || cfg.Database.Driver != "postgres" || cfg.Database.URL != "postgres://u@localhost/db" ||
		cfg.API.RollGrace.Duration != 90*time.Second || cfg.API.LogQueueSize != 7 || cfg.API.LogSpoolMaxBytes != 4096 || cfg.Database.AutoMigrate || cfg.API.ModuleHangThreshold != 0 {
		t.Fatalf("overrides not applied: %+v", cfg)
	}
}

func TestBadConfigNamesFileKeyAndReason(t *testing.T) {
	cases := []struct {
		name, body string
		env        []string
		want       []string
	}{
		{"unknown key", "[server]\nadr = \"x\"\n", nil, []string{"indigo.toml", "server.adr", "unknown key"}},
		{"bad driver", "[database]\ndriver = \"mysql\"\n", nil, []string{"indigo.toml", "database.driver", "mysql"}},
		{"bad duration", "[api]\nroll_grace = \"soon\"\n", nil, []string{"indigo.toml", "soon"}},
		{"syntax", "[server]\naddr = = 1\n", nil, []string{"indigo.toml", "line 2"}},
		{"bad prefix", "[api]\nkey_prefix = \"Bad-Prefix\"\n", nil, []string{"api.key_prefix"}},
		{"bad rate limit", "[api]\ndefault_rate_limit = \"ten/min\"\n", nil, []string{"api.default_rate_limit"}},
		{"bad env int", "", []string{"INDIGO_API_LOG_QUEUE_SIZE=many"}, []string{"INDIGO_API_LOG_QUEUE_SIZE", "api.log_queue_size", "not an integer"}},
		{"negative spool budget", "[api]\nlog_spool_max_bytes = -1\n", nil, []string{"indigo.toml", "api.log_spool_max_bytes", "negative"}},
		{"bad env bool", "", []string{"INDIGO_DATABASE_AUTO_MIGRATE=maybe"}, []string{"INDIGO_DATABASE_AUTO_MIGRATE", "not a boolean"}},
		{"metering from an unlisted module", "[api.deps]\ndeduct_api_call_token = \"billing\"\n", nil, []string{"api.deps.deduct_api_call_token", "billing", "[[modules]]"}},
		{"unknown org resolver", "", []string{"INDIGO_API_DEPS_RESOLVE_ORG_ID=ldap"}, []string{"api.deps.resolve_org_id", "ldap"}},
		{"jwt resolver without the jwt provider", "", []string{"INDIGO_API_DEPS_RESOLVE_ORG_ID=jwt"}, []string{"api.deps.resolve_org_id", "identity.provider"}},
		{"negative hang threshold", "[api]\nmodule_hang_threshold = -1\n", nil, []string{"api.module_hang_threshold", "negative"}},
		{"no idempotency entries", "[api]\nidempotency_max_entries = 0\n", nil, []string{"api.idempotency_max_entries", "api.idempotency_ttl"}},
		{"negative health interval", "", []string{"INDIGO_API_MODULE_HEALTH_INTERVAL=-1s"}, []string{"INDIGO_API_MODULE_HEALTH_INTERVAL", "api.module_health_interval"}},
		{"module env name", "[[modules]]\nname = \"m\"\npath = \"m\"\n[modules.env]\n\"GO MAXPROCS\" = \"1\"\n", nil, []string{"modules[0].env.GO MAXPROCS", "letters, digits"}},
		{"module env handshake", "[[modules]]\nname = \"m\"\npath = \"m\"\nenv = { PLUGIN_PROTOCOL_VERSIONS = \"9\" }\n", nil, []string{"modules[0].env.PLUGIN_PROTOCOL_VERSIONS", "handshake"}},
		{"module env cookie", "[[modules]]\nname = \"m\"\npath = \"m\"\nenv = { INDIGO_MODULE = \"x\" }\n", nil, []string{"modules[0].env.INDIGO_MODULE", "handshake"}},
		{"module env NUL", "[[modules]]\nname = \"m\"\npath = \"m\"\nenv = { GOMEMLIMIT = \"1\\u0000GiB\" }\n", nil, []string{"modules[0].env.GOMEMLIMIT", "NUL"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(write(t, c.body), true, c.env)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "none.toml"), true, nil); err == nil {
		t.Fatal("a missing --config file was accepted")
	}
	cfg, err := Load(filepath.Join(t.TempDir(), "none.toml"), false, nil)
	if err != nil || cfg.Database.Driver != "sqlite" {
		t.Fatalf("default config without a file: %v", err)
	}
}

func TestParseRateLimit(t *testing.T) {
	for in, want := range map[string][2]int64{"100/1m": {100, 60}, "5/30s": {5, 30}, "10/h": {10, 3600}, "0": {0, 0}, "": {0, 0}} {
		l, w, err := ParseRateLimit(in)
		if err != nil || l != want[0] || int64(w/time.Second) != want[1] {
			t.Errorf("ParseRateLimit(%q) = %d, %v, %v", in, l, w, err)
		}
	}
	for _, bad := range []string{"100", "x/1m", "-1/1m", "5/500ms", "5/1.5s"} {
		if _, _, err := ParseRateLimit(bad); err == nil {
			t.Errorf("ParseRateLimit(%q) accepted", bad)
		}
	}
}

const jwtTOML = `[identity]
provider = "jwt"
[identity.jwt]
jwks_url = "https://idp.example.com/.well-known/jwks.json"
issuer = "https://idp.example.com/"
audience = "indigo"
`

func TestJWTProviderDefaultsAndFile(t *testing.T) {
	cfg, err := Load(write(t, jwtTOML+"cookie = \"host_session\"\nleeway = \"5s\"\n"), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	j := cfg.Identity.JWT
	if cfg.Identity.Provider != "jwt" || j.JWKSURL != "https://idp.example.com/.well-known/jwks.json" ||
		j.Issuer != "https://idp.example.com/" || j.Audience != "indigo" || j.Cookie != "host_session" ||
		j.Leeway.Duration != 5*time.Second {
		t.Fatalf("file values not read: %+v", j)
	}
	if j.UserClaim != "sub" || j.EmailClaim != "email" || j.OrgClaim != "org_id" || j.RoleClaim != "role" ||
		j.AdminRole != "indigo-admin" || j.JWKSRefreshMinInterval.Duration != 10*time.Second {
		t.Fatalf("defaults not kept: %+v", j)
	}
}

func TestJWTProviderFromEnvironment(t *testing.T) {
	cfg, err := Load("", false, []string{
		"INDIGO_IDENTITY_PROVIDER=jwt",
		"INDIGO_IDENTITY_JWT_JWKS_URL=http://127.0.0.1:9/jwks",
		"INDIGO_IDENTITY_JWT_ISSUER=iss",
		"INDIGO_IDENTITY_JWT_AUDIENCE=aud",
		"INDIGO_IDENTITY_JWT_USER_CLAIM=uid",
		"INDIGO_IDENTITY_JWT_EMAIL_CLAIM=mail",
		"INDIGO_IDENTITY_JWT_ORG_CLAIM=tenant",
		"INDIGO_IDENTITY_JWT_ROLE_CLAIM=roles",
		"INDIGO_IDENTITY_JWT_ADMIN_ROLE=ops",
		"INDIGO_IDENTITY_JWT_COOKIE=sess",
		"INDIGO_IDENTITY_JWT_LEEWAY=0s",
		"INDIGO_IDENTITY_JWT_JWKS_REFRESH_MIN_INTERVAL=1m",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := JWT{
		JWKSURL: "http://127.0.0.1:9/jwks", Issuer: "iss", Audience: "aud", UserClaim: "uid", EmailClaim: "mail",
		OrgClaim: "tenant", RoleClaim: "roles", AdminRole: "ops", Cookie: "sess",
		Leeway: Duration{0}, JWKSRefreshMinInterval: Duration{time.Minute},
	}
	if cfg.Identity.Provider != "jwt" || cfg.Identity.JWT != want {
		t.Fatalf("env overrides not applied:\n got %+v\nwant %+v", cfg.Identity.JWT, want)
	}
}

func TestLocalProviderIgnoresJWTTable(t *testing.T) {
	// A prepared [identity.jwt] table does not stop a local-provider host.
	if _, err := Load(write(t, "[identity.jwt]\njwks_url = \"ftp://x\"\n"), true, nil); err != nil {
		t.Fatal(err)
	}
}

func TestBadJWTConfig(t *testing.T) {
	cases := []struct {
		name, body string
		env        []string
		want       []string
	}{
		{"unknown provider", "[identity]\nprovider = \"saml\"\n", nil, []string{"indigo.toml", "identity.provider", "saml"}},
		{"no jwks_url", "[identity]\nprovider = \"jwt\"\n[identity.jwt]\nissuer = \"i\"\naudience = \"a\"\n", nil,
			[]string{"indigo.toml", "identity.jwt.jwks_url", "required"}},
		{"jwks_url not http", jwtTOML, []string{"INDIGO_IDENTITY_JWT_JWKS_URL=file:///etc/jwks.json"},
			[]string{"identity.jwt.jwks_url", "http or https"}},
		{"jwks_url without host", jwtTOML, []string{"INDIGO_IDENTITY_JWT_JWKS_URL=https:///jwks"}, []string{"identity.jwt.jwks_url"}},
		{"no issuer", jwtTOML, []string{"INDIGO_IDENTITY_JWT_ISSUER="}, []string{"identity.jwt.issuer", "required"}},
		{"no audience", jwtTOML, []string{"INDIGO_IDENTITY_JWT_AUDIENCE="}, []string{"identity.jwt.audience", "required"}},
		{"empty user claim", jwtTOML + "user_claim = \"\"\n", nil, []string{"identity.jwt.user_claim", "empty"}},
		{"empty org claim", jwtTOML + "org_claim = \"\"\n", nil, []string{"identity.jwt.org_claim", "empty"}},
		{"admin role is an org role", jwtTOML + "admin_role = \"admin\"\n", nil, []string{"identity.jwt.admin_role", "org role"}},
		{"bad cookie name", jwtTOML + "cookie = \"a b;\"\n", nil, []string{"identity.jwt.cookie", "cookie name"}},
		{"negative leeway", jwtTOML + "leeway = \"-1s\"\n", nil, []string{"identity.jwt.leeway", "negative"}},
		{"zero refresh interval", jwtTOML + "jwks_refresh_min_interval = \"0s\"\n", nil,
			[]string{"identity.jwt.jwks_refresh_min_interval", "positive"}},
		{"bad env duration", jwtTOML, []string{"INDIGO_IDENTITY_JWT_LEEWAY=soon"},
			[]string{"INDIGO_IDENTITY_JWT_LEEWAY", "identity.jwt.leeway", "not a duration"}},
		{"unknown jwt key", jwtTOML + "jwks_uri = \"x\"\n", nil, []string{"identity.jwt.jwks_uri", "unknown key"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(write(t, c.body), true, c.env)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestNotificationsDefaultsFileAndEnvironment(t *testing.T) {
	cfg, err := Load("", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := cfg.Notifications; n.WebhookURL != "" || n.ExpiringSoon.Duration != 72*time.Hour || n.MaxAttempts != 12 || !n.Log {
		t.Fatalf("defaults: %+v", n)
	}
	body := "[notifications]\nwebhook_url = \"https://hooks.example.com/indigo\"\nwebhook_secret = \"0123456789abcdef\"\n" +
		"expiring_soon = \"24h\"\nmax_attempts = 5\nlog = false\n"
	cfg, err = Load(write(t, body), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Notifications{WebhookURL: "https://hooks.example.com/indigo", WebhookSecret: "0123456789abcdef",
		ExpiringSoon: Duration{24 * time.Hour}, MaxAttempts: 5, Log: false}
	if cfg.Notifications != want {
		t.Fatalf("file values:\n got %+v\nwant %+v", cfg.Notifications, want)
	}
	cfg, err = Load(write(t, body), true, []string{
		"INDIGO_NOTIFICATIONS_WEBHOOK_URL=http://127.0.0.1:9/hook",
		"INDIGO_NOTIFICATIONS_WEBHOOK_SECRET=from-the-environment",
		"INDIGO_NOTIFICATIONS_EXPIRING_SOON=0s",
		"INDIGO_NOTIFICATIONS_MAX_ATTEMPTS=1",
		"INDIGO_NOTIFICATIONS_LOG=true",
	})
	if err != nil {
		t.Fatal(err)
	}
	want = Notifications{WebhookURL: "http://127.0.0.1:9/hook", WebhookSecret: "from-the-environment", MaxAttempts: 1, Log: true}
	if cfg.Notifications != want {
		t.Fatalf("env overrides:\n got %+v\nwant %+v", cfg.Notifications, want)
	}
}

func TestBadNotificationsConfig(t *testing.T) {
	const hook = "[notifications]\nwebhook_url = \"https://hooks.example.com/x\"\n"
	cases := []struct {
		name, body string
		env        []string
		want       []string
	}{
		{"webhook not http", "[notifications]\nwebhook_url = \"ftp://hooks.example.com/x\"\nwebhook_secret = \"0123456789abcdef\"\n", nil,
			[]string{"indigo.toml", "notifications.webhook_url", "http or https"}},
		{"webhook without host", "", []string{"INDIGO_NOTIFICATIONS_WEBHOOK_URL=https:///x", "INDIGO_NOTIFICATIONS_WEBHOOK_SECRET=0123456789abcdef"},
			[]string{"notifications.webhook_url"}},
		{"webhook without secret", hook, nil, []string{"notifications.webhook_secret", "required"}},
		{"short secret", hook + "webhook_secret = \"0123456789abcde\"\n", nil, []string{"notifications.webhook_secret", "16"}},
		{"negative expiring_soon", "[notifications]\nexpiring_soon = \"-1h\"\n", nil, []string{"notifications.expiring_soon", "negative"}},
		{"no attempts", "[notifications]\nmax_attempts = 0\n", nil, []string{"notifications.max_attempts", "at least 1"}},
		{"bad env attempts", "", []string{"INDIGO_NOTIFICATIONS_MAX_ATTEMPTS=often"},
			[]string{"INDIGO_NOTIFICATIONS_MAX_ATTEMPTS", "notifications.max_attempts", "not an integer"}},
		{"unknown key", "[notifications]\nwebhook = \"https://x\"\n", nil, []string{"notifications.webhook", "unknown key"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(write(t, c.body), true, c.env)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
