package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// envPostgres names the PostgreSQL server of the v2_pg pair (-postgres).
const envPostgres = "INDIGO_BENCH_POSTGRES_URL"

// options are the parent process's flags.
type options struct {
	rounds        int
	duration      time.Duration
	warmup        time.Duration
	conns         int
	client        string // wrk, raw or nethttp, once parsed
	wrkPath       string // wrk's path with -client wrk
	wrkThreads    int
	noWrk         string // why the client is not wrk, when it was not asked for
	cpuprofile    string
	modProfile    string
	requestLog    bool
	module        bool
	profileModule bool
	profileBare   bool
	profileRedis  bool
	profilePG     bool
	profileGRPC   bool
	redis         string            // Redis URL for the v2_redis_* pairs; "" starts a redis-server of the bench's own
	pairs         map[string]bool   // the pair groups measured besides v2_me (-pairs)
	grpcWire      bool              // also measure benchmod's routes on a host on the gRPC wire
	moduleMTLS    bool              // the first host's module sockets on mutual TLS
	moduleEnv     map[string]string // benchmod's [[modules]] env, on every host
	postgres      string            // PostgreSQL URL for the v2_pg pair; "" skips it
}

func parseOptions(args []string) (options, error) {
	fs := flag.NewFlagSet("indigo-bench", flag.ContinueOnError)
	var o options
	var err error
	fs.IntVar(&o.rounds, "rounds", 5, "rounds; each measures bare and v2 back to back, in alternating order")
	fs.DurationVar(&o.duration, "duration", 2*time.Second, "measured time per target and round")
	fs.BoolVar(&o.profileModule, "cpuprofile-module", false, "profile a v2_module round (the benchmod module's route) instead of a v2_me one")
	fs.BoolVar(&o.profilePG, "cpuprofile-pg", false, "profile a v2_pg round (GET /api/v2/me on the PostgreSQL host) instead of a v2_me one")
	fs.BoolVar(&o.profileRedis, "cpuprofile-redis", false, "profile a v2_redis_limited round (a rate-limited key counted in Redis) instead of a v2_me one")
	fs.BoolVar(&o.profileGRPC, "cpuprofile-grpc", false, "with -cpuprofile-module, profile the round on the host on the gRPC wire")
	fs.BoolVar(&o.profileBare, "cpuprofile-bare", false, "profile a bare round instead of a v2_me one (to compare the two profiles)")
	fs.BoolVar(&o.module, "module", true, "also measure a module route answered from memory (benchmod, built from ./cmd/indigo-bench/benchmod) and one that reads the module's database (projects, built from ./modules/projects)")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "warm-up before each round's measurement")
	fs.IntVar(&o.conns, "conns", 0, "concurrent keep-alive connections (0: 16 with wrk, 32 with the Go clients)")
	fs.StringVar(&o.client, "client", "", "load generator: wrk (the default when it is installed), raw (the Go client: HTTP/1.1 over TCP, the default without wrk) or nethttp (a Go client on net/http's Transport)")
	fs.IntVar(&o.wrkThreads, "wrk-threads", 1, "wrk's threads (-t)")
	fs.StringVar(&o.modProfile, "module-cpuprofile", "", "write the benchmod module process's own CPU profile here, covering every round (it is written when the host shuts the module down)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "after the measured rounds, run one extra v2 round and write the host's CPU profile of it here")
	fs.StringVar(&o.redis, "redis", "", "Redis for the v2_redis_* pairs, as redis://host:port/db (empty: start a redis-server of the bench's own on a free loopback port, and skip those pairs if none is installed)")
	fs.StringVar(&o.postgres, "postgres", os.Getenv(envPostgres), "PostgreSQL for the v2_pg pair, as postgres://…; the bench adds a schema of its own there and drops it at the end (default $"+envPostgres+"; empty: not measured)")
	pairs := fs.String("pairs", strings.Join(pairGroups, ","), "the pairs measured besides v2_me, a comma-separated subset of "+strings.Join(pairGroups, ",")+" (module: benchmod's routes, small and 16 KiB; module_db: the projects module's; pg only with -postgres)")
	fs.BoolVar(&o.grpcWire, "grpc-wire", true, "with the module pairs, also measure benchmod's routes on a second host on the previous release's wire (api.module_wire = \"grpc\"), against the same bare twins")
	fs.BoolVar(&o.moduleMTLS, "module-mtls", false, "run the first host's module sockets on mutual TLS (api.module_mtls), to measure what it costs")
	modEnv := fs.String("module-env", "", "benchmod's [[modules]] env on every host, as NAME=VALUE,… (GOMAXPROCS=1: the module on one core)")
	fs.BoolVar(&o.requestLog, "request-log", true, "queue v2 request logs as the host does (false: diagnosis only, shows the wrapper without the log writer)")
	if err = fs.Parse(args); err != nil {
		return o, err
	}
	if err := o.chooseClient(); err != nil {
		return o, err
	}
	if o.pairs, err = parsePairs(*pairs); err != nil {
		return o, err
	}
	if o.moduleEnv, err = parseModuleEnv(*modEnv); err != nil {
		return o, err
	}
	return o, o.validate()
}

// pairGroups are the groups of pairs that -pairs selects from.
var pairGroups = []string{"module", "module_db", "redis", "pg"}

// parsePairs reads -pairs: "" measures v2_me alone.
func parsePairs(list string) (map[string]bool, error) {
	out := map[string]bool{}
	for g := range strings.SplitSeq(list, ",") {
		if g = strings.TrimSpace(g); g == "" {
			continue
		}
		if !slices.Contains(pairGroups, g) {
			return nil, fmt.Errorf("-pairs: unknown group %q (want a subset of %s)", g, strings.Join(pairGroups, ","))
		}
		out[g] = true
	}
	return out, nil
}

// parseModuleEnv reads -module-env.
func parseModuleEnv(list string) (map[string]string, error) {
	if list == "" {
		return nil, nil
	}
	out := map[string]string{}
	for kv := range strings.SplitSeq(list, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("-module-env: %q is not NAME=VALUE", kv)
		}
		out[k] = v
	}
	return out, nil
}

// chooseClient settles -client and -conns: wrk when it is installed and
// no client was named, else the raw Go client.
func (o *options) chooseClient() error {
	switch o.client {
	case "", "wrk":
		path, err := exec.LookPath("wrk")
		switch {
		case err == nil:
			o.client, o.wrkPath = "wrk", path
		case o.client == "wrk":
			return fmt.Errorf("-client wrk: %w (Debian: apt-get install wrk)", err)
		default:
			o.client, o.noWrk = "raw", "wrk is not installed"
		}
	}
	if o.conns == 0 {
		o.conns = 32
		if o.client == "wrk" {
			o.conns = 16
		}
	}
	return nil
}

func (o options) validate() error {
	switch {
	case o.rounds < 1:
		return errors.New("-rounds must be at least 1")
	case o.duration <= 0 || o.duration > 10*time.Minute:
		return errors.New("-duration must be in (0, 10m]")
	case o.warmup < 0 || o.warmup > time.Minute:
		return errors.New("-warmup must be in [0, 1m]")
	case o.conns < 1 || o.conns > 1024:
		return errors.New("-conns must be in [1, 1024]")
	case o.client != "wrk" && o.client != "raw" && o.client != "nethttp":
		return errors.New("-client must be wrk, raw or nethttp")
	case o.client == "wrk" && (o.wrkThreads < 1 || o.wrkThreads > o.conns):
		return errors.New("-wrk-threads must be in [1, -conns]")
	case o.client == "wrk" && (o.duration < wrkMinRun || (o.warmup > 0 && o.warmup < wrkMinRun)):
		// wrk is stopped by a signal at the end of a run, which it must
		// have had the time to catch.
		return fmt.Errorf("with wrk, -duration and a -warmup other than 0 must be at least %s", wrkMinRun)
	}
	if o.postgres != "" {
		if u, err := url.Parse(o.postgres); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return fmt.Errorf("-postgres (or $%s) must be a postgres:// URL", envPostgres)
		}
	}
	if o.redis != "" {
		// What the host's configuration accepts ([redis] url).
		if u, err := url.Parse(o.redis); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			return fmt.Errorf("-redis must be a redis:// or rediss:// URL, got %q", o.redis)
		}
	}
	return nil
}

// loadgenOptions are the load generator process's flags, which the parent
// passes with args.
type loadgenOptions struct {
	addr     string // host:port on loopback
	path     string
	conns    int
	duration time.Duration
	warmup   time.Duration
	client   string // raw or nethttp
}

func (lo loadgenOptions) args() []string {
	return []string{
		"-addr", lo.addr, "-path", lo.path, "-conns", strconv.Itoa(lo.conns),
		"-duration", lo.duration.String(), "-warmup", lo.warmup.String(), "-client", lo.client,
	}
}

func parseLoadgenOptions(args []string) (loadgenOptions, error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	var lo loadgenOptions
	fs.StringVar(&lo.addr, "addr", "", "host:port on loopback")
	fs.StringVar(&lo.path, "path", mePath, "request path")
	fs.IntVar(&lo.conns, "conns", 32, "concurrent keep-alive connections")
	fs.DurationVar(&lo.duration, "duration", 3*time.Second, "measured time")
	fs.DurationVar(&lo.warmup, "warmup", time.Second, "warm-up before measuring")
	fs.StringVar(&lo.client, "client", "raw", "raw or nethttp")
	if err := fs.Parse(args); err != nil {
		return lo, err
	}
	host, _, err := net.SplitHostPort(lo.addr)
	if err != nil {
		return lo, fmt.Errorf("-addr: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return lo, fmt.Errorf("-addr %q is not a loopback address; refusing to generate load", lo.addr)
	}
	if lo.conns < 1 || lo.conns > 1024 || lo.duration <= 0 || lo.duration > 10*time.Minute || lo.warmup < 0 || lo.warmup > time.Minute {
		return lo, errors.New("conns, duration or warmup out of bounds")
	}
	return lo, nil
}
