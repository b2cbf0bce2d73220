package ratelimit_test

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/indigo-hq/indigo/core/coretest"
	"github.com/indigo-hq/indigo/core/ratelimit"
)

// redisStats is redis-server's CPU time and script runs so far (INFO).
func redisStats(b *testing.B, rdb *redis.Client) (cpu time.Duration, runs int64) {
	info, err := rdb.Info(context.Background(), "cpu", "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for line := range strings.SplitSeq(info, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		switch {
		case ok && (k == "used_cpu_sys" || k == "used_cpu_user"):
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatal(err)
			}
			total += f
		case ok && k == "cmdstat_evalsha":
			calls, _, _ := strings.Cut(strings.TrimPrefix(v, "calls="), ",")
			if runs, err = strconv.ParseInt(calls, 10, 64); err != nil {
				b.Fatal(err)
			}
		}
	}
	return time.Duration(total * float64(time.Second)), runs
}

// ownCPU is this process's CPU time so far.
func ownCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSharedAdmit admits calls of one rate-limited key through Redis
// from 16 goroutines, as 16 connections of a load generator would, and
// reports Redis's CPU and round trips per call besides the host side's
// time. With a limit of 100 the key is at its limit and gets no lease, so
// every call goes to Redis; with a billion, leases decide most calls.
func BenchmarkSharedAdmit(b *testing.B) {
	for _, limit := range []int64{100, 1_000_000_000} {
		b.Run("limit="+strconv.FormatInt(limit, 10), func(b *testing.B) {
			srv := coretest.Redis(b)
			rdb := srv.Client()
			s := ratelimit.NewShared(rdb, ratelimit.OnErrorLocal, "a", quiet)
			defer s.Close()
			p := ratelimit.Policy{Limit: limit, Window: time.Second}
			cpu0, runs0 := redisStats(b, rdb)
			own0 := ownCPU(b)
			b.SetParallelism(8) // 16 goroutines on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					s.Admit("key_1", p, time.Now())
				}
			})
			b.StopTimer()
			own1 := ownCPU(b)
			cpu1, runs1 := redisStats(b, rdb)
			b.ReportMetric(float64(own1-own0)/float64(time.Microsecond)/float64(b.N), "host-µs/op")
			b.ReportMetric(float64(cpu1-cpu0)/float64(time.Microsecond)/float64(b.N), "redis-µs/op")
			b.ReportMetric(float64(runs1-runs0)/float64(b.N), "runs/op")
			if r, f := s.Decided(); f > 0 || r == 0 {
				b.Fatalf("decided %d via Redis, %d by the fallback", r, f)
			}
		})
	}
}
