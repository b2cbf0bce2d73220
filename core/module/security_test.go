package module_test

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/sdk/rpc"
)

// envDial makes the test binary, run as another user by
// TestModuleSocketsRefuseOtherUsers, dial each of these socket paths
// (comma-separated) instead of running tests, and print one line per path:
// "ok" or the error.
const envDial = "INDIGO_TEST_DIAL_AS_OTHER_USER"

// dialAndReport is that mode; TestMain runs it first.
func dialAndReport(paths string) {
	for p := range strings.SplitSeq(paths, ",") {
		c, err := net.DialTimeout("unix", p, 5*time.Second)
		if err == nil {
			_ = c.Close()
			os.Stdout.WriteString(p + " ok\n")
			continue
		}
		os.Stdout.WriteString(p + " " + err.Error() + "\n")
	}
}

// On the socket wire (mTLS off) only the host's user reaches a module: all
// of its sockets (go-plugin's, the data socket; the broker's connection
// runs inside go-plugin's) are in one directory of mode 0700 that the host
// made, and no socket of the host or the module is elsewhere. As root, a
// process of another user (nobody) tries each socket and is refused,
// while it can reach a socket left open to all (so the refusal is the
// directory's doing, not the harness's).
func TestModuleSocketsRefuseOtherUsers(t *testing.T) {
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		t.Skip("no /proc")
	}
	e := start(t, withModules(t, 5*time.Second, modSpec{"testmod", "./core/module/testdata/testmod", ""}),
		wire(rpc.WireSocket))
	pid := findModule(t, e, "testmod").PID()

	dir := moduleEnv(t, pid, "PLUGIN_UNIX_SOCKET_DIR")
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 || fi.Sys().(*syscall.Stat_t).Uid != uint32(os.Getuid()) {
		t.Fatalf("socket directory %s: mode %v, owner %d; want 0700 and this user", dir, fi.Mode().Perm(), fi.Sys().(*syscall.Stat_t).Uid)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var socks []string
	for _, en := range entries {
		if en.Type()&os.ModeSocket != 0 {
			socks = append(socks, filepath.Join(dir, en.Name()))
		}
	}
	if len(socks) != 2 || !contains(socks, rpc.DataSocketPath(dir)) {
		t.Fatalf("sockets in %s: %v; want go-plugin's and %s", dir, socks, rpc.DataSocketName)
	}
	for _, p := range []int{os.Getpid(), pid} {
		for _, path := range boundUnixSockets(t, p) {
			if filepath.Dir(path) != dir {
				t.Errorf("process %d has a socket at %s, outside the module's directory %s", p, path, dir)
			}
		}
	}

	if os.Getuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs the tests as root, so that a process of another user tries the sockets")
		}
		t.Skip("not root: cannot run a process as another user to try the sockets")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)

	// The control: a socket anyone may open.
	open, err := os.MkdirTemp("", "indigo-open-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(open) })
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	control := filepath.Join(open, "open.sock")
	ln, err := net.Listen("unix", control)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	if err := os.Chmod(control, 0o777); err != nil {
		t.Fatal(err)
	}

	// The test binary, where nobody can run it (go test's folders are 0700).
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(open, "dialer")
	if err := copyFile(self, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Dir = open
	cmd.Env = []string{envDial + "=" + strings.Join(append(socks, control), ",")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dialer as nobody: %v\n%s", err, out)
	}
	t.Logf("dialled as nobody (uid %d):\n%s", uid, out)
	got := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		path, result, _ := strings.Cut(sc.Text(), " ")
		got[path] = result
	}
	if got[control] != "ok" {
		t.Fatalf("nobody could not reach the open control socket (%q): the harness proves nothing\n%s", got[control], out)
	}
	for _, s := range socks {
		if !strings.Contains(got[s], "permission denied") {
			t.Errorf("nobody dialling %s: %q; want permission denied", s, got[s])
		}
	}
	// The host still serves.
	_, raw := e.Scoped(e.Org("A"), "testmod:read")
	if r := e.Do("GET", "/api/v2/testmod/ping", bearer(raw), nil); r.Status != 200 {
		t.Fatalf("ping: %d %s", r.Status, r.Body)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// moduleEnv reads one variable of a process's environment.
func moduleEnv(t *testing.T, pid int, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
	if err != nil {
		t.Fatal(err)
	}
	for kv := range strings.SplitSeq(string(b), "\x00") {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	t.Fatalf("process %d has no %s", pid, name)
	return ""
}

// boundUnixSockets lists the paths of the Unix sockets that process pid
// holds and that have one (listening sockets, and the host's end of none:
// a client's end has no path).
func boundUnixSockets(t *testing.T, pid int) []string {
	t.Helper()
	fds, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "fd", fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	b, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for line := range strings.Lines(string(b)) {
		// Num RefCount Protocol Flags Type St Inode Path
		f := strings.Fields(line)
		if len(f) >= 8 && inodes[f[6]] && strings.HasPrefix(f[7], "/") {
			paths = append(paths, f[7])
		}
	}
	return paths
}

func copyFile(from, to string, mode os.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
