// Command indigo-bench-scale measures Indigo at production volume on
// PostgreSQL: it seeds a fresh schema with many keys and request-log rows
// (COPY), then times the admin log query (filtered and not), key stats,
// and key verification with a cold and a warm cache, and prints `name:
// value` lines. `make bench-scale` runs it with INDIGO_BENCH_POSTGRES_URL
// (or INDIGO_TEST_POSTGRES_URL); the schema is dropped at the end.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/core/apikey"
	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/core/scope"
	"github.com/indigo-hq/indigo/db"
)

func main() {
	keys := flag.Int("keys", 1_000_000, "API keys to seed")
	logs := flag.Int("logs", 10_000_000, "request-log rows to seed, over the last 30 days")
	orgs := flag.Int("orgs", 1_000, "organizations")
	flag.Parse()
	base := os.Getenv("INDIGO_BENCH_POSTGRES_URL")
	if base == "" {
		base = os.Getenv("INDIGO_TEST_POSTGRES_URL")
	}
	if base == "" {
		fmt.Fprintln(os.Stderr, "indigo-bench-scale: set INDIGO_BENCH_POSTGRES_URL (a PostgreSQL database it may add a schema to)")
		os.Exit(2)
	}
	if err := run(context.Background(), base, *orgs, *keys, *logs); err != nil {
		fmt.Fprintln(os.Stderr, "indigo-bench-scale:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, base string, nOrgs, nKeys, nLogs int) error {
	var b [4]byte
	_, _ = rand.Read(b[:])
	schema := "indigo_scale_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return err
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		return err
	}
	defer func() { _, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE") }()
	u, err := url.Parse(base)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	store, err := db.Open(ctx, db.Postgres, u.String())
	if err != nil {
		return err
	}
	defer store.Close()
	if err := db.MigrateUp(ctx, store); err != nil {
		return err
	}
	fmt.Printf("indigo-bench-scale: %d orgs, %d keys, %d request-log rows, PostgreSQL schema %s\n", nOrgs, nKeys, nLogs, schema)

	// wall clock: seeding time, and the days the log rows spread over
	now := time.Now()
	sample, err := seed(ctx, u.String(), store, now, nOrgs, nKeys, nLogs)
	if err != nil {
		return err
	}
	// wall clock: since the start above
	fmt.Printf("seed_seconds: %.1f\n", time.Since(now).Seconds())

	// The admin log query, unfiltered and by org (the dashboard's views).
	org := sample.orgs[len(sample.orgs)/2]
	report("admin_logs", 200, func() error {
		_, err := store.Q().AdminListLogs(ctx, db.AdminListLogsParams{Lim: 51})
		return err
	})
	report("admin_logs_org", 200, func() error {
		_, err := store.Q().AdminListLogs(ctx, db.AdminListLogsParams{OrgID: org, Lim: 51})
		return err
	})
	report("admin_logs_org_status", 200, func() error {
		_, err := store.Q().AdminListLogs(ctx, db.AdminListLogsParams{OrgID: org, Status: 429, Lim: 51})
		return err
	})
	// Key stats, from the daily roll-up.
	i := 0
	report("key_stats", 200, func() error {
		k := sample.logged[i%len(sample.logged)]
		i++
		if _, err := store.Q().KeyStatsByDay(ctx, db.KeyStatsByDayParams{OrgID: k.org, KeyID: k.id}); err != nil {
			return err
		}
		_, err := store.Q().KeyStatsByRoute(ctx, db.KeyStatsByRouteParams{OrgID: k.org, KeyID: k.id})
		return err
	})

	// Verification through the real service: the first verify of a key
	// reads the database (cold), the second is the cache (warm).
	svc := apikey.New(store, scope.NewWithCore(), apikey.Settings{Prefix: "indigo_sk"}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	j := 0
	report("verify_cold", len(sample.raw), func() error {
		_, code, err := svc.Verify(ctx, sample.raw[j])
		j++
		if err == nil && code != apikey.CodeValid {
			err = fmt.Errorf("verify: %s", code)
		}
		return err
	})
	runtime.GC()
	runtime.ReadMemStats(&after)
	fmt.Printf("cache_bytes_per_key: %.0f\n", float64(after.HeapAlloc-before.HeapAlloc)/float64(len(sample.raw)))
	j = 0
	report("verify_warm", len(sample.raw), func() error {
		_, _, err := svc.Verify(ctx, sample.raw[j])
		j++
		return err
	})
	return revocation(ctx, u.String(), sample.orgs[0])
}

// revocation starts two hosts on the seeded database and measures, over
// 200 keys, how long a key revoked through host A keeps working on host B
// (which had it cached): the change feed's LISTEN/NOTIFY path, with the
// 10 s safety poll as the backstop.
func revocation(ctx context.Context, dsn, org string) error {
	var hosts [2]*core.Host
	for i := range hosts {
		cfg := config.Default()
		cfg.Server.Addr = "127.0.0.1:0"
		cfg.Server.DataDir = filepath.Join(os.TempDir(), fmt.Sprintf("indigo-bench-scale-host%d", i))
		cfg.Database.Driver, cfg.Database.URL, cfg.Database.AutoMigrate = db.Postgres, dsn, false
		cfg.API.DefaultRateLimit = ""
		log := core.NewLogger(os.Stderr, slog.LevelWarn)
		svc, err := core.Open(ctx, &cfg, core.Options{Logger: log})
		if err != nil {
			return err
		}
		h := core.New(svc, core.Options{Logger: log})
		if err := h.Start(ctx); err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = h.Shutdown(sctx)
		}()
		hosts[i] = h
	}
	a, b := hosts[0], hosts[1]
	status := func(raw string) int {
		req, _ := http.NewRequestWithContext(ctx, "GET", b.URL()+"/api/v2/me", nil)
		req.Header.Set("Authorization", "Bearer "+raw)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	actor := apikey.Actor{ID: "bench"}
	var delays []time.Duration
	for i := range 200 {
		k, raw, err := a.Keys.Create(ctx, org, actor, apikey.CreateInput{Name: fmt.Sprint("revoke", i), Scopes: []string{}, RateLimitSet: true})
		if err != nil {
			return err
		}
		if s := status(raw); s != 200 {
			return fmt.Errorf("a new key on host B: %d", s)
		}
		if err := a.Keys.Revoke(ctx, org, k.ID, actor); err != nil {
			return err
		}
		// wall clock: the delay measured
		start := time.Now()
		for status(raw) != 401 {
			if time.Since(start) > 15*time.Second { // wall clock: the same
				return fmt.Errorf("key %d still works on host B 15 s after its revocation", i)
			}
			time.Sleep(200 * time.Microsecond)
		}
		delays = append(delays, time.Since(start)) // wall clock: the same
	}
	slices.Sort(delays)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	fmt.Printf("revocation_p50_ms: %.2f\nrevocation_p99_ms: %.2f\nrevocation_max_ms: %.2f\n",
		ms(delays[len(delays)/2]), ms(delays[len(delays)*99/100]), ms(delays[len(delays)-1]))
	return nil
}

// report runs fn n times and prints its p50 and p99 in milliseconds.
func report(name string, n int, fn func() error) {
	took := make([]time.Duration, 0, n)
	for range n {
		// wall clock: a latency
		start := time.Now()
		if err := fn(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			os.Exit(1)
		}
		// wall clock: the same latency
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	p50, p99 := took[len(took)/2], took[len(took)*99/100]
	if p99 < 100*time.Microsecond { // in-memory work reads better in µs
		fmt.Printf("%s_p50_us: %.2f\n%s_p99_us: %.2f\n", name, float64(p50.Nanoseconds())/1000, name, float64(p99.Nanoseconds())/1000)
		return
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	fmt.Printf("%s_p50_ms: %.3f\n%s_p99_ms: %.3f\n", name, ms(p50), name, ms(p99))
}

type keyRef struct{ id, org string }

type seeded struct {
	orgs   []string
	raw    []string // keys to verify (the first 10,000 seeded)
	logged []keyRef // keys with log rows and stats
}

// seed fills the schema with COPY, the way a busy deployment's tables look:
// orgs, keys spread over them, log rows over the last 30 days spread over
// 10,000 keys, and the daily stats those rows roll up to.
func seed(ctx context.Context, dsn string, store *db.Store, now time.Time, nOrgs, nKeys, nLogs int) (seeded, error) {
	var s seeded
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return s, err
	}
	defer conn.Close(ctx)
	ms := now.UnixMilli()
	orgRows := make([][]any, nOrgs)
	for i := range orgRows {
		id := fmt.Sprintf("org_scale_%06d", i)
		s.orgs = append(s.orgs, id)
		orgRows[i] = []any{id, id, ms}
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"saas_orgs"}, []string{"id", "name", "created_at"}, pgx.CopyFromRows(orgRows)); err != nil {
		return s, err
	}
	const sampleKeys, loggedKeys = 10_000, 10_000
	i := 0
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"saas_api_keys"},
		[]string{"id", "org_id", "key_hash", "name", "prefix", "last4", "scopes", "created_by", "created_at", "updated_at"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == nKeys {
				return nil, nil
			}
			raw, parsed := apikey.Generate("indigo_sk")
			id := fmt.Sprintf("key_scale_%08d", i)
			org := s.orgs[i%nOrgs]
			if i < sampleKeys {
				s.raw = append(s.raw, raw)
			}
			if i < loggedKeys {
				s.logged = append(s.logged, keyRef{id, org})
			}
			i++
			return []any{id, org, parsed.Hash(), "k", "indigo_sk", raw[len(raw)-4:], "[]", "bench", ms, ms}, nil
		}))
	if err != nil {
		return s, err
	}
	// A partition for each of the 30 days, as the log-partitions task
	// keeps them.
	if _, err := store.EnsureLogPartitions(ctx, now.AddDate(0, 0, -30), 31); err != nil {
		return s, err
	}
	routes := []string{"/api/v2/me", "/api/v2/keys", "/api/v2/projects"}
	statuses := []int64{200, 200, 200, 429, 403}
	start := now.AddDate(0, 0, -30).UnixMilli()
	step := (ms - start) / int64(max(nLogs, 1))
	n := 0
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"saas_api_request_logs"},
		[]string{"request_id", "org_id", "key_id", "method", "route", "status", "latency_us", "created_at"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if n == nLogs {
				return nil, nil
			}
			k := s.logged[n%len(s.logged)]
			row := []any{fmt.Sprintf("req_%d", n), k.org, k.id, "GET", routes[n%len(routes)], statuses[n%len(statuses)], int64(200 + n%900), start + int64(n)*step}
			n++
			return row, nil
		}))
	if err != nil {
		return s, err
	}
	_, err = conn.Exec(ctx, `INSERT INTO saas_api_key_stats_daily (key_id, org_id, day, route, status, count)
SELECT key_id, org_id, to_char(to_timestamp(created_at / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD'), route, status, count(*)
FROM saas_api_request_logs GROUP BY 1, 2, 3, 4, 5`)
	if err != nil {
		return s, err
	}
	_, err = conn.Exec(ctx, `ANALYZE`)
	return s, err
}
