package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/internal/procstat"
)

// roundStats is one load-generator run as the parent saw it.
type roundStats struct {
	kind           string
	res            result
	serverCPUus    float64 // host process CPU (user+sys) per request, µs
	loadgenCPUus   float64 // load generator CPU per request, µs
	allocsPerReq   float64 // host process heap allocations per request
	bytesPerReq    float64 // host process heap bytes allocated per request
	gcs            uint32  // garbage collections during the round
	idlePct        float64 // share of the machine's CPU time left idle during the round
	moduleCPUus    float64 // module process CPU per request, µs (v2 module rounds)
	pgCPUus        float64 // the host's PostgreSQL backends' CPU per request, µs (v2_pg rounds, where pgCPUKnown)
	pgCPUKnown     bool
	redisCalls     float64 // the limiter's Redis round trips (script calls) per request (v2 Redis rounds)
	redisCPUus     float64 // Redis server CPU per request, µs (v2 Redis rounds)
	redisFallbacks uint64  // calls the host decided without Redis (v2 Redis rounds)
}

// runs are the measured rounds of each kind, in round order.
type runs struct {
	bare, v2           []roundStats // GET /api/v2/me
	bareMod, v2Mod     []roundStats // benchmod's route, from memory, with -module
	bareMod16, v2Mod16 []roundStats // benchmod's route with a 16 KiB body, with -module
	// The same two routes on the host on the gRPC wire, against the same
	// bare rounds, with -grpc-wire.
	v2ModGRPC, v2Mod16GRPC []roundStats
	bareModDB, v2ModDB     []roundStats // the projects module's list, from its database, with -module
	// GET /api/v2/me on the Redis-configured host, with a rate-limited key
	// and with a key without limits, unless Redis is not measured.
	bareRedis, v2RedisLimited      []roundStats
	bareRedisUnl, v2RedisUnlimited []roundStats
	// GET /api/v2/me on the PostgreSQL host, when PostgreSQL is measured.
	barePG, v2PG []roundStats
}

// bench drives the load generator against the servers.
type bench struct {
	ctx context.Context
	exe string // this binary, re-executed as the load generator without wrk
	wrk *wrk   // the load generator with -client wrk
	o   options
	s   *servers
}

// pairSpec is one route measured on both servers, under the two kinds'
// names.
type pairSpec struct {
	bareKind, v2Kind string
	route            route
	host             *core.Host
	bareAddr         string
	module           string // the module whose process CPU the v2 run also measures ("" for none)
	// redis, if not nil, is the Redis whose round trips and CPU the v2 run
	// also measures; limited says the route's key has a rate limit, which
	// Redis decides on every call.
	redis   *redisSide
	limited bool
	// pg, if not nil, is the PostgreSQL host whose backends' CPU the v2 run
	// also measures.
	pg *pgSide
}

// measured is a pair and where its rounds go, and alt, if set, a second
// v2 server measured against the same bare rounds.
type measured struct {
	p        pairSpec
	bare, v2 *[]roundStats
	alt      *altSpec
}

// altSpec is another host serving the pair's route: the host on the gRPC
// wire.
type altSpec struct {
	kind  string
	host  *core.Host
	route route
	out   *[]roundStats
}

// rounds measures o.rounds rounds of pairs: GET /api/v2/me; with -module
// the three module routes, from memory (benchmod, a small body and 16 KiB)
// and from the module's database (projects); unless Redis is not measured,
// GET /api/v2/me on the Redis-configured host with a rate-limited key and
// with a key without limits; and with -postgres, GET /api/v2/me on the
// PostgreSQL host.
func (b *bench) rounds() (runs, error) {
	var r runs
	host, bareAddr := b.s.host, b.s.bareAddr
	pairs := []measured{{p: pairSpec{bareKind: "bare", v2Kind: "v2_me", route: b.s.me, host: host, bareAddr: bareAddr}, bare: &r.bare, v2: &r.v2}}
	if b.o.module && b.o.pairs["module"] {
		mod := measured{p: pairSpec{bareKind: "bare_module", v2Kind: "v2_module", route: b.s.mod, host: host, bareAddr: bareAddr, module: memModule}, bare: &r.bareMod, v2: &r.v2Mod}
		mod16 := measured{p: pairSpec{bareKind: "bare_module_16k", v2Kind: "v2_module_16k", route: b.s.mod16k, host: host, bareAddr: bareAddr, module: memModule}, bare: &r.bareMod16, v2: &r.v2Mod16}
		if g := b.s.grpc; g != nil {
			mod.alt = &altSpec{kind: "v2_module_grpc", host: g.host, route: g.mod, out: &r.v2ModGRPC}
			mod16.alt = &altSpec{kind: "v2_module_16k_grpc", host: g.host, route: g.mod16k, out: &r.v2Mod16GRPC}
		}
		pairs = append(pairs, mod, mod16)
	}
	if b.o.module && b.o.pairs["module_db"] {
		pairs = append(pairs,
			measured{p: pairSpec{bareKind: "bare_module_db", v2Kind: "v2_module_db", route: b.s.modDB, host: host, bareAddr: bareAddr, module: dbModule}, bare: &r.bareModDB, v2: &r.v2ModDB})
	}
	if rs := b.s.redis; rs != nil {
		pairs = append(pairs,
			measured{p: pairSpec{bareKind: "bare_redis", v2Kind: "v2_redis_limited", route: rs.limited, host: rs.host, bareAddr: rs.bareLimited, redis: rs, limited: true}, bare: &r.bareRedis, v2: &r.v2RedisLimited},
			measured{p: pairSpec{bareKind: "bare_redis_unlimited", v2Kind: "v2_redis_unlimited", route: rs.unlimited, host: rs.host, bareAddr: rs.bareUnlimited, redis: rs}, bare: &r.bareRedisUnl, v2: &r.v2RedisUnlimited})
	}
	if ps := b.s.pg; ps != nil {
		pairs = append(pairs,
			measured{p: pairSpec{bareKind: "bare_pg", v2Kind: "v2_pg", route: ps.me, host: ps.host, bareAddr: ps.bareAddr, pg: ps}, bare: &r.barePG, v2: &r.v2PG})
	}
	for i := 1; i <= b.o.rounds; i++ {
		for _, m := range pairs {
			if err := b.pair(i, m); err != nil {
				return r, err
			}
		}
	}
	return r, nil
}

// pair measures one pair, bare and v2 (and its alt, if it has one), back
// to back, prints them and appends them to their rounds. The order
// alternates from round to round (bare first in odd rounds, last in even
// ones), so that a machine getting slower or faster during the run weighs
// on both sides alike. A ratio is the median of the rounds' own ratios.
func (b *bench) pair(i int, m measured) error {
	p := m.p
	var bare, v2, alt roundStats
	runs := []func() error{
		func() (err error) { bare, err = b.round(p.bareKind, p.bareAddr, p.route); return err },
		func() (err error) { v2, err = b.v2Round(p); return err },
	}
	if a := m.alt; a != nil {
		ap := p
		ap.v2Kind, ap.host, ap.route = a.kind, a.host, a.route
		runs = append(runs, func() (err error) { alt, err = b.v2Round(ap); return err })
	}
	if i%2 == 0 {
		slices.Reverse(runs)
	}
	for _, run := range runs {
		if err := run(); err != nil {
			return err
		}
	}
	printRound(i, bare)
	printRound(i, v2)
	*m.bare, *m.v2 = append(*m.bare, bare), append(*m.v2, v2)
	if a := m.alt; a != nil {
		printRound(i, alt)
		*a.out = append(*a.out, alt)
	}
	return nil
}

// v2Round measures the host, and the CPU of p's module process if p names
// one, Redis's round trips and CPU if p names it, or the PostgreSQL
// backends' CPU if p names the PostgreSQL host.
func (b *bench) v2Round(p pairSpec) (roundStats, error) {
	switch {
	case p.module != "":
		modCPU0 := moduleCPU(p.host, p.module)
		v, err := b.round(p.v2Kind, p.host.Addr(), p.route)
		if err == nil {
			v.moduleCPUus = float64(moduleCPU(p.host, p.module)-modCPU0) / float64(time.Microsecond) / float64(v.res.Total)
		}
		return v, err
	case p.redis != nil:
		return b.redisRound(p)
	case p.pg != nil:
		before, err := p.pg.backendCPU(b.ctx)
		if err != nil {
			return roundStats{}, err
		}
		v, err := b.round(p.v2Kind, p.host.Addr(), p.route)
		if err != nil {
			return v, err
		}
		d, ok, err := p.pg.backendCPUSince(b.ctx, before)
		v.pgCPUus, v.pgCPUKnown = float64(d)/float64(time.Microsecond)/float64(v.res.Total), ok
		return v, err
	default:
		return b.round(p.v2Kind, p.host.Addr(), p.route)
	}
}

// redisRound measures a Redis-configured host's route, and Redis's round
// trips and CPU per request. The calls of a rate-limited key must have
// been decided by Redis (concurrent calls of one key share a round trip,
// so there are fewer round trips than calls): a call the host decided on
// its own fell back. On a loaded machine Redis now and then misses the
// limiter's deadline, so a few are counted and printed; past
// maxFallbackShare of the calls the round did not measure Redis, and it
// is measured again, up to redisAttempts times in all.
func (b *bench) redisRound(p pairSpec) (roundStats, error) {
	for attempt := 1; ; attempt++ {
		v, err := b.redisAttempt(p)
		if err != nil {
			return v, err
		}
		total := float64(v.res.Total)
		if !p.limited || (v.redisCalls > 0 && float64(v.redisFallbacks) <= maxFallbackShare*total) {
			return v, nil
		}
		msg := fmt.Sprintf("%s: %d of %d calls fell back to the host's own limiter (Redis did not answer in time?), %.3f Redis round trips per request",
			p.v2Kind, v.redisFallbacks, v.res.Total, v.redisCalls)
		if attempt == redisAttempts {
			return v, errors.New(msg)
		}
		fmt.Fprintf(os.Stderr, "indigo-bench: %s; measuring the round again\n", msg)
	}
}

// redisAttempt is one measurement of redisRound.
func (b *bench) redisAttempt(p pairSpec) (roundStats, error) {
	st0, err := readRedisStats(b.ctx, p.redis.rdb)
	if err != nil {
		return roundStats{}, err
	}
	_, fallback0 := p.redis.host.Shared.Decided()
	v, err := b.round(p.v2Kind, p.host.Addr(), p.route)
	if err != nil {
		return v, err
	}
	st1, err := readRedisStats(b.ctx, p.redis.rdb)
	if err != nil {
		return v, err
	}
	total := float64(v.res.Total)
	v.redisCalls = float64(st1.scriptCalls-st0.scriptCalls) / total
	v.redisCPUus = float64(st1.cpu-st0.cpu) / float64(time.Microsecond) / total
	_, fallback1 := p.redis.host.Shared.Decided()
	v.redisFallbacks = fallback1 - fallback0
	return v, nil
}

// maxFallbackShare is the share of a Redis round's calls that may fall
// back to the host's own limiter; redisAttempts is how many times a round
// with more is measured before the bench gives up.
const (
	maxFallbackShare = 0.001
	redisAttempts    = 3
)

// profiledRound is the extra round that -cpuprofile profiles: v2_me, or
// v2_module (benchmod's route, from memory) with -cpuprofile-module, or
// bare with -cpuprofile-bare, or v2_redis_limited with -cpuprofile-redis, or v2_pg with
// -cpuprofile-pg. It is printed but not counted.
func (b *bench) profiledRound() error {
	kind, addr, rt := "v2_me", b.s.host.Addr(), b.s.me
	switch {
	case b.o.profileModule && b.o.profileGRPC && b.s.grpc != nil:
		kind, addr, rt = "v2_module_grpc", b.s.grpc.host.Addr(), b.s.grpc.mod
	case b.o.profileModule:
		kind, rt = "v2_module", b.s.mod
	case b.o.profileBare:
		kind, addr = "bare", b.s.bareAddr
	case b.o.profileRedis:
		if b.s.redis == nil {
			return errors.New("-cpuprofile-redis: no Redis-configured host (is redis-server installed?)")
		}
		kind, addr, rt = "v2_redis_limited", b.s.redis.host.Addr(), b.s.redis.limited
	case b.o.profilePG:
		if b.s.pg == nil {
			return errors.New("-cpuprofile-pg: no PostgreSQL host (set -postgres or $" + envPostgres + ")")
		}
		kind, addr, rt = "v2_pg", b.s.pg.host.Addr(), b.s.pg.me
	}
	v, err := b.round(kind, addr, rt)
	if err == nil {
		printProfiled(v, b.o.cpuprofile)
	}
	return err
}

// profileRound writes this process's CPU profile of one round to path.
func profileRound(path string, round func() error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	err = round()
	pprof.StopCPUProfile()
	return err
}

// settle writes the request logs queued so far, so that a round's CPU
// and allocations include the logging of its own requests and none of
// the previous round's.
func (b *bench) settle() {
	fctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	for _, h := range b.s.hosts() {
		h.Logs.Flush(fctx)
	}
}

// round runs the load generator once against addr and measures this
// process's CPU and allocations while it runs and until settle returns.
// This process holds the hosts and the bare servers; the load generator,
// wrk or this binary re-executed, is a child process, whose CPU
// getrusage(RUSAGE_SELF) leaves out and which is reported apart.
func (b *bench) round(kind, addr string, rt route) (roundStats, error) {
	b.settle()
	runtime.GC()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := selfCPU()
	idle0, all0 := machineIdle()
	res, loadCPU, err := b.load(kind, addr, rt)
	idle1, all1 := machineIdle()
	b.settle()
	cpu1 := selfCPU()
	runtime.ReadMemStats(&ms1)
	if err != nil {
		return roundStats{}, err
	}

	st := roundStats{kind: kind, res: res}
	total := float64(res.Total) // the host served warm-up requests too
	st.serverCPUus = float64(cpu1-cpu0) / float64(time.Microsecond) / total
	st.allocsPerReq = float64(ms1.Mallocs-ms0.Mallocs) / total
	st.bytesPerReq = float64(ms1.TotalAlloc-ms0.TotalAlloc) / total
	st.gcs = ms1.NumGC - ms0.NumGC
	if all1 > all0 {
		st.idlePct = 100 * float64(idle1-idle0) / float64(all1-all0)
	}
	st.loadgenCPUus = float64(loadCPU) / float64(time.Microsecond) / total
	return st, nil
}

// load runs the load generator, the warm-up and the measured window,
// and returns its result and its own CPU time.
func (b *bench) load(kind, addr string, rt route) (result, time.Duration, error) {
	if b.wrk != nil {
		return b.wrk.load(b, kind, addr, rt)
	}
	cmd := b.loadgenCommand(addr, rt)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	err := cmd.Run()
	var cpu time.Duration
	if ps := cmd.ProcessState; ps != nil {
		cpu = ps.UserTime() + ps.SystemTime()
	}
	if err != nil {
		return result{}, cpu, fmt.Errorf("load generator against %s (%s): %w", kind, addr, err)
	}
	res, err := decodeResult(kind, out.Bytes())
	return res, cpu, err
}

// loadgenCommand is this binary re-executed as the load generator against
// rt on addr. rt's Authorization header and expected body go in its
// environment.
func (b *bench) loadgenCommand(addr string, rt route) *exec.Cmd {
	lo := loadgenOptions{addr: addr, path: rt.path, conns: b.o.conns, duration: b.o.duration, warmup: b.o.warmup, client: b.o.client}
	cmd := exec.CommandContext(b.ctx, b.exe, append([]string{"loadgen"}, lo.args()...)...)
	cmd.Env = append(os.Environ(), envAuth+"="+rt.auth, envBody+"="+base64.StdEncoding.EncodeToString(rt.body))
	return cmd
}

// decodeResult reads the load generator's output.
func decodeResult(kind string, out []byte) (result, error) {
	var res result
	if err := json.Unmarshal(out, &res); err != nil {
		return res, fmt.Errorf("load generator output: %w: %q", err, out)
	}
	if res.Requests == 0 || res.Total == 0 {
		return res, fmt.Errorf("load generator against %s completed no requests", kind)
	}
	return res, nil
}

// moduleCPU is the user+system CPU time of the named module's process,
// read from /proc (0 where there is none). A restarted module's process
// starts again from 0.
func moduleCPU(host *core.Host, name string) time.Duration {
	var total time.Duration
	for _, m := range host.Modules.Modules() {
		if m.Name() != name {
			continue
		}
		if t, ok := procstat.CPU(m.PID()); ok {
			total += t
		}
	}
	return total
}

// machineIdle reads the machine's idle and total CPU time (jiffies) from
// /proc/stat (zeros where there is none).
func machineIdle() (idle, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		total += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return idle, total
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
