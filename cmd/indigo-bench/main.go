// Command indigo-bench measures what Indigo's v2 wrapper costs on top of a
// bare net/http handler. It starts a real host (SQLite in a temporary
// folder, the real request-log queue, the real key cache and limiter) on
// loopback, creates an org and a superkey, records the exact bytes of one
// GET /api/v2/me answer, and serves those same bytes with the same
// Content-Type from a bare net/http server beside it. It then drives both
// with a bounded load from another process, in rounds: each round measures
// bare and v2 back to back, bare first in odd rounds and v2 first in even
// ones. It prints the median throughput and p99 latency of each, and the
// median of the rounds' v2/bare ratios.
//
// The load generator is wrk (-client wrk, the default when wrk is
// installed: one thread, 16 connections, written in C, so it takes little
// of the CPU the servers share with it), or else this binary re-executed
// with the loadgen argument (-client raw or nethttp, 32 connections). The
// first line of the output says which one ran. Host CPU per request is the
// bench process's own CPU (getrusage RUSAGE_SELF: the hosts and bare
// servers run in it, the load generator does not) over the round.
//
// With -module (the default) it also loads two modules in the host and
// measures three more pairs in the same rounds, each against a bare twin
// that replays the host's recorded answer: bare_module and v2_module on
// GET /api/v2/benchmod/hello, which the benchmod module (./benchmod)
// answers from memory, the cost of the wire to a module process (with the
// module process's CPU, from /proc/<pid>/stat); bare_module_16k and
// v2_module_16k on GET /api/v2/benchmod/16k, the same with a 16 KiB body;
// and bare_module_db and v2_module_db on GET /api/v2/projects, which the
// projects module answers from its own database on every call.
//
// The host runs its modules on the default wire, the data socket. With
// -grpc-wire (the default) a second host runs benchmod on the previous
// release's wire (api.module_wire = "grpc"), and v2_module_grpc and
// v2_module_16k_grpc are measured in the same rounds, back to back with
// the first host's pair and against the same bare rounds, so that one run
// compares the two wires: their lines carry _grpc in their names
// (v2_module_grpc_vs_bare_ratio, module_grpc_host_cpu_us, …).
// -module-mtls puts the first host's module sockets on mutual TLS;
// -module-env gives benchmod a [[modules]] env on every host (GOMAXPROCS=1).
//
// It also measures, in the same rounds, GET /api/v2/me on a second host
// configured with Redis ([redis] url; its own SQLite database, nothing
// shared with the first): bare_redis and v2_redis_limited with a key whose
// rate limit Redis counts (at most one round trip per call), and
// bare_redis_unlimited and v2_redis_unlimited with a key without limits,
// which makes no Redis call. The Redis is -redis, or by default a
// redis-server the bench starts on a free loopback port and stops at the
// end; without one installed these pairs are skipped.
//
// With -postgres (by default $INDIGO_BENCH_POSTGRES_URL) it measures
// bare_pg and v2_pg: GET /api/v2/me on a third host on PostgreSQL, in a
// schema the bench creates and drops, with the CPU of that host's
// PostgreSQL backends when the server runs on this machine.
//
// -pairs picks the groups of pairs measured besides v2_me (module,
// module_db, redis, pg; all by default), to keep a run short.
//
//	go run ./cmd/indigo-bench [-rounds 5] [-duration 2s] [-warmup 1s] [-pairs module,module_db,redis,pg] [-grpc-wire=false] [-module-mtls] [-module-env NAME=VALUE,…] [-client wrk|raw|nethttp] [-conns N] [-wrk-threads 1] [-cpuprofile file [-cpuprofile-bare|-cpuprofile-redis|-cpuprofile-pg|-cpuprofile-module [-cpuprofile-grpc]]] [-module-cpuprofile file] [-request-log=false] [-redis redis://host:port/db] [-postgres postgres://…]
//
// The files: options.go has both processes' flags, servers.go the servers
// under test, wires.go the host on the gRPC wire, redis.go the
// Redis-configured host and its Redis,
// postgres.go the PostgreSQL host, rounds.go the parent's rounds and
// measurements, wrk.go the wrk load generator, load.go the Go load
// generator process, report.go what the parent prints.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const (
	envAuth   = "INDIGO_BENCH_AUTH" // Authorization header for the load generator
	envBody   = "INDIGO_BENCH_BODY" // expected response body, base64
	mePath    = "/api/v2/me"
	modPath   = "/api/v2/benchmod/hello" // served by the benchmod module, from memory
	mod16Path = "/api/v2/benchmod/16k"   // the same, with a 16 KiB body
	modDBPath = "/api/v2/projects"       // served by the projects module, from its database

	// The modules, as the host's configuration names them.
	memModule = "benchmod"
	dbModule  = "projects"

	// envModProfile is benchmod's variable for its CPU profile
	// (-module-cpuprofile); benchmod/main.go spells the same name.
	envModProfile = "INDIGO_BENCHMOD_CPUPROFILE"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "loadgen" {
		if err := loadgen(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "indigo-bench loadgen:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "indigo-bench:", err)
		os.Exit(1)
	}
}

// run is the parent process: it starts the servers, measures the rounds,
// optionally profiles one more, and prints the report.
func run(args []string) error {
	o, err := parseOptions(args)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	b := &bench{ctx: ctx, exe: exe, o: o}
	if o.client == "wrk" {
		dir, err := os.MkdirTemp("", "indigo-bench-wrk-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if b.wrk, err = newWrk(o.wrkPath, dir, o.wrkThreads, o.conns); err != nil {
			return err
		}
	}
	printClient(o, b.wrk)

	s, err := startServers(ctx, o)
	if err != nil {
		return err
	}
	defer s.close()
	b.s = s
	printHeader(o, s)

	runs, err := b.rounds()
	if err != nil {
		return err
	}
	if o.cpuprofile != "" {
		if err := profileRound(o.cpuprofile, b.profiledRound); err != nil {
			return err
		}
	}

	b.settle()
	printHostStats("host", s.host)
	printSummary(runs)
	printRedisSummary(runs, s)
	printPostgresSummary(runs, s)
	return nil
}
