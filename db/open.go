package db

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// Open connects to the database and checks that it answers. For SQLite, url
// is a file path (created with its folder when missing). An in-memory
// database is refused: every pooled connection would get its own.
func Open(ctx context.Context, engine, dsn string) (*Store, error) {
	var (
		sqldb *sql.DB
		err   error
		path  string
	)
	switch engine {
	case SQLite:
		path = strings.TrimPrefix(dsn, "file:")
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		if path == "" || path == ":memory:" {
			return nil, fmt.Errorf("sqlite needs a file path, not %q", dsn)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create database folder: %w", err)
		}
		sqldb, err = sql.Open("sqlite", SQLiteDSN(path))
		if err != nil {
			return nil, err
		}
		// WAL allows readers beside the one writer; a small pool keeps
		// writers from piling up behind busy_timeout.
		sqldb.SetMaxOpenConns(8)
		sqldb.SetMaxIdleConns(8)
	case Postgres:
		pcfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("database url: %w", err)
		}
		// Bounds for a server that hangs or is gone, unless the URL sets
		// its own: a connection attempt gives up after 5 s, and the server
		// cancels any statement after a minute (requests have their own,
		// shorter deadline: database.query_timeout).
		if pcfg.ConnectTimeout == 0 {
			pcfg.ConnectTimeout = 5 * time.Second
		}
		if _, set := pcfg.RuntimeParams["statement_timeout"]; !set {
			pcfg.RuntimeParams["statement_timeout"] = "60000"
		}
		sqldb = stdlib.OpenDB(*pcfg)
		sqldb.SetMaxOpenConns(20)
		sqldb.SetMaxIdleConns(10)
		sqldb.SetConnMaxIdleTime(5 * time.Minute)
	default:
		return nil, fmt.Errorf("unknown database driver %q (want %q or %q)", engine, SQLite, Postgres)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqldb.PingContext(pctx); err != nil {
		_ = sqldb.Close()
		return nil, fmt.Errorf("connect to %s: %w", engine, err)
	}
	if engine == SQLite {
		dsn = path
	}
	return &Store{Engine: engine, DB: sqldb, URL: dsn, q: newQuerier(engine, sqldb)}, nil
}

// SQLiteDSN builds the modernc DSN with WAL, a busy timeout, foreign keys and
// BEGIN IMMEDIATE transactions.
func SQLiteDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}
