// Package db holds Indigo's schema migrations, its SQL queries, the
// sqlc-generated stores for SQLite and PostgreSQL, and the helpers that open
// a database and migrate it.
//
// The sqlitedb types are the canonical row types: the PostgreSQL store is
// adapted to the same sqlitedb.Querier interface by generated conversions
// (pgadapter_gen.go), so the rest of Indigo sees one store for both engines.
// Packages outside db use those types through their aliases here
// (types_gen.go) and never import sqlitedb or pgdb.
package db

//go:generate go tool sqlc generate -f sqlc.yaml
//go:generate go run ./internal/genadapter pgadapter_gen.go types_gen.go

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/indigo-hq/indigo/db/pgdb"
	"github.com/indigo-hq/indigo/db/sqlitedb"
)

// Querier is every query Indigo runs, for either engine.
type Querier = sqlitedb.Querier

// Engine names, as used in the [database] driver setting.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// ErrNotFound is returned by lookups that match no row.
var ErrNotFound = sql.ErrNoRows

// Store is an open database of either engine.
type Store struct {
	Engine string
	DB     *sql.DB
	URL    string
	q      Querier
	logs   logConn // the SQLite request log writer's connection
}

type pgQuerier struct{ q *pgdb.Queries }

func newQuerier(engine string, dbtx interface {
	sqlitedb.DBTX
}) Querier {
	if engine == Postgres {
		return pgQuerier{q: pgdb.New(dbtx)}
	}
	return sqlitedb.New(dbtx)
}

// Q returns the non-transactional querier.
func (s *Store) Q() Querier { return s.q }

// Tx runs fn in one transaction. On SQLite the transaction begins with
// BEGIN IMMEDIATE (set in the DSN), so a read followed by a write cannot be
// interleaved with another writer; on PostgreSQL the read-then-write queries
// lock their rows with FOR UPDATE.
func (s *Store) Tx(ctx context.Context, fn func(q Querier) error) (err error) {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(newQuerier(s.Engine, tx)); err != nil {
		if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			return errors.Join(err, rbErr)
		}
		return err
	}
	return tx.Commit()
}

// Close closes the prepared statements and the underlying pool.
func (s *Store) Close() error {
	s.logs.mu.Lock()
	s.logs.closeLocked()
	s.logs.mu.Unlock()
	return s.DB.Close()
}

// Exclusive runs fn while holding a lock named name that every host
// sharing this PostgreSQL database respects (a session advisory lock); on
// SQLite, where one host writes, it just runs fn.
func (s *Store) Exclusive(ctx context.Context, name string, fn func() error) error {
	if s.Engine != Postgres {
		return fn()
	}
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(hashtext($1))`, "indigo:"+name); err != nil {
		return err
	}
	defer func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext($1))`, "indigo:"+name)
	}()
	return fn()
}
