package main_test

import (
	"bufio"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core/coretest"
	"github.com/indigo-hq/indigo/db"
	"github.com/indigo-hq/indigo/db/dbtest"
)

// serveBehindProxy writes a config for a PostgreSQL host whose database is
// reached through a proxy the test controls, and returns the serve command.
func serveBehindProxy(t *testing.T, startTimeout string) (*exec.Cmd, *coretest.Proxy) {
	t.Helper()
	bin := buildIndigo(t)
	u, err := url.Parse(dbtest.URL(t, db.Postgres))
	if err != nil {
		t.Fatal(err)
	}
	proxy := coretest.NewProxy(t, u.Host)
	u.Host = proxy.Addr
	dir := t.TempDir()
	cfg := fmt.Sprintf("[server]\naddr = %q\n[database]\ndriver = \"postgres\"\nurl = %q\nstart_timeout = %q\n[api]\ndev = true\n",
		freeAddr(t), u.String(), startTimeout)
	path := filepath.Join(dir, "indigo.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", path)
	cmd.Env = cleanEnv()
	return cmd, proxy
}

// A host that starts while its database refuses connections keeps trying,
// logging each attempt, and comes up once the database does.
func TestServeWaitsForTheDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	serve, proxy := serveBehindProxy(t, "30s")
	proxy.Refuse()
	stdout, _ := serve.StdoutPipe()
	var stderr coretest.SyncBuffer
	serve.Stderr = &stderr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = serve.Process.Kill(); _ = serve.Wait() })
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "Indigo is listening") {
				close(listening)
			}
		}
	}()
	time.Sleep(2 * time.Second)
	if n := strings.Count(stderr.String(), "database unreachable; trying again"); n < 2 {
		t.Fatalf("%d attempts logged in 2 s with the database refusing:\n%s", n, stderr.String())
	}
	select {
	case <-listening:
		t.Fatal("serve said it was listening while its database refused connections")
	default:
	}
	proxy.Forward()
	select {
	case <-listening:
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not come up after the database did:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "database reachable") {
		t.Fatalf("no log line for the database coming back:\n%s", stderr.String())
	}
}

// It gives up after database.start_timeout, saying so.
func TestServeGivesUpOnTheDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	serve, proxy := serveBehindProxy(t, "2s")
	proxy.Refuse()
	var stderr strings.Builder
	serve.Stderr = &stderr
	// wall clock: how long the real process waits
	start := time.Now()
	err := serve.Run()
	took := time.Since(start) // wall clock: the same
	if err == nil || !strings.Contains(stderr.String(), "database.start_timeout 2s") {
		t.Fatalf("serve with the database refusing past start_timeout: %v\n%s", err, stderr.String())
	}
	if took < 1500*time.Millisecond || took > 10*time.Second {
		t.Fatalf("serve gave up after %v, with start_timeout 2s", took)
	}
}
