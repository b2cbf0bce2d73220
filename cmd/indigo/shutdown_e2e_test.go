package main_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procState is the state letter of pid in /proc ("" when it is gone).
func procState(pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return ""
	}
	s := string(b)
	if f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(f) > 0 {
		return f[0]
	}
	return ""
}

// childPIDs lists the live children of pid, from /proc.
func childPIDs(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc")
	}
	var out []int
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // state ppid ...
		if len(f) > 1 && f[1] == strconv.Itoa(pid) && f[0] != "Z" {
			out = append(out, n)
		}
	}
	return out
}

// SIGTERM to `indigo serve` with a module stopped by SIGSTOP: the host
// exits within server.shutdown_timeout, and the module is gone.
func TestServeStopsWithAHungModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildIndigo(t)
	dir := t.TempDir()
	mod := filepath.Join(dir, "testmod")
	if out, err := exec.Command("go", "build", "-o", mod, "../../core/module/testdata/testmod").CombinedOutput(); err != nil {
		t.Fatalf("build testmod: %v\n%s", err, out)
	}
	const shutdownTimeout = 2 * time.Second
	cfgPath := filepath.Join(dir, "indigo.toml")
	cfg := fmt.Sprintf("[server]\naddr = %q\nshutdown_timeout = %q\n[api]\ndev = true\n[[modules]]\nname = \"testmod\"\npath = %q\n",
		freeAddr(t), shutdownTimeout.String(), mod)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	serve := exec.Command(bin, "serve", "--config", cfgPath)
	stdout, _ := serve.StdoutPipe()
	var stderr strings.Builder
	serve.Stderr = &stderr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "Indigo is listening") {
				close(listening)
			}
		}
	}()
	go func() { exited <- serve.Wait() }()
	t.Cleanup(func() {
		if serve.ProcessState == nil {
			_ = serve.Process.Kill()
			<-exited
		}
	})
	select {
	case <-listening:
	case err := <-exited:
		t.Fatalf("serve exited early: %v\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not start: %s", stderr.String())
	}
	kids := childPIDs(t, serve.Process.Pid)
	if len(kids) != 1 {
		t.Fatalf("serve has children %v, want the one module", kids)
	}
	modPID := kids[0]
	if err := syscall.Kill(modPID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); procState(modPID) != "T"; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("module %d not stopped 5s after SIGSTOP", modPID)
		}
	}
	begin := time.Now()
	if err := serve.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(shutdownTimeout + 10*time.Second):
		t.Fatalf("serve still running %v after SIGTERM with shutdown_timeout = %v:\n%s", time.Since(begin), shutdownTimeout, stderr.String())
	}
	// A second of slack for the process itself to start and end.
	if d := time.Since(begin); d > shutdownTimeout+time.Second {
		t.Fatalf("serve took %v to exit with shutdown_timeout = %v", d, shutdownTimeout)
	}
	if !strings.Contains(stderr.String(), "module did not stop in time; killing it") {
		t.Errorf("the log does not say the module was killed:\n%s", stderr.String())
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(modPID))); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("module process %d outlived the host", modPID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
