package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestClientChoice(t *testing.T) {
	// A folder with a fake wrk, and one without.
	withWrk, without := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(withWrk, "wrk"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		args       []string
		client     string
		conns      int
		noWrk      bool
		fails      bool
	}{
		{name: "wrk by default", path: withWrk, client: "wrk", conns: 16},
		{name: "raw without wrk", path: without, client: "raw", conns: 32, noWrk: true},
		{name: "wrk asked, not installed", path: without, args: []string{"-client", "wrk"}, fails: true},
		{name: "raw asked", path: withWrk, args: []string{"-client", "raw"}, client: "raw", conns: 32},
		{name: "nethttp with conns", path: withWrk, args: []string{"-client", "nethttp", "-conns", "8"}, client: "nethttp", conns: 8},
		{name: "wrk with conns", path: withWrk, args: []string{"-conns", "64"}, client: "wrk", conns: 64},
		{name: "unknown client", path: withWrk, args: []string{"-client", "ab"}, fails: true},
		{name: "wrk, warm-up too short", path: withWrk, args: []string{"-warmup", "10ms"}, fails: true},
		{name: "wrk, no warm-up", path: withWrk, args: []string{"-warmup", "0"}, client: "wrk", conns: 16},
		{name: "more threads than conns", path: withWrk, args: []string{"-conns", "2", "-wrk-threads", "3"}, fails: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PATH", tc.path)
			o, err := parseOptions(tc.args)
			if tc.fails {
				if err == nil {
					t.Fatalf("no error; client %s", o.client)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.client != tc.client || o.conns != tc.conns || (o.noWrk != "") != tc.noWrk {
				t.Fatalf("client %s conns %d noWrk %q", o.client, o.conns, o.noWrk)
			}
			if tc.client == "wrk" {
				if want, _ := exec.LookPath("wrk"); o.wrkPath != want {
					t.Fatalf("wrk path %q, want %q", o.wrkPath, want)
				}
			}
		})
	}
}

func TestPairsOption(t *testing.T) {
	for _, tc := range []struct {
		arg   string
		want  []string
		fails bool
	}{
		{arg: "module,module_db,redis,pg", want: []string{"module", "module_db", "redis", "pg"}},
		{arg: "module", want: []string{"module"}},
		{arg: " module , redis ", want: []string{"module", "redis"}},
		{arg: "", want: nil},
		{arg: "modules", fails: true},
	} {
		got, err := parsePairs(tc.arg)
		if tc.fails {
			if err == nil {
				t.Errorf("%q: no error", tc.arg)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("%q: %v, %v", tc.arg, got, err)
			continue
		}
		for _, g := range tc.want {
			if !got[g] {
				t.Errorf("%q: %s missing from %v", tc.arg, g, got)
			}
		}
	}
}
