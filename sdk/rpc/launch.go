package rpc

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
)

// The wires between the host and a module process.
const (
	// WireSocket carries calls on the module's data socket (OpenSocket)
	// and the rest (the handshake, health, lifecycle, hooks, host
	// services) on go-plugin's gRPC connection. Every socket of the
	// module lives in a directory that only the host's user can open;
	// mTLS is off unless asked for.
	WireSocket = "socket"
	// WireGRPC is the previous release's wire: every call on go-plugin's
	// gRPC connection (a shared stream of framed calls), with mTLS.
	WireGRPC = "grpc"
)

// DataSocketName is the data socket's name in the module's socket
// directory.
const DataSocketName = "data.sock"

// ClientSetup is what the host decides about one module process's wire.
type ClientSetup struct {
	Wire string // WireSocket or WireGRPC
	// MTLS turns on mTLS for WireSocket: go-plugin's AutoMTLS on the gRPC
	// connection, and TLS with pinned certificates on the data socket.
	// WireGRPC always has it.
	MTLS bool
}

// Setup fills in cfg, whose Cmd is set, for s. For WireSocket it makes the
// directory (mode 0700) where the module puts its sockets, go-plugin's
// and the data socket, and returns it: the caller passes
// filepath.Join(dir, DataSocketName) to OpenSocket and removes dir once
// the process has exited. The brokered host-services connection is
// multiplexed over go-plugin's own socket, so that the host opens no
// socket outside it.
func (s ClientSetup) Setup(cfg *plugin.ClientConfig) (dir string, err error) {
	cfg.AllowedProtocols = []plugin.Protocol{plugin.ProtocolGRPC}
	cfg.GRPCDialOptions = DialOptions
	switch s.Wire {
	case WireGRPC:
		cfg.AutoMTLS = true
		return "", nil
	case WireSocket:
	default:
		return "", fmt.Errorf("rpc: unknown wire %q (want %s or %s)", s.Wire, WireSocket, WireGRPC)
	}
	if cfg.Cmd == nil {
		return "", errors.New("rpc: ClientSetup needs cfg.Cmd")
	}
	// A host killed without its shutdown (SIGKILL, a crash) leaves its
	// directories behind: the first start after it removes them.
	sweepOnce.Do(func() { sweepSocketDirs(os.TempDir()) })
	// os.MkdirTemp makes it 0700, whatever the umask. The host's pid in
	// the name says whose it is.
	dir, err = os.MkdirTemp("", socketDirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", err
	}
	cfg.AutoMTLS = s.MTLS
	cfg.GRPCBrokerMultiplex = true
	// go-plugin appends the host's environment after Cmd.Env, where an
	// inherited PLUGIN_UNIX_SOCKET_DIR would win: the environment is
	// passed here instead, with the directory last.
	env := cfg.Cmd.Env
	if env == nil {
		env = os.Environ()
	}
	cfg.Cmd.Env = make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, plugin.EnvUnixSocketDir+"=") {
			cfg.Cmd.Env = append(cfg.Cmd.Env, kv)
		}
	}
	cfg.Cmd.Env = append(cfg.Cmd.Env, plugin.EnvUnixSocketDir+"="+dir)
	cfg.SkipHostEnv = true
	return dir, nil
}

// socketDirPrefix starts the name of a module's socket directory, then
// the host's pid, a dash and a random part.
const socketDirPrefix = "indigo-module-"

var sweepOnce sync.Once

// sweepSocketDirs removes, from tmp, the module socket directories of
// hosts that are gone: owned by this user, named for a pid with no
// process, and with no socket in them that takes a connection (a host in
// another pid namespace sharing tmp has a pid this one cannot see, but its
// modules still listen). Any other directory stays.
func sweepSocketDirs(tmp string) {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), socketDirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		dir := filepath.Join(tmp, e.Name())
		if ownedByMe(dir) && !processExists(pid) && !listening(dir) {
			_ = os.RemoveAll(dir)
		}
	}
}

// listening says whether a socket in dir takes a connection.
func listening(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return true // unreadable: leave it alone
	}
	for _, e := range entries {
		if e.Type()&os.ModeSocket == 0 {
			continue
		}
		c, err := net.DialTimeout("unix", filepath.Join(dir, e.Name()), time.Second)
		if err == nil {
			_ = c.Close()
			return true
		}
	}
	return false
}

// DataSocketPath is the data socket's path in a directory Setup made.
func DataSocketPath(dir string) string { return filepath.Join(dir, DataSocketName) }
