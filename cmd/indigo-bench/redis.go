package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/core/apikey"
)

// benchRateLimit is the limited key's rate limit: one that never refuses
// during a run. Its window is short because Redis keeps a log of each
// window's admissions (a sorted set of one entry per call): a second of
// them at the measured rate, not a minute's.
var benchRateLimit = apikey.RateLimit{Limit: 1_000_000_000, WindowSeconds: 1}

// redisSide is the second host, configured with Redis ([redis] url) and
// sharing nothing else with the first (its own SQLite database and data
// directory), and its routes: GET /api/v2/me called with a key that has a
// rate limit, which Redis counts (at most one round trip per call), and with a key
// without limits, which makes no Redis call. Each route has a bare twin of
// its own, since both answer the same path with different bodies (the
// key's id).
type redisSide struct {
	host      *core.Host
	url       string
	own       bool          // a redis-server the bench started
	rdb       *redis.Client // the bench's own client, for INFO
	limited   route
	unlimited route
	// The bare twins' addresses.
	bareLimited, bareUnlimited string
}

// startRedisSide starts the Redis-configured host on o.redis, or on a
// redis-server of its own when o.redis is empty. Without one installed it
// returns no side and why.
func (s *servers) startRedisSide(ctx context.Context, o options) (rs *redisSide, why string, err error) {
	if !o.pairs["redis"] {
		return nil, "not in -pairs", nil
	}
	rs = &redisSide{url: o.redis}
	if rs.url == "" {
		if _, err := exec.LookPath("redis-server"); err != nil {
			return nil, "redis-server is not installed", nil
		}
	}
	tmp, err := os.MkdirTemp("", "indigo-bench-redis-")
	if err != nil {
		return nil, "", err
	}
	s.onClose(func() { os.RemoveAll(tmp) })
	hostDir, redisDir := filepath.Join(tmp, "host"), filepath.Join(tmp, "redis")
	for _, d := range []string{hostDir, redisDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, "", err
		}
	}
	if rs.url == "" {
		url, stop, err := startRedisServer(ctx, redisDir)
		if err != nil {
			return nil, "", err
		}
		s.onClose(stop)
		rs.url, rs.own = url, true
	}
	opts, err := redis.ParseURL(rs.url)
	if err != nil {
		return nil, "", fmt.Errorf("-redis: %w", err)
	}
	rs.rdb = redis.NewClient(opts)
	s.onClose(func() { _ = rs.rdb.Close() })
	if err := rs.rdb.Ping(ctx).Err(); err != nil {
		return nil, "", fmt.Errorf("redis at %s: %w", rs.url, err)
	}

	ro := o
	ro.module, ro.modProfile = false, "" // no modules on this host
	cfg, _, err := hostConfig(hostDir, ro)
	if err != nil {
		return nil, "", err
	}
	cfg.Redis.URL = rs.url
	if rs.host, err = startHost(ctx, &cfg); err != nil {
		return nil, "", err
	}
	s.onClose(func() { shutdownHost(rs.host, cfg.Server.ShutdownTimeout.Duration) })
	if !o.requestLog {
		rs.host.API.Logs = nil
	}
	if rs.host.Shared == nil {
		return nil, "", errors.New("the Redis-configured host has no Redis limiter")
	}

	org, err := rs.host.Local.CreateOrg(ctx, "bench")
	if err != nil {
		return nil, "", err
	}
	for _, k := range []struct {
		rt *route
		rl *apikey.RateLimit
	}{{&rs.limited, &benchRateLimit}, {&rs.unlimited, nil}} {
		auth, err := createKey(ctx, rs.host, org.ID, k.rl)
		if err != nil {
			return nil, "", err
		}
		// The first limited call also loads the limiter's script into
		// Redis (EVALSHA, then EVAL): before the rounds.
		body, ctype, err := fetch(ctx, rs.host.Addr(), mePath, auth)
		if err != nil {
			return nil, "", err
		}
		*k.rt = route{mePath, body, ctype, auth}
	}
	if _, rs.bareLimited, err = s.startBare([]route{rs.limited}); err != nil {
		return nil, "", err
	}
	if _, rs.bareUnlimited, err = s.startBare([]route{rs.unlimited}); err != nil {
		return nil, "", err
	}
	return rs, "", nil
}

// startRedisServer starts a redis-server without persistence on a free
// loopback port, in dir (its log goes there too), and waits until it
// answers. stop kills it.
func startRedisServer(ctx context.Context, dir string) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	logPath := filepath.Join(dir, "redis-server.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command("redis-server", "--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--port", port,
		"--protected-mode", "no", "--dir", dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return "", nil, err
	}
	stop = func() {
		_ = cmd.Process.Kill() // nothing to save
		_ = cmd.Wait()
		_ = logf.Close()
	}
	url = "redis://" + addr + "/0"
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	// wall clock: how long to wait for a real process
	for deadline := time.Now().Add(10 * time.Second); c.Ping(ctx).Err() != nil; {
		if ctx.Err() != nil || time.Now().After(deadline) { // wall clock: the same wait
			stop()
			out, _ := os.ReadFile(logPath)
			return "", nil, fmt.Errorf("redis-server on %s did not answer:\n%s", addr, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return url, stop, nil
}

// redisStats are Redis's counters that a round reads before and after.
type redisStats struct {
	scriptCalls int64         // EVAL and EVALSHA calls: the limiter's round trips
	cpu         time.Duration // the server's user+system CPU time, all its threads
}

// readRedisStats reads INFO commandstats and cpu. On a Redis that others
// use too, their commands count as well.
func readRedisStats(ctx context.Context, rdb *redis.Client) (redisStats, error) {
	info, err := rdb.Info(ctx, "commandstats", "cpu").Result()
	if err != nil {
		return redisStats{}, fmt.Errorf("redis INFO: %w", err)
	}
	var st redisStats
	for line := range strings.Lines(info) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch name {
		case "cmdstat_eval", "cmdstat_evalsha":
			// calls=N,usec=…,usec_per_call=…,rejected_calls=…,failed_calls=…
			for field := range strings.SplitSeq(value, ",") {
				if v, ok := strings.CutPrefix(field, "calls="); ok {
					n, _ := strconv.ParseInt(v, 10, 64)
					st.scriptCalls += n
				}
			}
		case "used_cpu_sys", "used_cpu_user":
			sec, _ := strconv.ParseFloat(value, 64)
			st.cpu += time.Duration(sec * float64(time.Second))
		}
	}
	return st, nil
}
