package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"
	"sync"

	"github.com/indigo-hq/indigo/db/sqlitedb"
)

// Request logs are the one table written at the rate of API calls, so they
// are inserted many rows per statement. sqlc cannot express an INSERT with a
// variable number of rows; these statements are built here once per chunk
// size, and the per-row query stays in queries/<engine>/logs.sql as the
// reference.
//
// On SQLite the writer keeps one pooled connection for itself, the usual
// SQLite pattern of a single writer connection, and talks to the driver on
// it directly: its statements are prepared once on that connection, and a
// batch's arguments go into one reused []driver.NamedValue instead of
// through database/sql's per-call conversion (about a fifth of the cost
// per row, measured by BenchmarkWriteRequestLogs).

const logColumns = 8

// logChunks are the statement sizes a batch is cut into, largest first.
var logChunks = []int{128, 16, 1}

// logConn is the SQLite request log writer's connection and what is
// prepared on it. mu serialises batches.
type logConn struct {
	mu    sync.Mutex
	conn  *sql.Conn
	stmts map[int]driver.Stmt // the multi-row INSERT by rows per statement
	stat  driver.Stmt         // AddKeyStat
	mark  driver.Stmt         // MarkRequestLogBatch
	args  []driver.NamedValue
}

// logInsertSQL is the SQLite INSERT of n rows.
func logInsertSQL(n int) string {
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
			b.WriteByte('?')
		}
		b.WriteByte(')')
	}
	return b.String()
}

// WriteRequestLogs stores a batch of request logs and adds to the daily
// roll-up, in one transaction.
func (s *Store) WriteRequestLogs(ctx context.Context, logs []sqlitedb.InsertRequestLogParams, stats []sqlitedb.AddKeyStatParams) error {
	_, err := s.WriteRequestLogBatch(ctx, sqlitedb.MarkRequestLogBatchParams{}, logs, stats)
	return err
}

// WriteRequestLogBatch is WriteRequestLogs for a batch that may be written
// more than once: a retry after an error that left unclear whether the
// commit happened, or a replay from a spool. The mark (the batch's id, and
// the time it is stored) goes in the batch's transaction, and a batch whose
// id is already marked is skipped whole (dup true). An empty id marks
// nothing.
func (s *Store) WriteRequestLogBatch(ctx context.Context, mark sqlitedb.MarkRequestLogBatchParams, logs []sqlitedb.InsertRequestLogParams, stats []sqlitedb.AddKeyStatParams) (dup bool, err error) {
	if s.Engine == Postgres {
		return s.copyRequestLogs(ctx, mark, logs, stats)
	}
	lc := &s.logs
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.conn == nil {
		conn, err := s.DB.Conn(ctx)
		if err != nil {
			return false, err
		}
		lc.conn = conn
	}
	err = lc.conn.Raw(func(dc any) (err error) {
		dup, err = lc.write(ctx, dc, mark, logs, stats)
		return err
	})
	if err != nil {
		// The connection may be broken, or hold a failed transaction: give
		// it back and start again on a fresh one next time.
		lc.closeLocked()
	}
	return dup, err
}

// write runs one batch on the driver connection dc.
func (lc *logConn) write(ctx context.Context, dc any, mark sqlitedb.MarkRequestLogBatchParams, logs []sqlitedb.InsertRequestLogParams, stats []sqlitedb.AddKeyStatParams) (dup bool, err error) {
	prep, ok := dc.(driver.ConnPrepareContext)
	begin, ok2 := dc.(driver.ConnBeginTx)
	if !ok || !ok2 {
		return false, fmt.Errorf("sqlite driver connection %T cannot prepare or begin with a context", dc)
	}
	stmt := func(n int) (driver.Stmt, error) {
		if st, ok := lc.stmts[n]; ok {
			return st, nil
		}
		st, err := prep.PrepareContext(ctx, logInsertSQL(n))
		if err != nil {
			return nil, err
		}
		if lc.stmts == nil {
			lc.stmts = map[int]driver.Stmt{}
		}
		lc.stmts[n] = st
		return st, nil
	}
	if lc.stat == nil {
		st, err := prep.PrepareContext(ctx, sqlitedb.AddKeyStatSQL)
		if err != nil {
			return false, err
		}
		lc.stat = st
	}
	if lc.mark == nil && mark.ID != "" {
		st, err := prep.PrepareContext(ctx, sqlitedb.MarkRequestLogBatchSQL)
		if err != nil {
			return false, err
		}
		lc.mark = st
	}
	if lc.args == nil {
		lc.args = make([]driver.NamedValue, logChunks[0]*logColumns)
		for i := range lc.args {
			lc.args[i].Ordinal = i + 1
		}
	}
	tx, err := begin.BeginTx(ctx, driver.TxOptions{}) // BEGIN IMMEDIATE, from the DSN
	if err != nil {
		return false, err
	}
	if mark.ID != "" {
		res, err := lc.mark.(driver.StmtExecContext).ExecContext(ctx, []driver.NamedValue{{Ordinal: 1, Value: mark.ID}, {Ordinal: 2, Value: mark.CreatedAt}})
		var n int64
		if err == nil {
			n, err = res.RowsAffected()
		}
		if err != nil || n == 0 {
			_ = tx.Rollback()
			return err == nil, err
		}
	}
	if err := lc.insert(ctx, stmt, logs, stats); err != nil {
		_ = tx.Rollback()
		return false, err
	}
	return false, tx.Commit()
}

func (lc *logConn) insert(ctx context.Context, stmt func(int) (driver.Stmt, error), logs []sqlitedb.InsertRequestLogParams, stats []sqlitedb.AddKeyStatParams) error {
	args := lc.args
	var box repeats
	for len(logs) > 0 {
		n := logChunks[len(logChunks)-1]
		for _, size := range logChunks {
			if len(logs) >= size {
				n = size
				break
			}
		}
		st, err := stmt(n)
		if err != nil {
			return err
		}
		for i, l := range logs[:n] {
			a := args[i*logColumns : (i+1)*logColumns : (i+1)*logColumns]
			a[0].Value, a[1].Value, a[2].Value = l.RequestID, box.of(0, l.OrgID), box.of(1, l.KeyID)
			a[3].Value, a[4].Value = box.of(2, l.Method), box.of(3, l.Route)
			a[5].Value, a[6].Value, a[7].Value = l.Status, l.LatencyUs, l.CreatedAt
		}
		if _, err := st.(driver.StmtExecContext).ExecContext(ctx, args[:n*logColumns]); err != nil {
			return err
		}
		logs = logs[n:]
	}
	defer func() { // no strings kept alive between batches
		for i := range args {
			args[i].Value = nil
		}
	}()
	for _, st := range stats {
		a := args[:6:6]
		a[0].Value, a[1].Value, a[2].Value = st.KeyID, st.OrgID, st.Day
		a[3].Value, a[4].Value, a[5].Value = st.Route, st.Status, st.Count
		if _, err := lc.stat.(driver.StmtExecContext).ExecContext(ctx, a); err != nil {
			return err
		}
	}
	return nil
}

// repeats boxes the string columns that repeat from row to row (org, key,
// method, route: a batch is mostly a few keys' calls) once per run of equal
// values instead of once per row, which saves the allocations.
type repeats struct {
	last [4]string
	box  [4]any
}

func (r *repeats) of(col int, v string) any {
	if r.box[col] == nil || r.last[col] != v {
		r.last[col], r.box[col] = v, v
	}
	return r.box[col]
}

// closeLocked finalises the statements on the writer's connection and gives
// the connection back to the pool.
func (lc *logConn) closeLocked() {
	if lc.conn == nil {
		return
	}
	_ = lc.conn.Raw(func(any) error {
		for _, st := range lc.stmts {
			_ = st.Close()
		}
		if lc.stat != nil {
			_ = lc.stat.Close()
		}
		if lc.mark != nil {
			_ = lc.mark.Close()
		}
		return nil
	})
	lc.stmts, lc.stat, lc.mark = nil, nil, nil
	_ = lc.conn.Close()
	lc.conn = nil
}
