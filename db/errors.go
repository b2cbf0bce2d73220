package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// Unavailable reports whether err means that the database could not be
// reached or did not answer in time, as opposed to refusing the statement:
// the caller should answer 503 and the client may try again.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, sql.ErrConnDone) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	if pgconn.Timeout(err) {
		return true
	}
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		// Class 08 is "connection exception"; 57P01-57P03 are the server
		// shutting down or not accepting connections yet; 57014 is a
		// statement cancelled by statement_timeout.
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" ||
			pe.Code == "57P03" || pe.Code == "57014"
	}
	if se, ok := errors.AsType[*sqlite.Error](err); ok {
		// SQLITE_BUSY and SQLITE_LOCKED (with their extended codes):
		// another writer held the database past busy_timeout.
		code := se.Code() & 0xff
		return code == 5 || code == 6
	}
	// pgx reports a connection the server closed mid-query this way.
	return strings.Contains(err.Error(), "conn closed") || strings.Contains(err.Error(), "unexpected EOF")
}
