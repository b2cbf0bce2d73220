package coretest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisServer is a real redis-server on a loopback port, for one test.
type RedisServer struct {
	t    testing.TB
	Addr string
	URL  string
	dir  string
	cmd  *exec.Cmd
}

// Redis starts redis-server (Debian's redis-server package) on a free
// loopback port, without persistence, and stops it when the test ends.
// Without the binary the test skips, except under CI=true, where it fails.
func Redis(t testing.TB) *RedisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not installed, and CI=true requires the Redis tests")
		}
		t.Skip("redis-server is not installed; skipping Redis")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	s := &RedisServer{t: t, Addr: addr, URL: "redis://" + addr + "/0", dir: t.TempDir()}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start starts the server (again, after Stop), empty, and waits until it
// answers.
func (s *RedisServer) Start() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	s.cmd = exec.Command("redis-server", "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--protected-mode", "no")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	// wall clock: how long to wait for a real process
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c.Ping(context.Background()).Err() == nil {
			return
		}
		if time.Now().After(deadline) { // wall clock: the same wait
			s.t.Fatalf("redis-server on %s did not answer", s.Addr)
		}
	}
}

// Stop kills the server; its data is gone (no persistence).
func (s *RedisServer) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Process.Signal(syscall.SIGCONT) // a paused one dies only when it runs
	_, _ = s.cmd.Process.Wait()
	s.cmd = nil
}

// Pause freezes the server (SIGSTOP), as a network fault would: it keeps
// its data and its connections, and answers nothing until Resume.
func (s *RedisServer) Pause() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGSTOP)
	}
}

// Resume undoes Pause.
func (s *RedisServer) Resume() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
	}
}

// Client is a client of the server, closed at cleanup.
func (s *RedisServer) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}
