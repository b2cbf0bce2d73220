package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	out := "Running 2s test @ http://127.0.0.1:1/\n  1 threads and 4 connections\n" +
		`indigo-bench-wrk {"requests":20721,"duration_us":698582,"bytes":2652288,"p50_us":86,"p90_us":938,"p99_us":21876,"max_us":31293,"connect_errors":0,"read_errors":1,"write_errors":0,"status_errors":2,"timeouts":0}` + "\n"
	r, err := parseWrk([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := wrkRun{Requests: 20721, DurationUs: 698582, Bytes: 2652288, P50Us: 86, P90Us: 938, P99Us: 21876, MaxUs: 31293, ReadErrors: 1, StatusErrors: 2}
	if r != want {
		t.Fatalf("parseWrk = %+v, want %+v", r, want)
	}
	if _, err := parseWrk([]byte("Running 2s test\n")); err == nil {
		t.Fatal("no error without the result line")
	}
}

// TestWrkLoad runs wrk against a server that wants the route's
// Authorization header, when wrk is installed (.ci/run installs it).
func TestWrkLoad(t *testing.T) {
	path, err := exec.LookPath("wrk")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("wrk is not installed, and CI=true requires it")
		}
		t.Skip("wrk is not installed")
	}
	body := []byte(`{"ok":true}` + "\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer good" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	w, err := newWrk(path, t.TempDir(), 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	b := &bench{ctx: context.Background(), o: options{warmup: 200 * time.Millisecond, duration: 300 * time.Millisecond}}

	res, cpu, err := w.load(b, "test", addr, route{path: "/", body: body, auth: "Bearer good"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Total <= res.Requests || res.RPS <= 0 || res.P99Ms <= 0 || cpu <= 0 {
		t.Fatalf("result %+v, wrk CPU %s", res, cpu)
	}
	// wrk ran for the duration (and up to its 100 ms stop check, more on a
	// loaded machine), not for the 2 s of its -d.
	if res.Seconds < 0.25 || res.Seconds > 1.5 {
		t.Fatalf("measured for %.3f s, want about 0.3", res.Seconds)
	}
	if _, _, err := w.load(b, "test", addr, route{path: "/", body: body, auth: "Bearer bad"}); err == nil || !strings.Contains(err.Error(), "statuses over 399") {
		t.Fatalf("a 401 on every call gave %v", err)
	}
}
