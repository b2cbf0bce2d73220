package db

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/indigo-hq/indigo/db/pgdb"
	"github.com/indigo-hq/indigo/db/sqlitedb"
)

// Request logs are the one table written at the rate of API calls, so they
// are inserted many rows per statement. sqlc cannot express an INSERT with a
// variable number of rows; these statements are built here once per chunk
// size and prepared once per store, and the per-row query stays in
// queries/<engine>/logs.sql as the reference.

const logColumns = 8

// logChunks are the statement sizes a batch is cut into, largest first.
var logChunks = []int{128, 16, 1}

type bulkStmts struct {
	mu    sync.Mutex
	stmts map[int]*sql.Stmt
}

func (s *Store) logStmt(ctx context.Context, n int) (*sql.Stmt, error) {
	s.bulk.mu.Lock()
	defer s.bulk.mu.Unlock()
	if st, ok := s.bulk.stmts[n]; ok {
		return st, nil
	}
	var b strings.Builder
	b.WriteString("INSERT INTO saas_api_request_logs (request_id, org_id, key_id, method, route, status, latency_us, created_at) VALUES ")
	for r := 0; r < n; r++ {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c := 0; c < logColumns; c++ {
			if c > 0 {
				b.WriteByte(',')
			}
			if s.Engine == Postgres {
				fmt.Fprintf(&b, "$%d", r*logColumns+c+1)
			} else {
				b.WriteByte('?')
			}
		}
		b.WriteByte(')')
	}
	st, err := s.DB.PrepareContext(ctx, b.String())
	if err != nil {
		return nil, err
	}
	if s.bulk.stmts == nil {
		s.bulk.stmts = map[int]*sql.Stmt{}
	}
	s.bulk.stmts[n] = st
	return st, nil
}

// WriteRequestLogs stores a batch of request logs and adds to the daily
// roll-up, in one transaction.
func (s *Store) WriteRequestLogs(ctx context.Context, logs []sqlitedb.InsertRequestLogParams, stats []sqlitedb.AddKeyStatParams) error {
	if s.Engine == Postgres {
		return s.copyRequestLogs(ctx, logs, stats)
	}
	// Cut the batch into statement sizes and prepare them before the
	// transaction: preparing takes a pooled connection, which must not
	// wait behind the one this transaction holds.
	var chunks []*sql.Stmt
	var sizes []int
	for rest := len(logs); rest > 0; {
		n := logChunks[len(logChunks)-1]
		for _, size := range logChunks {
			if rest >= size {
				n = size
				break
			}
		}
		st, err := s.logStmt(ctx, n)
		if err != nil {
			return err
		}
		chunks, sizes = append(chunks, st), append(sizes, n)
		rest -= n
	}
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	args := make([]any, 0, logChunks[0]*logColumns)
	for i, st := range chunks {
		n := sizes[i]
		args = args[:0]
		for _, l := range logs[:n] {
			args = append(args, l.RequestID, l.OrgID, l.KeyID, l.Method, l.Route, l.Status, l.LatencyUs, l.CreatedAt)
		}
		if _, err := tx.StmtContext(ctx, st).ExecContext(ctx, args...); err != nil {
			return err
		}
		logs = logs[n:]
	}
	q := newQuerier(s.Engine, tx)
	for _, st := range stats {
		if err := q.AddKeyStat(ctx, st); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// copyRequestLogs uses PostgreSQL's COPY, many times cheaper per row than
// INSERT, on the pool's own pgx connection; the roll-up runs the generated
// AddKeyStat query text in the same transaction.
func (s *Store) copyRequestLogs(ctx context.Context, logs []sqlitedb.InsertRequestLogParams, stats []sqlitedb.AddKeyStatParams) error {
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error {
		pc := driverConn.(*stdlib.Conn).Conn()
		tx, err := pc.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if len(logs) > 0 {
			src := pgx.CopyFromSlice(len(logs), func(i int) ([]any, error) {
				l := logs[i]
				return []any{l.RequestID, l.OrgID, l.KeyID, l.Method, l.Route, l.Status, l.LatencyUs, l.CreatedAt}, nil
			})
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"saas_api_request_logs"},
				[]string{"request_id", "org_id", "key_id", "method", "route", "status", "latency_us", "created_at"}, src); err != nil {
				return err
			}
		}
		for _, st := range stats {
			if _, err := tx.Exec(ctx, pgdb.AddKeyStatSQL, st.KeyID, st.OrgID, st.Day, st.Route, st.Status, st.Count); err != nil {
				return err
			}
		}
		return tx.Commit(ctx)
	})
}
