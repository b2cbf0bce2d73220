package main_test

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core/license"
	"github.com/indigo-hq/indigo/db/dbtest"
)

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildIndigo builds the real binary once per test binary.
func buildIndigo(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "indigo-e2e-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "indigo")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type cli struct {
	t   *testing.T
	bin string
	env []string
}

func (c cli) run(args ...string) string {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = c.env
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		c.t.Fatalf("indigo %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return string(out)
}

func (c cli) fails(args ...string) string {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = c.env
	out, err := cmd.CombinedOutput()
	if err == nil {
		c.t.Fatalf("indigo %s succeeded: %s", strings.Join(args, " "), out)
	}
	return string(out)
}

func get(t *testing.T, url, key string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// within polls until the status is want, for at most 1 s.
func within(t *testing.T, what, url, key string, want int) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		got := get(t, url, key)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %d after 1s, want %d", what, got, want)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// TestServeAndCLI runs the real binary: `indigo serve` in one process, and
// the CLI in others against the same database, as a user would.
func TestServeAndCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildIndigo(t)
	for _, engine := range dbtest.Engines {
		t.Run(engine, func(t *testing.T) {
			addr := freeAddr(t)
			dir := t.TempDir()
			cfgPath := filepath.Join(dir, "indigo.toml")
			dbURL := "data/indigo.db"
			if engine == "postgres" {
				dbURL = dbtest.URL(t, engine)
			}
			cfg := fmt.Sprintf("[server]\naddr = %q\n[database]\ndriver = %q\nurl = %q\n[api]\ndev = true\nchange_poll_interval = \"200ms\"\n", addr, engine, dbURL)
			if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			env := append(os.Environ(), "INDIGO_CONFIG="+cfgPath)
			c := cli{t: t, bin: bin, env: env}

			serve := exec.Command(bin, "serve")
			serve.Env = env
			stdout, _ := serve.StdoutPipe()
			var stderr strings.Builder
			serve.Stderr = &stderr
			if err := serve.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			lines := make(chan string, 10)
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			go func() { exited <- serve.Wait() }()
			defer func() {
				if serve.ProcessState == nil {
					_ = serve.Process.Kill()
				}
			}()
			var link string
			var banner []string
			timeout := time.After(20 * time.Second)
			for link == "" {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatalf("serve exited early: %s", stderr.String())
					}
					banner = append(banner, l)
					if i := strings.Index(l, "http://"+addr+"/auth/login?token="); i >= 0 {
						link = l[i:]
						// The banner says which config is in use and when the link expires.
						b := strings.Join(banner, "\n")
						if !strings.Contains(b, "Using config "+cfgPath) || !strings.Contains(l, "valid for 15m0s, until ") ||
							!strings.Contains(b, "Default organization: Default (org_") {
							t.Errorf("banner:\n%s", b)
						}
					}
				case <-timeout:
					t.Fatalf("no sign-in link printed; stderr: %s", stderr.String())
				}
			}
			// The printed link signs the owner in once.
			noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := noFollow.Get(link)
			if err != nil || resp.StatusCode != 303 || len(resp.Cookies()) == 0 || !resp.Cookies()[0].HttpOnly {
				t.Fatalf("sign-in link: %v %v", err, resp)
			}
			if resp2, _ := noFollow.Get(link); resp2.StatusCode != 401 {
				t.Fatalf("the link worked twice: %d", resp2.StatusCode)
			}

			org := strings.TrimSpace(c.run("orgs", "create", "Acme"))
			if !strings.HasPrefix(org, "org_") {
				t.Fatalf("orgs create printed %q", org)
			}
			var orgJSON map[string]string
			if err := json.Unmarshal([]byte(c.run("orgs", "create", "Beta", "--json")), &orgJSON); err != nil || orgJSON["name"] != "Beta" {
				t.Fatalf("orgs create --json: %v %v", orgJSON, err)
			}
			var created struct {
				Key    map[string]any `json:"key"`
				RawKey string         `json:"raw_key"`
			}
			if err := json.Unmarshal([]byte(c.run("keys", "create", "--org", org, "--name", "ci", "--scopes", "api-keys:read", "--rate-limit", "100/1m", "--json")), &created); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(created.Key["scopes"]) != "[api-keys:read]" || fmt.Sprint(created.Key["rate_limit"]) != "map[limit:100 window_seconds:60]" {
				t.Fatalf("created %v", created.Key)
			}
			id, key := created.Key["id"].(string), created.RawKey
			me := "http://" + addr + "/api/v2/me"
			if got := get(t, me, key); got != 200 {
				t.Fatalf("GET /me: %d", got)
			}
			if !strings.Contains(c.run("keys", "list", "--org", org), id) {
				t.Fatal("keys list lacks the key")
			}
			if strings.Contains(c.run("keys", "list", "--org", org, "--json"), key) {
				t.Fatal("keys list shows the plaintext")
			}

			c.run("keys", "disable", id)
			within(t, "CLI disable", me, key, 401)
			c.run("keys", "enable", id)
			within(t, "CLI enable", me, key, 200)
			c.run("keys", "scopes", id, "--scopes", "")
			within(t, "CLI scope change", "http://"+addr+"/api/v2/keys", key, 403)

			var rolled struct {
				RawKey   string         `json:"raw_key"`
				Previous map[string]any `json:"previous"`
			}
			if err := json.Unmarshal([]byte(c.run("keys", "roll", id, "--grace", "0s", "--json")), &rolled); err != nil {
				t.Fatal(err)
			}
			if rolled.Previous["id"] != id {
				t.Fatalf("roll previous = %v", rolled.Previous)
			}
			within(t, "CLI roll with no grace", me, key, 401)
			if got := get(t, me, rolled.RawKey); got != 200 {
				t.Fatalf("successor: %d", got)
			}
			var list struct{ Keys []map[string]any }
			_ = json.Unmarshal([]byte(c.run("keys", "list", "--org", org, "--json")), &list)
			newID := ""
			for _, k := range list.Keys {
				if k["id"] != id {
					newID = k["id"].(string)
				}
			}
			c.run("keys", "revoke", newID)
			within(t, "CLI revoke", me, rolled.RawKey, 401)

			if out := c.fails("keys", "create", "--org", org, "--name", "x", "--scopes", "nope:read"); !strings.Contains(out, "unknown scope") {
				t.Fatalf("unknown scope error: %s", out)
			}
			if out := c.fails("keys", "revoke", "key_missing"); !strings.Contains(out, "not found") {
				t.Fatalf("unknown key error: %s", out)
			}
			if !strings.HasPrefix(c.run("login-link", "--org", org, "--email", "a@example.com", "--role", "admin"), "http://"+addr+"/auth/login?token=") {
				t.Fatal("login-link printed no URL")
			}
			if st := c.run("db", "migrate", "status"); !migratedRE.MatchString(st) || migratedRE.FindStringSubmatch(st)[1] != migratedRE.FindStringSubmatch(st)[2] {
				t.Fatalf("db migrate status: %s", st)
			}

			if err := serve.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("serve exited with %v: %s", err, stderr.String())
				}
			case <-time.After(15 * time.Second):
				t.Fatal("serve did not stop on SIGTERM")
			}
			if strings.Contains(stderr.String(), key) || strings.Contains(stderr.String(), rolled.RawKey) {
				t.Fatal("a plaintext key reached the host's log")
			}
		})
	}
}

func TestBadConfigFailsClearly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildIndigo(t)
	p := filepath.Join(t.TempDir(), "indigo.toml")
	_ = os.WriteFile(p, []byte("[database]\ndriver = \"mysql\"\n"), 0o600)
	out, err := exec.Command(bin, "serve", "--config", p).CombinedOutput()
	if err == nil || !strings.Contains(string(out), p) || !strings.Contains(string(out), "database.driver") {
		t.Fatalf("bad config: %v\n%s", err, out)
	}
}

func TestParseDuration(t *testing.T) {
	bin := buildIndigo(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "indigo.toml")
	if err := os.WriteFile(cfg, []byte("# defaults only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "INDIGO_DATABASE_URL="+filepath.Join(dir, "x.db"), "INDIGO_CONFIG="+cfg)
	c := cli{t: t, bin: bin, env: env}
	org := strings.TrimSpace(c.run("orgs", "create", "A"))
	var created struct {
		Key struct {
			ExpiresAt time.Time `json:"expires_at"`
		} `json:"key"`
	}
	if err := json.Unmarshal([]byte(c.run("keys", "create", "--org", org, "--name", "k", "--expires-in", "30d", "--json")), &created); err != nil {
		t.Fatal(err)
	}
	if d := time.Until(created.Key.ExpiresAt); d < 29*24*time.Hour || d > 30*24*time.Hour {
		t.Fatalf("--expires-in 30d gave an expiry %v away", d)
	}
	if out := c.fails("keys", "create", "--org", org, "--name", "k", "--expires-in", "soon"); !strings.Contains(out, "--expires-in") {
		t.Fatalf("bad duration: %s", out)
	}
}

// serve refuses to run core-api without a license, except in development
// mode on loopback, and says which at start.
// migratedRE reads `indigo db migrate status`.
var migratedRE = regexp.MustCompile(`schema version (\d+) of (\d+)`)

func TestServeNeedsLicenseOrDev(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildIndigo(t)
	dir := t.TempDir()
	write := func(api string, addr string) string {
		p := filepath.Join(dir, "indigo.toml")
		body := fmt.Sprintf("[server]\naddr = %q\n[database]\nurl = %q\n[api]\n%s\n", addr, filepath.Join(dir, "x.db"), api)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "INDIGO_LICENSE_PUBLIC_KEY="+hex.EncodeToString(pub), "INDIGO_LICENSE=")
	refused := func(cfg string, env []string, want ...string) {
		t.Helper()
		cmd := exec.Command(bin, "serve", "--config", cfg)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("serve started:\n%s", out)
		}
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				t.Errorf("output lacks %q:\n%s", w, out)
			}
		}
	}
	refused(write("enabled = false", "127.0.0.1:0"), env, "core-api is not enabled", "indigo add core-api")
	refused(write("", "127.0.0.1:0"), env, "no license", "--dev")
	refused(write("dev = true", "0.0.0.0:0"), env, "loopback only", "0.0.0.0:0")
	expired, err := license.Sign(priv, license.License{Licensee: "Acme", Modules: []string{"core-api"}, IssuedAt: time.Now().Add(-48 * time.Hour), ExpiresAt: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	refused(write("", "127.0.0.1:0"), append(env, "INDIGO_LICENSE="+expired), "expired")

	valid, err := license.Sign(priv, license.License{Licensee: "Acme", Modules: []string{"core-api"}, IssuedAt: time.Now().Add(-time.Hour), ExpiresAt: time.Now().Add(30 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := write("", "127.0.0.1:0")
	if err := os.WriteFile(filepath.Join(dir, "indigo.license"), []byte(valid+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"licensed", "dev"} {
		if name == "dev" {
			cfg = write("dev = true", "127.0.0.1:0")
		}
		cmd := exec.Command(bin, "serve", "--config", cfg)
		cmd.Env = env
		stdout, _ := cmd.StdoutPipe()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"licensed": "core-api: licensed to Acme until", "dev": "core-api: development mode without a license"}[name]
		found := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(stdout)
			ok := false
			for sc.Scan() {
				if strings.Contains(sc.Text(), want) {
					ok = true
					break
				}
			}
			found <- ok
			_, _ = io.Copy(io.Discard, stdout)
		}()
		select {
		case ok := <-found:
			if !ok {
				t.Errorf("%s: no %q line; stderr:\n%s", name, want, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s: serve did not start:\n%s", name, stderr.String())
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
}
