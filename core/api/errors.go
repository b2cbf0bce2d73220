package api

import (
	"errors"
	"net/http"

	"github.com/indigo-hq/indigo/core/apikey"
	"github.com/indigo-hq/indigo/core/httpapi"
	"github.com/indigo-hq/indigo/db"
)

// statusOf is the one place where a domain refusal becomes an HTTP status.
var statusOf = map[apikey.Kind]int{
	apikey.Malformed:   http.StatusBadRequest,
	apikey.Invalid:     http.StatusUnprocessableEntity,
	apikey.NotFound:    http.StatusNotFound,
	apikey.Conflict:    http.StatusConflict,
	apikey.Unavailable: http.StatusServiceUnavailable,
}

// apiError is err as the API answers it: a domain refusal with its status,
// an HTTP error as it is, or nil for an unexpected error (a 500 that is
// logged and not shown).
func apiError(err error) *httpapi.Error {
	if d, ok := errors.AsType[*apikey.Error](err); ok {
		if status, known := statusOf[d.Kind]; known {
			return &httpapi.Error{Status: status, Code: d.Code, Message: d.Message}
		}
	}
	if e, ok := errors.AsType[*httpapi.Error](err); ok {
		return e
	}
	if db.Unavailable(err) {
		return errDatabaseUnavailable
	}
	return nil
}

// errDatabaseUnavailable answers a call whose database did not answer (or
// not within database.query_timeout): the client may try again.
var errDatabaseUnavailable = &httpapi.Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
	Message: "the database is unavailable; try again"}

// fail writes a service error; unexpected errors are logged, not shown.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := apiError(err)
	if e == nil {
		s.Log.Error("request failed", "err", err, "path", r.URL.Path, "request_id", w.Header().Get("X-Request-Id"))
		httpapi.WriteError(w, err)
		return
	}
	if e == errDatabaseUnavailable {
		s.Log.Warn("database unavailable", "err", err, "path", r.URL.Path, "request_id", w.Header().Get("X-Request-Id"))
		w.Header().Set("Retry-After", "1")
	}
	httpapi.WriteError(w, e)
}
