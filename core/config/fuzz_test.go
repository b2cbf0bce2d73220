package config

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// FuzzLoad feeds indigo.toml bytes and INDIGO_ variables (one NAME=value a
// line) to the loader. Whatever they are, it never panics; a refusal is a
// *Error naming where the bad value came from (the variable, when one set
// the key); and a config that loads validates again as it stands, and
// written back out as TOML loads to the very same config.
func FuzzLoad(f *testing.F) {
	shipped, err := os.ReadFile("../../indigo.toml")
	if err != nil {
		f.Fatal(err)
	}
	cluster, err := os.ReadFile("../../deploy/cluster.toml")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range [][2]string{
		{string(shipped), ""},
		{string(cluster), ""},
		{string(shipped), "INDIGO_SERVER_ADDR=127.0.0.1:9000\nINDIGO_API_ROLL_GRACE=90s\nINDIGO_DATABASE_AUTO_MIGRATE=false"},
		{"", "INDIGO_DATABASE_DRIVER=mysql"},
		{"", "INDIGO_API_LOG_QUEUE_SIZE=x"},
		{"[database]\ndriver = \"postgres\"\nurl = \"postgres://u@h/db\"\n", ""},
		{"[[modules]]\nname = \"projects\"\npath = \"plugins/projects\"\ntimeout = \"3s\"\n[modules.config]\ngreeting = \"hi\"\nn = 3\nlist = [1, 2]\n", "INDIGO_API_DEPS_RESOLVE_ORG_ID=projects"},
		{"[identity]\nprovider = \"jwt\"\n[identity.jwt]\njwks_url = \"https://idp.example.com/jwks.json\"\nissuer = \"https://idp.example.com/\"\n", ""},
		{"[notifications]\nwebhook_url = \"https://hooks.example.com/x\"\nwebhook_secret = \"0123456789abcdef\"\n", ""},
		{"[api]\ndefault_rate_limit = \"10/s\"\n", "INDIGO_API_DEFAULT_RATE_LIMIT=0"},
		{"[server]\naddr = \":0\"\nbogus = 1\n", ""},
		{"[api\n", ""},
	} {
		f.Add([]byte(s[0]), s[1])
	}
	const dir, file = "/srv/indigo", "/srv/indigo/indigo.toml"
	load := func(data []byte, environ []string) (*Config, error) {
		cfg := Default()
		if err := decode(&cfg, data, file); err != nil {
			return nil, err
		}
		cfg.File, cfg.Dir = file, dir
		return finish(cfg, environ)
	}
	f.Fuzz(func(t *testing.T, data []byte, env string) {
		var environ []string
		vars := map[string]bool{}
		for _, kv := range strings.Split(env, "\n") {
			if kv != "" {
				environ = append(environ, kv)
				if k, _, ok := strings.Cut(kv, "="); ok {
					vars[k] = true
				}
			}
		}
		cfg, err := load(data, environ)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || ce.Reason == "" || (ce.Source != file && !vars[ce.Source]) {
				t.Fatalf("refusal %#v names neither the file nor a variable that is set", err)
			}
			if v := "INDIGO_" + strings.ToUpper(strings.NewReplacer(".", "_").Replace(ce.Key)); ce.Key != "" && vars[v] && ce.Source != v {
				t.Fatalf("%s set %s, but the refusal names %s: %v", v, ce.Key, ce.Source, err)
			}
			return
		}
		if err := cfg.validate(); err != nil {
			t.Fatalf("a loaded config does not validate: %v", err)
		}
		var buf bytes.Buffer
		if err := toml.NewEncoder(&buf).Encode(cfg); err != nil {
			t.Fatalf("a loaded config does not encode: %v", err)
		}
		again, err := load(buf.Bytes(), nil)
		if err != nil {
			t.Fatalf("a loaded config, written out, does not load: %v\n%s", err, buf.Bytes())
		}
		cfg.fromEnv = nil
		if !reflect.DeepEqual(cfg, again) {
			t.Fatalf("written out and loaded again, the config changed:\n got %+v\nwant %+v\n%s", again, cfg, buf.Bytes())
		}
	})
}
