package main

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/indigo-hq/indigo/core"
)

// printClient prints the first line: which load generator runs, before
// the servers start (they print their own errors).
func printClient(o options, w *wrk) {
	switch {
	case w != nil:
		fmt.Printf("indigo-bench: client=wrk (%s, %s) threads=%d conns=%d\n", w.version, w.path, w.threads, o.conns)
	case o.noWrk != "":
		fmt.Printf("indigo-bench: client=%s (the Go load generator: %s) conns=%d\n", o.client, o.noWrk, o.conns)
	default:
		fmt.Printf("indigo-bench: client=%s (the Go load generator) conns=%d\n", o.client, o.conns)
	}
}

func printHeader(o options, s *servers) {
	fmt.Printf("indigo-bench: %s %s/%s GOMAXPROCS=%d NumCPU=%d client=%s conns=%d warmup=%s duration=%s rounds=%d request_log=%t\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.NumCPU(),
		o.client, o.conns, o.warmup, o.duration, o.rounds, o.requestLog)
	if o.module {
		wires := "module wire: socket (mtls=" + strconv.FormatBool(o.moduleMTLS) + ")"
		if len(o.moduleEnv) > 0 {
			wires += fmt.Sprintf("; benchmod's env %v", o.moduleEnv)
		}
		if s.grpc != nil {
			wires += "; the *_grpc pairs on a second host on the grpc wire (mTLS), against the same bare rounds"
		}
		fmt.Printf("indigo-bench: %s\n", wires)
	}
	fmt.Printf("indigo-bench: host http://%s%s, bare http://%s%s, body %d bytes, Content-Type %q\n",
		s.host.Addr(), mePath, s.bareAddr, mePath, len(s.me.body), s.ctype)
	if o.module {
		fmt.Printf("indigo-bench: module routes %s (%s, from memory) body %d bytes, %s (%s, from memory) body %d bytes, %s (%s, from its database) body %d bytes\n",
			s.mod.path, memModule, len(s.mod.body), s.mod16k.path, memModule, len(s.mod16k.body), s.modDB.path, dbModule, len(s.modDB.body))
	}
	if rs := s.redis; rs != nil {
		from := "-redis"
		if rs.own {
			from = "started by the bench"
		}
		fmt.Printf("indigo-bench: redis %s (%s); Redis-configured host http://%s%s, key limit %d per %d s, body %d bytes; key without limits, body %d bytes; bare http://%s and http://%s\n",
			rs.url, from, rs.host.Addr(), mePath, benchRateLimit.Limit, benchRateLimit.WindowSeconds, len(rs.limited.body), len(rs.unlimited.body), rs.bareLimited, rs.bareUnlimited)
	}
	if ps := s.pg; ps != nil {
		fmt.Printf("indigo-bench: postgres %s, schema %s (dropped at the end); PostgreSQL host http://%s%s, body %d bytes; bare http://%s\n",
			ps.server, ps.schema, ps.host.Addr(), mePath, len(ps.me.body), ps.bareAddr)
	}
}

func printRound(i int, r roundStats) {
	fmt.Printf("round %d %-5s: rps=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f host_cpu_us/req=%.2f loadgen_cpu_us/req=%.2f host_allocs/req=%.1f host_bytes/req=%.0f gcs=%d idle=%.1f%%\n",
		i, r.kind, r.res.RPS, r.res.P50Ms, r.res.P90Ms, r.res.P99Ms, r.res.MaxMs, r.serverCPUus, r.loadgenCPUus, r.allocsPerReq, r.bytesPerReq, r.gcs, r.idlePct)
}

func printProfiled(r roundStats, path string) {
	fmt.Printf("profiled   %-5s: rps=%.0f p99_ms=%.3f (not counted) -> %s\n", r.kind, r.res.RPS, r.res.P99Ms, path)
}

// printHostStats prints a host's request-log and key-cache counters,
// under the name label.
func printHostStats(label string, host *core.Host) {
	hits, misses := host.Keys.CacheStats()
	fmt.Printf("%s: request_log written=%d dropped=%d queue_depth=%d, key cache hits=%d misses=%d\n",
		label, host.Logs.Written(), host.Logs.Dropped(), host.Logs.Depth(), hits, misses)
}

// printSummary prints the medians over the rounds. Scripts parse its
// `name: value` lines: keep their names, units and order.
func printSummary(r runs) {
	fmt.Printf("median host CPU per request: bare %.2f µs, v2_me %.2f µs (+%.2f µs); heap allocs per request: bare %.1f, v2_me %.1f\n",
		medianOf(r.bare, cpuOf), medianOf(r.v2, cpuOf), medianOf(r.v2, cpuOf)-medianOf(r.bare, cpuOf), medianOf(r.bare, allocsOf), medianOf(r.v2, allocsOf))

	bareRPS, v2RPS := medianOf(r.bare, rpsOf), medianOf(r.v2, rpsOf)
	bareP99, v2P99 := medianOf(r.bare, p99Of), medianOf(r.v2, p99Of)
	fmt.Printf("round ratios v2_me/bare: %s\n", roundRatios(r.v2, r.bare))
	fmt.Printf("bare_rps: %.0f\n", bareRPS)
	fmt.Printf("v2_me_rps: %.0f\n", v2RPS)
	fmt.Printf("v2_vs_bare_ratio: %.3f\n", pairedRatio(r.v2, r.bare))
	fmt.Printf("v2_me_p99_ms: %.3f\n", v2P99)
	fmt.Printf("bare_p99_ms: %.3f\n", bareP99)
	fmt.Printf("v2_p99_overhead_ms: %.3f\n", v2P99-bareP99)
	if len(r.v2Mod) > 0 {
		// The wire alone (benchmod answers from memory), then the wire
		// and the module's database read (projects).
		printModuleSummary("bare_module", "v2_module", r.bareMod, r.v2Mod)
		// Per request of the module route from memory: the host's CPU,
		// the module process's, and the p99 over its bare twin's.
		printModuleCPU("module", r.bareMod, r.v2Mod)
	}
	if len(r.v2ModGRPC) > 0 {
		// The same on the previous release's wire, against the same bare
		// rounds.
		printModuleSummary("bare_module", "v2_module_grpc", r.bareMod, r.v2ModGRPC)
		printModuleCPU("module_grpc", r.bareMod, r.v2ModGRPC)
	}
	if len(r.v2ModDB) > 0 {
		printModuleSummary("bare_module_db", "v2_module_db", r.bareModDB, r.v2ModDB)
	}
	if len(r.v2Mod16) > 0 {
		// From memory again, with a 16 KiB body.
		printModuleSummary("bare_module_16k", "v2_module_16k", r.bareMod16, r.v2Mod16)
		printModuleCPU("module_16k", r.bareMod16, r.v2Mod16)
	}
	if len(r.v2Mod16GRPC) > 0 {
		printModuleSummary("bare_module_16k", "v2_module_16k_grpc", r.bareMod16, r.v2Mod16GRPC)
		printModuleCPU("module_16k_grpc", r.bareMod16, r.v2Mod16GRPC)
	}
}

// printModuleCPU prints a module route's medians per request under
// prefix: the host's CPU, the module process's, and the p99 over its bare
// twin's.
func printModuleCPU(prefix string, bare, v2 []roundStats) {
	fmt.Printf("%s_host_cpu_us: %.2f\n", prefix, medianOf(v2, cpuOf))
	fmt.Printf("%s_child_cpu_us: %.2f\n", prefix, medianOf(v2, moduleCPUOf))
	fmt.Printf("%s_p99_overhead_ms: %.3f\n", prefix, medianOf(v2, p99Of)-medianOf(bare, p99Of))
}

// printModuleSummary prints the medians of one module route's rounds,
// under its pair's kinds. Its bare twin serves the module's own bytes.
func printModuleSummary(bareKind, v2Kind string, bare, v2 []roundStats) {
	fmt.Printf("round ratios %s/%s: %s\n", v2Kind, bareKind, roundRatios(v2, bare))
	fmt.Printf("%s_rps: %.0f\n", v2Kind, medianOf(v2, rpsOf))
	fmt.Printf("%s_vs_bare_ratio: %.3f\n", v2Kind, pairedRatio(v2, bare))
	fmt.Printf("%s_p99_ms: %.3f\n", v2Kind, medianOf(v2, p99Of))
	fmt.Printf("%s_rps: %.0f\n", bareKind, medianOf(bare, rpsOf))
	fmt.Printf("median CPU per request: %s %.2f µs; %s host %.2f µs + module process %.2f µs\n",
		bareKind, medianOf(bare, cpuOf), v2Kind, medianOf(v2, cpuOf), medianOf(v2, moduleCPUOf))
}

// printRedisSummary prints the medians of the Redis-configured host's
// rounds, after the other lines, or why there are none. Each pair's bare
// twin serves its key's own GET /api/v2/me bytes.
func printRedisSummary(r runs, s *servers) {
	if s.redis == nil {
		fmt.Printf("redis: not measured (%s)\n", s.noRedis)
		return
	}
	printRedisPair("bare_redis", "v2_redis_limited", r.bareRedis, r.v2RedisLimited)
	// A key without limits makes no Redis call: its ratio should be that
	// of v2_me.
	printRedisPair("bare_redis_unlimited", "v2_redis_unlimited", r.bareRedisUnl, r.v2RedisUnlimited)
	var fallbacks uint64
	for _, v := range r.v2RedisLimited {
		fallbacks += v.redisFallbacks
	}
	fmt.Printf("median Redis per request: v2_redis_limited %.3f round trips, redis-server CPU %.2f µs, %d calls fell back (rounds kept); v2_redis_unlimited %.3f round trips\n",
		medianOf(r.v2RedisLimited, redisCallsOf), medianOf(r.v2RedisLimited, redisCPUOf), fallbacks, medianOf(r.v2RedisUnlimited, redisCallsOf))
	printHostStats("redis host", s.redis.host)
}

// printRedisPair prints the medians of a Redis-configured host's pair.
func printRedisPair(bareKind, v2Kind string, bare, v2 []roundStats) {
	fmt.Printf("round ratios %s/%s: %s\n", v2Kind, bareKind, roundRatios(v2, bare))
	fmt.Printf("%s_rps: %.0f\n", v2Kind, medianOf(v2, rpsOf))
	fmt.Printf("%s_vs_bare_ratio: %.3f\n", v2Kind, pairedRatio(v2, bare))
	fmt.Printf("%s_p99_ms: %.3f\n", v2Kind, medianOf(v2, p99Of))
	fmt.Printf("%s_rps: %.0f\n", bareKind, medianOf(bare, rpsOf))
	fmt.Printf("median host CPU per request: %s %.2f µs, %s %.2f µs (+%.2f µs); heap allocs per request: %s %.1f, %s %.1f\n",
		bareKind, medianOf(bare, cpuOf), v2Kind, medianOf(v2, cpuOf), medianOf(v2, cpuOf)-medianOf(bare, cpuOf),
		bareKind, medianOf(bare, allocsOf), v2Kind, medianOf(v2, allocsOf))
}

// printPostgresSummary prints the medians of the PostgreSQL host's rounds,
// after the other lines, or why there are none.
func printPostgresSummary(r runs, s *servers) {
	if s.pg == nil {
		fmt.Printf("postgres: not measured (%s)\n", s.noPG)
		return
	}
	fmt.Printf("round ratios v2_pg/bare_pg: %s\n", roundRatios(r.v2PG, r.barePG))
	fmt.Printf("v2_pg_rps: %.0f\n", medianOf(r.v2PG, rpsOf))
	fmt.Printf("v2_pg_vs_bare_ratio: %.3f\n", pairedRatio(r.v2PG, r.barePG))
	fmt.Printf("v2_pg_p99_ms: %.3f\n", medianOf(r.v2PG, p99Of))
	fmt.Printf("bare_pg_rps: %.0f\n", medianOf(r.barePG, rpsOf))
	fmt.Printf("v2_pg_p99_overhead_ms: %.3f\n", medianOf(r.v2PG, p99Of)-medianOf(r.barePG, p99Of))
	pg := "n/a (the server's processes are not readable here)"
	if !slices.ContainsFunc(r.v2PG, func(v roundStats) bool { return !v.pgCPUKnown }) {
		pg = fmt.Sprintf("%.2f µs", medianOf(r.v2PG, pgCPUOf))
	}
	fmt.Printf("median CPU per request: bare_pg %.2f µs; v2_pg host %.2f µs (+%.2f µs) + its PostgreSQL backends %s; heap allocs per request: bare_pg %.1f, v2_pg %.1f\n",
		medianOf(r.barePG, cpuOf), medianOf(r.v2PG, cpuOf), medianOf(r.v2PG, cpuOf)-medianOf(r.barePG, cpuOf), pg,
		medianOf(r.barePG, allocsOf), medianOf(r.v2PG, allocsOf))
	printHostStats("postgres host", s.pg.host)
}

func rpsOf(r roundStats) float64        { return r.res.RPS }
func p99Of(r roundStats) float64        { return r.res.P99Ms }
func cpuOf(r roundStats) float64        { return r.serverCPUus }
func allocsOf(r roundStats) float64     { return r.allocsPerReq }
func moduleCPUOf(r roundStats) float64  { return r.moduleCPUus }
func redisCallsOf(r roundStats) float64 { return r.redisCalls }
func redisCPUOf(r roundStats) float64   { return r.redisCPUus }
func pgCPUOf(r roundStats) float64      { return r.pgCPUus }

// medianOf is the median of f over the runs.
func medianOf(runs []roundStats, f func(roundStats) float64) float64 {
	v := make([]float64, len(runs))
	for i, r := range runs {
		v[i] = f(r)
	}
	return median(v)
}

// pairedRatio is the median of each round's v2/bare throughput ratio.
func pairedRatio(v2, bare []roundStats) float64 {
	r := make([]float64, len(v2))
	for i := range v2 {
		r[i] = v2[i].res.RPS / bare[i].res.RPS
	}
	return median(r)
}

func roundRatios(v2, bare []roundStats) string {
	parts := make([]string, len(v2))
	for i := range v2 {
		parts[i] = strconv.FormatFloat(v2[i].res.RPS/bare[i].res.RPS, 'f', 3, 64)
	}
	return strings.Join(parts, " ")
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
