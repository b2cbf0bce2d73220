package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestEnvOverlay pins the INDIGO_<SECTION>_<KEY> overlay: each kind of leaf
// is set from its variable and recorded as its source, file values stay
// unless their variable is set, and unknown INDIGO_ variables are ignored.
func TestEnvOverlay(t *testing.T) {
	p := write(t, "[api]\nlog_queue_size = 3\n[identity.jwt]\nissuer = \"file-iss\"\n")
	cases := []struct {
		name, env, key string // key "" means no key comes from the environment
		got            func(*Config) any
		want           any
	}{
		{"duration", "INDIGO_API_ROLL_GRACE=90s", "api.roll_grace", func(c *Config) any { return c.API.RollGrace.Duration }, 90 * time.Second},
		{"bool", "INDIGO_SERVER_TRUST_PROXY=true", "server.trust_proxy", func(c *Config) any { return c.Server.TrustProxy }, true},
		{"int", "INDIGO_API_LOG_QUEUE_SIZE=7", "api.log_queue_size", func(c *Config) any { return c.API.LogQueueSize }, 7},
		{"underscores in the key", "INDIGO_API_DEFAULT_RATE_LIMIT=5/1s", "api.default_rate_limit", func(c *Config) any { return c.API.DefaultRateLimit }, "5/1s"},
		{"nested key", "INDIGO_IDENTITY_JWT_ISSUER=env-iss", "identity.jwt.issuer", func(c *Config) any { return c.Identity.JWT.Issuer }, "env-iss"},
		{"unknown variable ignored", "INDIGO_API_NO_SUCH_KEY=1", "", func(c *Config) any { return c.Identity.JWT.Issuer }, "file-iss"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Load(p, true, []string{c.env, "PATH=/bin"})
			if err != nil {
				t.Fatal(err)
			}
			if got := c.got(cfg); got != c.want {
				t.Errorf("value = %v, want %v", got, c.want)
			}
			if c.key != "" {
				if name := c.env[:len("INDIGO_")+len(c.key)]; cfg.Source(c.key) != name || len(cfg.fromEnv) != 1 {
					t.Errorf("Source(%q) = %q, fromEnv = %v; want only %s", c.key, cfg.Source(c.key), cfg.fromEnv, name)
				}
			} else if len(cfg.fromEnv) != 0 {
				t.Errorf("fromEnv = %v, want empty", cfg.fromEnv)
			}
			if c.key != "api.log_queue_size" && (cfg.API.LogQueueSize != 3 || cfg.Source("api.log_queue_size") != cfg.File) {
				t.Errorf("file value api.log_queue_size = %d from %s, want 3 from the file", cfg.API.LogQueueSize, cfg.Source("api.log_queue_size"))
			}
		})
	}
}

// TestEnvOverlayBadValue pins the error for a value that does not parse: it
// names the variable and the key.
func TestEnvOverlayBadValue(t *testing.T) {
	cases := []struct {
		env  string
		want Error
	}{
		{"INDIGO_API_ROLL_GRACE=soon", Error{"INDIGO_API_ROLL_GRACE", "api.roll_grace", `not a duration (want e.g. 30s, 15m, 24h): "soon"`}},
		{"INDIGO_SERVER_TRUST_PROXY=maybe", Error{"INDIGO_SERVER_TRUST_PROXY", "server.trust_proxy", `not a boolean: "maybe"`}},
		{"INDIGO_API_LOG_QUEUE_SIZE=many", Error{"INDIGO_API_LOG_QUEUE_SIZE", "api.log_queue_size", `not an integer: "many"`}},
		{"INDIGO_IDENTITY_JWT_LEEWAY=later", Error{"INDIGO_IDENTITY_JWT_LEEWAY", "identity.jwt.leeway", `not a duration (want e.g. 30s, 15m, 24h): "later"`}},
		// Found by FuzzLoad: accepted, it made a config that indigo.toml
		// cannot hold.
		{"INDIGO_SERVER_ADDR=\x98:0", Error{"INDIGO_SERVER_ADDR", "server.addr", "is not valid UTF-8"}},
	}
	for _, c := range cases {
		t.Run(c.want.Source, func(t *testing.T) {
			_, err := Load("", false, []string{c.env})
			var e *Error
			if !errors.As(err, &e) || *e != c.want {
				t.Fatalf("error = %#v, want %#v", err, &c.want)
			}
		})
	}
}

// TestModuleWireSettings pins the module wire's settings: "socket" by
// default, INDIGO_MODULE_WIRE and INDIGO_MODULE_MTLS as short names of
// their INDIGO_API_ variables (named as the source, and in errors), both
// names at once refused, and an unknown wire refused.
func TestModuleWireSettings(t *testing.T) {
	cfg, err := Load("", false, nil)
	if err != nil || cfg.API.ModuleWire != "socket" || cfg.API.ModuleMTLS {
		t.Fatalf("defaults: wire %q mtls %v (%v)", cfg.API.ModuleWire, cfg.API.ModuleMTLS, err)
	}
	for _, env := range [][]string{{"INDIGO_MODULE_WIRE=grpc", "INDIGO_MODULE_MTLS=1"}, {"INDIGO_API_MODULE_WIRE=grpc", "INDIGO_API_MODULE_MTLS=true"}} {
		cfg, err := Load("", false, env)
		if err != nil || cfg.API.ModuleWire != "grpc" || !cfg.API.ModuleMTLS {
			t.Fatalf("%v: wire %q mtls %v (%v)", env, cfg.API.ModuleWire, cfg.API.ModuleMTLS, err)
		}
		if name, _, _ := strings.Cut(env[0], "="); cfg.Source("api.module_wire") != name {
			t.Errorf("%v: source %q", env, cfg.Source("api.module_wire"))
		}
	}
	p := write(t, "[api]\nmodule_wire = \"grpc\"\nmodule_mtls = true\n")
	if cfg, err := Load(p, true, nil); err != nil || cfg.API.ModuleWire != "grpc" || !cfg.API.ModuleMTLS {
		t.Fatalf("from the file: %+v %v", cfg, err)
	}
	for _, c := range []struct {
		env  []string
		want Error
	}{
		{[]string{"INDIGO_MODULE_WIRE=pigeon"}, Error{"INDIGO_MODULE_WIRE", "api.module_wire", `must be "socket" or "grpc", got "pigeon"`}},
		{[]string{"INDIGO_MODULE_MTLS=perhaps"}, Error{"INDIGO_MODULE_MTLS", "api.module_mtls", `not a boolean: "perhaps"`}},
		{[]string{"INDIGO_MODULE_WIRE=grpc", "INDIGO_API_MODULE_WIRE=socket"}, Error{Source: "INDIGO_MODULE_WIRE", Reason: "INDIGO_API_MODULE_WIRE is set too; set one of them"}},
	} {
		_, err := Load("", false, c.env)
		var e *Error
		if !errors.As(err, &e) || *e != c.want {
			t.Errorf("%v: error = %#v, want %#v", c.env, err, &c.want)
		}
	}
}
