package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/indigo-hq/indigo/core/apikey"
	"github.com/indigo-hq/indigo/core/httpapi"
	"github.com/indigo-hq/indigo/core/identity"
	"github.com/indigo-hq/indigo/db"
)

func (s *Server) mountAdmin() {
	r := s.Router()
	r.Handle("/api/admin/keys", s.bounded(s.withOperator(s.adminKeys).ServeHTTP)).Methods("GET")
	r.Handle("/api/admin/logs", s.bounded(s.withOperator(s.adminLogs).ServeHTTP)).Methods("GET")
	r.Handle("/api/admin/audit", s.bounded(s.withOperator(s.adminAudit).ServeHTTP)).Methods("GET")
}

// errNotOperator answers a caller who proved who it is but may not read
// the admin views: a session without the operator flag, or a valid API key
// (keys never read them, a superkey included).
var errNotOperator = httpapi.Errorf(http.StatusForbidden, "not_operator",
	"the admin views are for signed-in operators: an API key or a session without the operator flag cannot read them")

// withOperator admits only a signed-in user holding the operator flag. A
// caller that proves nothing is a 401; one that is known but not an
// operator is a 403 not_operator, whether it came with a session or with a
// key that verifies.
func (s *Server) withOperator(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", newRequestID())
		// An Authorization header is a key, as on v2, unless it is a token
		// that the identity provider reads.
		if auth := r.Header["Authorization"]; len(auth) > 0 && (len(auth) != 1 || !s.BearerIdentity || !isJWTBearer(auth[0])) {
			s.refuseKey(w, r, auth)
			return
		}
		if s.Identity == nil {
			httpapi.WriteUnauthorized(w)
			return
		}
		id, err := s.Identity.Resolve(r)
		if errors.Is(err, identity.ErrInvalidToken) {
			httpapi.WriteUnauthorized(w)
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if id == nil {
			httpapi.WriteUnauthorized(w)
			return
		}
		if !id.Operator {
			httpapi.WriteError(w, errNotOperator)
			return
		}
		h(w, r)
	})
}

// refuseKey answers an API key presented to an admin view: 401 when it
// does not verify (the same body as on v2), 403 not_operator when it does.
func (s *Server) refuseKey(w http.ResponseWriter, r *http.Request, auth []string) {
	raw, ok := "", len(auth) == 1
	if ok {
		raw, ok = parseBearer(auth[0])
	}
	if !ok {
		httpapi.WriteUnauthorized(w)
		return
	}
	_, code, err := s.Keys.VerifyAt(r.Context(), raw, s.Keys.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if code != apikey.CodeValid {
		httpapi.WriteUnauthorized(w)
		return
	}
	httpapi.WriteError(w, errNotOperator)
}

// adminQuery reads the shared filters of the admin views.
type adminQuery struct {
	orgID, keyID, status, route, action string
	httpStatus                          int64
	since, until                        int64
	limit                               int
	cursor                              string
}

// parseAdminQuery reads the filters, and a cursor that position accepts.
func parseAdminQuery(r *http.Request, position func(string) bool) (adminQuery, error) {
	q := r.URL.Query()
	a := adminQuery{orgID: q.Get("org_id"), keyID: q.Get("key_id"), status: q.Get("status"), route: q.Get("route"), action: q.Get("action")}
	var err error
	if a.limit, a.cursor, err = pageParams(r, position); err != nil {
		return a, err
	}
	for name, dst := range map[string]*int64{"since": &a.since, "until": &a.until} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return a, httpapi.Errorf(http.StatusBadRequest, "bad_request", "%s must be an RFC 3339 time", name)
			}
			*dst = t.UnixMilli()
		}
	}
	return a, nil
}

func (s *Server) adminKeys(w http.ResponseWriter, r *http.Request) {
	a, err := parseAdminQuery(r, keyPosition)
	if err != nil {
		httpapi.WriteError(w, err)
		return
	}
	switch a.status {
	case "", apikey.StatusActive, apikey.StatusExpiring, apikey.StatusExpired, apikey.StatusRevoked:
	default:
		httpapi.WriteError(w, httpapi.Errorf(http.StatusBadRequest, "bad_request", "status must be active, expiring, expired or revoked"))
		return
	}
	keys, next, err := s.Keys.AdminList(r.Context(), apikey.AdminFilter{
		OrgID: a.orgID, Status: a.status, KeyID: a.keyID, Since: a.since, Until: a.until, Cursor: a.cursor, Limit: a.limit,
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"keys": keys, "next_cursor": encodeCursor(next)})
}

// LogEntry is one request log row.
type LogEntry struct {
	ID        int64  `json:"id"`
	RequestID string `json:"request_id"`
	OrgID     string `json:"org_id"`
	KeyID     string `json:"key_id"`
	// Caller is "key" for a call with an API key and "session" for one
	// made by a signed-in person (the dashboard), which has no key id.
	Caller    string      `json:"caller"`
	Method    string      `json:"method"`
	Route     string      `json:"route"`
	Status    int64       `json:"status"`
	LatencyMS float64     `json:"latency_ms"`
	Time      apikey.Time `json:"time"`
}

// rowPosition is a log list's position: a row id, in decimal as
// next_cursor gives it.
func rowPosition(c string) bool {
	n, err := strconv.ParseInt(c, 10, 64)
	return err == nil && n > 0 && strconv.FormatInt(n, 10) == c
}

// idCursor is the row id of a cursor that rowPosition accepted (0: none).
func idCursor(c string) int64 {
	n, _ := strconv.ParseInt(c, 10, 64)
	return n
}

func (s *Server) adminLogs(w http.ResponseWriter, r *http.Request) {
	a, err := parseAdminQuery(r, rowPosition)
	if err != nil {
		httpapi.WriteError(w, err)
		return
	}
	if v := r.URL.Query().Get("status"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 || n > 599 {
			httpapi.WriteError(w, httpapi.Errorf(http.StatusBadRequest, "bad_request", "status must be an HTTP status code"))
			return
		}
		a.httpStatus = int64(n)
	}
	caller := r.URL.Query().Get("caller")
	switch caller {
	case "", "key", "session":
	default:
		httpapi.WriteError(w, httpapi.Errorf(http.StatusBadRequest, "bad_request", "caller must be key or session"))
		return
	}
	if a.keyID != "" && a.orgID == "" {
		// The log table is indexed by org: narrow a key filter to its org.
		if k, err := s.Keys.Store().Q().GetKeyByID(r.Context(), a.keyID); err == nil {
			a.orgID = k.OrgID
		}
	}
	rows, err := s.Keys.Store().Q().AdminListLogs(r.Context(), db.AdminListLogsParams{
		OrgID: a.orgID, KeyID: a.keyID, Route: a.route, Caller: caller, Status: a.httpStatus,
		Since: a.since, Until: a.until, Cursor: idCursor(a.cursor), Lim: int64(a.limit + 1),
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var next string
	if len(rows) > a.limit {
		rows = rows[:a.limit]
		next = strconv.FormatInt(rows[len(rows)-1].ID, 10)
	}
	out := make([]LogEntry, len(rows))
	for i, l := range rows {
		who := "key"
		if l.KeyID == "" {
			who = "session"
		}
		out[i] = LogEntry{ID: l.ID, RequestID: l.RequestID, OrgID: l.OrgID, KeyID: l.KeyID, Caller: who, Method: l.Method, Route: l.Route,
			Status: l.Status, LatencyMS: float64(l.LatencyUs) / 1000, Time: apikey.Time{Time: time.UnixMilli(l.CreatedAt).UTC()}}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"logs": out, "next_cursor": encodeCursor(next)})
}

// AuditEntry is one audit row.
type AuditEntry struct {
	ID       int64           `json:"id"`
	OrgID    string          `json:"org_id"`
	Actor    string          `json:"actor"`
	KeyID    *string         `json:"key_id"`
	Action   string          `json:"action"`
	SourceIP string          `json:"source_ip"`
	Details  json.RawMessage `json:"details"`
	Time     apikey.Time     `json:"time"`
}

func (s *Server) adminAudit(w http.ResponseWriter, r *http.Request) {
	a, err := parseAdminQuery(r, rowPosition)
	if err != nil {
		httpapi.WriteError(w, err)
		return
	}
	rows, err := s.Keys.Store().Q().AdminListAudit(r.Context(), db.AdminListAuditParams{
		OrgID: a.orgID, KeyID: a.keyID, Action: a.action, Since: a.since, Until: a.until, Cursor: idCursor(a.cursor), Lim: int64(a.limit + 1),
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var next string
	if len(rows) > a.limit {
		rows = rows[:a.limit]
		next = strconv.FormatInt(rows[len(rows)-1].ID, 10)
	}
	out := make([]AuditEntry, len(rows))
	for i, l := range rows {
		e := AuditEntry{ID: l.ID, OrgID: l.OrgID, Actor: l.Actor, Action: l.Action, SourceIP: l.SourceIp,
			Details: json.RawMessage(l.Details), Time: apikey.Time{Time: time.UnixMilli(l.CreatedAt).UTC()}}
		if l.KeyID.Valid {
			k := l.KeyID.String
			e.KeyID = &k
		}
		out[i] = e
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"audit": out, "next_cursor": encodeCursor(next)})
}
