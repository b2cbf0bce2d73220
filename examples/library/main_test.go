package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The example builds and runs as a real process: keys are created for the
// org its resolver names, a member may not manage keys, and its meter
// refuses calls past the allowance with 402.
func TestLibraryModeExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the example")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "library")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-data", filepath.Join(dir, "data"), "-allowance", "3")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("the example did not stop cleanly: %v\n%s", err, stderr.String())
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("the example did not stop on SIGTERM")
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "library host listening on "); ok {
				lines <- u
			}
		}
	}()
	var base string
	select {
	case base = <-lines:
	case <-time.After(30 * time.Second):
		t.Fatalf("the example did not start:\n%s", stderr.String())
	}

	call := func(method, path, user, key, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if user != "" {
			req.Header.Set("X-Demo-User", user)
		}
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out map[string]any
		_ = json.Unmarshal(b, &out)
		return resp.StatusCode, out
	}

	if s, _ := call("GET", "/api/v2/keys", "", "", ""); s != 401 {
		t.Fatalf("nobody signed in: %d", s)
	}
	if s, _ := call("GET", "/api/v2/keys", "bob", "", ""); s != 403 {
		t.Fatalf("a member lists keys: %d", s)
	}
	s, created := call("POST", "/api/v2/keys", "alice", "", `{"name":"ci","scopes":null}`)
	if s != 201 {
		t.Fatalf("alice creates a key: %d %v", s, created)
	}
	raw := created["raw_key"].(string)
	if org := created["key"].(map[string]any)["org_id"]; org != "org-demo" {
		t.Fatalf("the key belongs to %v, want the resolver's org", org)
	}
	for i := range 3 {
		if s, me := call("GET", "/api/v2/me", "", raw, ""); s != 200 || me["org_id"] != "org-demo" {
			t.Fatalf("metered call %d: %d %v", i+1, s, me)
		}
	}
	if s, body := call("GET", "/api/v2/me", "", raw, ""); s != 402 {
		t.Fatalf("past the allowance: %d %v", s, body)
	}
	// Managing keys stays free past the allowance.
	if s, _ := call("GET", "/api/v2/keys", "", raw, ""); s != 200 {
		t.Fatalf("listing keys past the allowance: %d", s)
	}
}
