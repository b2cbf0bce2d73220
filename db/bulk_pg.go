package db

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/indigo-hq/indigo/db/pgdb"
	"github.com/indigo-hq/indigo/db/sqlitedb"
)

// On PostgreSQL a batch is one transaction in three round trips, on the
// pool's own pgx connection:
//
//  1. BEGIN and the batch's mark, sent together (a pgx batch);
//  2. the rows, by COPY in PostgreSQL's binary format, which this file
//     encodes itself into a reused buffer: no value boxed per field, no
//     type lookups per value (pgx's CopyFrom took about a tenth of the
//     host's CPU per logged request, and seven allocations per row);
//  3. the daily roll-up's upserts and COMMIT, sent together.
//
// (It was five or more: BEGIN, the mark, COPY, one round trip per roll-up
// row, COMMIT; each costs both sides a wake-up.) The mark and the roll-up
// run the generated queries' text.

// copyLogsSQL is the COPY of a batch; its columns are those appendCopyRow
// writes, in that order.
const copyLogsSQL = "COPY saas_api_request_logs (request_id, org_id, key_id, method, route, status, latency_us, created_at) FROM STDIN (FORMAT binary)"

// copyHeader starts a binary COPY stream: the signature, no flags, no
// header extension.
const copyHeader = "PGCOPY\n\xff\r\n\x00" + "\x00\x00\x00\x00" + "\x00\x00\x00\x00"

// copyBufs are the encoded batches' buffers, reused.
var copyBufs = sync.Pool{New: func() any { return new(copyBuf) }}

type copyBuf struct {
	b  []byte
	rd bytes.Reader
}

// maxKeptCopyBuf is the largest buffer put back for reuse (a batch of a
// few thousand rows is a few hundred KiB).
const maxKeptCopyBuf = 4 << 20

// appendCopyRows encodes logs as a binary COPY stream.
func appendCopyRows(b []byte, logs []sqlitedb.InsertRequestLogParams) []byte {
	b = append(b, copyHeader...)
	for i := range logs {
		l := &logs[i]
		b = binary.BigEndian.AppendUint16(b, logColumns)
		b = appendCopyText(b, l.RequestID)
		b = appendCopyText(b, l.OrgID)
		b = appendCopyText(b, l.KeyID)
		b = appendCopyText(b, l.Method)
		b = appendCopyText(b, l.Route)
		b = appendCopyInt8(b, l.Status)
		b = appendCopyInt8(b, l.LatencyUs)
		b = appendCopyInt8(b, l.CreatedAt)
	}
	return binary.BigEndian.AppendUint16(b, 0xffff) // the trailer: a field count of -1
}

// appendCopyText is a text field: its length, then its bytes (text's
// binary form is the text itself).
func appendCopyText(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// appendCopyInt8 is a BIGINT field: 8 bytes, big-endian.
func appendCopyInt8(b []byte, v int64) []byte {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

// copyRequestLogs writes one batch on PostgreSQL.
func (s *Store) copyRequestLogs(ctx context.Context, mark sqlitedb.MarkRequestLogBatchParams, logs []sqlitedb.InsertRequestLogParams, stats []sqlitedb.AddKeyStatParams) (dup bool, err error) {
	cb := copyBufs.Get().(*copyBuf)
	defer func() {
		if cap(cb.b) <= maxKeptCopyBuf {
			cb.b = cb.b[:0]
			cb.rd.Reset(nil)
			copyBufs.Put(cb)
		}
	}()
	if len(logs) > 0 {
		cb.b = appendCopyRows(cb.b[:0], logs)
	}
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	err = conn.Raw(func(driverConn any) (err error) {
		c := driverConn.(*stdlib.Conn).Conn()
		defer func() {
			// A failure, or a duplicate, leaves the transaction open or
			// aborted: end it, or drop the connection (which database/sql
			// then discards) so that it never goes back to the pool inside
			// one.
			if c.IsClosed() || c.PgConn().TxStatus() == 'I' {
				return
			}
			if _, rbErr := c.Exec(ctx, "rollback"); rbErr != nil {
				_ = c.Close(context.WithoutCancel(ctx))
			}
		}()

		begin := &pgx.Batch{}
		begin.Queue("begin")
		if mark.ID != "" {
			begin.Queue(pgdb.MarkRequestLogBatchSQL, mark.ID, mark.CreatedAt)
		}
		br := c.SendBatch(ctx, begin)
		_, err = br.Exec()
		if err == nil && mark.ID != "" {
			var t pgconn.CommandTag
			t, err = br.Exec()
			if err == nil && t.RowsAffected() == 0 {
				dup = true // stored before: the rollback above undoes the BEGIN
			}
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil || dup {
			return err
		}

		if len(logs) > 0 {
			cb.rd.Reset(cb.b)
			ct, err := c.PgConn().CopyFrom(ctx, &cb.rd, copyLogsSQL)
			if err != nil {
				return err
			}
			if n := ct.RowsAffected(); n != int64(len(logs)) {
				return fmt.Errorf("request log: COPY stored %d rows of %d", n, len(logs))
			}
		}

		end := &pgx.Batch{}
		for _, st := range stats {
			end.Queue(pgdb.AddKeyStatSQL, st.KeyID, st.OrgID, st.Day, st.Route, st.Status, st.Count)
		}
		end.Queue("commit")
		br = c.SendBatch(ctx, end)
		for range stats {
			if _, err = br.Exec(); err != nil {
				break
			}
		}
		var commit pgconn.CommandTag
		if err == nil {
			commit, err = br.Exec()
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err == nil && commit.String() != "COMMIT" {
			// COMMIT of a transaction that failed meanwhile rolls it back.
			err = fmt.Errorf("request log: the batch's transaction ended in %s", commit.String())
		}
		return err
	})
	return dup, err
}
