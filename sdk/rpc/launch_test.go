package rpc

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/hashicorp/go-plugin"
)

// The socket directories of a host that is gone are removed; those of a
// live host, of an older build (no pid in the name) or not ours stay.
func TestSweepSocketDirs(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no pids to check")
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	live := exec.Command("sleep", "60")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = live.Process.Kill(); _ = live.Wait() })
	tmp := t.TempDir()
	mk := func(name string) string {
		dir := filepath.Join(tmp, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, DataSocketName), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	goneDir := mk(fmt.Sprintf("%s%d-123", socketDirPrefix, gone.Process.Pid))
	// A gone host's directory with a socket that nobody listens on any
	// more, as a killed module leaves it.
	deadSock := mk(fmt.Sprintf("%s%d-124", socketDirPrefix, gone.Process.Pid))
	ln, err := net.Listen("unix", filepath.Join(deadSock, "plugin.sock"))
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = ln.Close()
	// A pid this host cannot see (another pid namespace) whose module
	// still listens.
	listened := mk(fmt.Sprintf("%s%d-125", socketDirPrefix, gone.Process.Pid))
	ln, err = net.Listen("unix", filepath.Join(listened, "plugin.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	kept := []string{
		listened,
		mk(fmt.Sprintf("%s%d-456", socketDirPrefix, live.Process.Pid)),
		mk(fmt.Sprintf("%s%d-789", socketDirPrefix, os.Getpid())),
		mk(socketDirPrefix + "2718281828"),
		mk("indigo-other-1-2"),
	}
	sweepSocketDirs(tmp)
	for _, dir := range []string{goneDir, deadSock} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("the gone host's directory %s is still there (%v)", filepath.Base(dir), err)
		}
	}
	for _, dir := range kept {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("%s was removed: %v", filepath.Base(dir), err)
		}
	}
}

// Setup names the directory for this host's pid, so that a later host can
// tell whose it is.
func TestSocketDirNamesTheHost(t *testing.T) {
	dir, err := ClientSetup{Wire: WireSocket}.Setup(&plugin.ClientConfig{Cmd: exec.Command("true")})
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	want := fmt.Sprintf("%s%d-", socketDirPrefix, os.Getpid())
	if base := filepath.Base(dir); len(base) <= len(want) || base[:len(want)] != want {
		t.Fatalf("socket directory %q, want it to start with %q", base, want)
	}
}
