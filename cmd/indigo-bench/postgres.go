package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/db"
	"github.com/indigo-hq/indigo/internal/procstat"
)

// pgSide is a third host, on PostgreSQL (-postgres, or
// INDIGO_BENCH_POSTGRES_URL) in a schema the bench creates and drops,
// without modules or Redis, and its GET /api/v2/me route with a superkey,
// whose bare twin serves the same bytes.
type pgSide struct {
	host     *core.Host
	server   string  // the server, without credentials, for the header
	schema   string  // the host's schema
	appName  string  // the host's connections' application_name
	admin    *sql.DB // the bench's own connection: the schema, and the host's backends
	me       route
	bareAddr string
}

// startPostgresSide starts the PostgreSQL host when o.postgres is set,
// else returns no side and why.
func (s *servers) startPostgresSide(ctx context.Context, o options) (ps *pgSide, why string, err error) {
	if !o.pairs["pg"] {
		return nil, "not in -pairs", nil
	}
	if o.postgres == "" {
		return nil, envPostgres + " is not set", nil
	}
	u, err := url.Parse(o.postgres)
	if err != nil {
		return nil, "", fmt.Errorf("-postgres: %w", err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	ps = &pgSide{schema: "indigo_bench_" + hex.EncodeToString(b[:])}
	ps.appName = ps.schema
	ps.server = u.Redacted()
	if ps.admin, err = sql.Open("pgx", o.postgres); err != nil {
		return nil, "", err
	}
	s.onClose(func() { _ = ps.admin.Close() })
	if _, err := ps.admin.ExecContext(ctx, "CREATE SCHEMA "+ps.schema); err != nil {
		return nil, "", fmt.Errorf("postgres at %s: %w", ps.server, err)
	}
	// Dropped after the host stops (closers run backwards).
	s.onClose(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := ps.admin.ExecContext(dctx, "DROP SCHEMA "+ps.schema+" CASCADE"); err != nil {
			fmt.Fprintf(os.Stderr, "indigo-bench: drop schema %s: %v\n", ps.schema, err)
		}
	})

	q := u.Query()
	q.Set("search_path", ps.schema)
	q.Set("application_name", ps.appName)
	u.RawQuery = q.Encode()

	tmp, err := os.MkdirTemp("", "indigo-bench-pg-")
	if err != nil {
		return nil, "", err
	}
	s.onClose(func() { os.RemoveAll(tmp) })
	po := o
	po.module, po.modProfile = false, "" // no modules on this host
	cfg, _, err := hostConfig(tmp, po)
	if err != nil {
		return nil, "", err
	}
	cfg.Database.Driver, cfg.Database.URL = db.Postgres, u.String()
	if ps.host, err = startHost(ctx, &cfg); err != nil {
		return nil, "", err
	}
	s.onClose(func() { shutdownHost(ps.host, cfg.Server.ShutdownTimeout.Duration) })
	if !o.requestLog {
		ps.host.API.Logs = nil
	}
	org, err := ps.host.Local.CreateOrg(ctx, "bench")
	if err != nil {
		return nil, "", err
	}
	auth, err := createKey(ctx, ps.host, org.ID, nil)
	if err != nil {
		return nil, "", err
	}
	body, ctype, err := fetch(ctx, ps.host.Addr(), mePath, auth)
	if err != nil {
		return nil, "", err
	}
	ps.me = route{mePath, body, ctype, auth}
	if _, ps.bareAddr, err = s.startBare([]route{ps.me}); err != nil {
		return nil, "", err
	}
	return ps, "", nil
}

// backendCPU is the CPU time of each of the host's PostgreSQL backends
// (its connections, by application_name), read from /proc: nil when the
// server runs on another machine (or /proc hides its processes). The
// server's shared processes (WAL writer, checkpointer, autovacuum) serve
// every database on it, and are left out.
func (ps *pgSide) backendCPU(ctx context.Context) (map[int]time.Duration, error) {
	rows, err := ps.admin.QueryContext(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, ps.appName)
	if err != nil {
		return nil, fmt.Errorf("postgres backends: %w", err)
	}
	defer rows.Close()
	var cpu map[int]time.Duration
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			return nil, err
		}
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err != nil || string(comm) != "postgres\n" {
			continue
		}
		if t, ok := procstat.CPU(pid); ok {
			if cpu == nil {
				cpu = map[int]time.Duration{}
			}
			cpu[pid] = t
		}
	}
	return cpu, rows.Err()
}

// backendCPUSince is the host's backends' CPU time since before, which
// backendCPU read: a backend that started since counts in full, and one
// that ended since is lost (the host keeps its connections open). ok is
// false when the backends cannot be read.
func (ps *pgSide) backendCPUSince(ctx context.Context, before map[int]time.Duration) (d time.Duration, ok bool, err error) {
	after, err := ps.backendCPU(ctx)
	if err != nil || after == nil || before == nil {
		return 0, false, err
	}
	for pid, t := range after {
		d += t - before[pid]
	}
	return d, true, nil
}
