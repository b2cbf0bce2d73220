// Package api is Indigo's HTTP surface: the withApiV2Route wrapper that every
// /api/v2 route runs behind, the key management routes, the admin views,
// sign-in, health, metrics and the OpenAPI document.
package api

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/indigo-hq/indigo/core/apikey"
	"github.com/indigo-hq/indigo/core/httpapi"
	"github.com/indigo-hq/indigo/core/idempotency"
	"github.com/indigo-hq/indigo/core/identity"
	"github.com/indigo-hq/indigo/core/internal/striped"
	"github.com/indigo-hq/indigo/core/metering"
	"github.com/indigo-hq/indigo/core/ratelimit"
	"github.com/indigo-hq/indigo/core/requestlog"
	"github.com/indigo-hq/indigo/core/scope"
)

// V2Prefix is where v2 routes are mounted.
const V2Prefix = "/api/v2"

// Route is a v2 route's policy. A route must either require scopes or say
// AnyKey; one with neither is denied to everyone.
type Route struct {
	Method string
	Path   string // below /api/v2, e.g. /keys/{id}
	Scopes []string
	// AnyKey admits any valid key, whatever its scopes (GET /me).
	AnyKey bool
	// Session also admits a signed-in owner or admin of the org.
	Session bool
	// Cost is charged through the metering hook (0: not metered).
	Cost int64
	Doc  Doc

	// dbBound: the route's work is the host's database (a core route), so
	// it runs under Server.QueryTimeout; a module route has its own.
	dbBound bool
}

func (rt Route) hasPolicy() bool { return len(rt.Scopes) > 0 || rt.AnyKey }

// Caller is who a v2 request acts for, as the wrapper established it.
type Caller struct {
	OrgID     string
	KeyID     string // "" for a session
	Scopes    []string
	Superkey  bool
	RequestID string
	Record    *apikey.Record     // the authenticating key, when a key
	Identity  *identity.Identity // the signed-in member, when a session
	IP        string
	V1        bool // the global v1 key: no org, no key, no scopes

	refused bool // answered by the wrapper; the handler does not run
}

// Actor is the caller as the audit log names it.
func (c *Caller) Actor() apikey.Actor {
	if c.KeyID != "" {
		return apikey.Actor{ID: "key:" + c.KeyID, KeyID: c.KeyID, IP: c.IP}
	}
	return apikey.Actor{ID: "user:" + c.Identity.UserID, IP: c.IP}
}

// CallerFrom returns the caller of a request inside a v2 handler.
func CallerFrom(ctx context.Context) *Caller {
	if st := stateFrom(ctx); st != nil && st.caller.RequestID != "" {
		return &st.caller
	}
	return nil
}

// Server holds what the routes need.
type Server struct {
	// Ready are /readyz's checks beyond the database's.
	Ready []Check

	Keys     *apikey.Service
	Identity identity.Resolver
	Local    *identity.Local // nil when sign-in is not local
	Meter    metering.Meter  // nil: calls are not metered
	// Unmetered keeps calls let through while Meter was down (FailOpen).
	Unmetered *metering.Backlog
	// BearerIdentity: the identity resolver reads bearer tokens (JWTs from
	// an identity provider), so a JWT-shaped bearer on a session route
	// goes to it instead of the API key check.
	BearerIdentity bool
	FailOpen       bool // when the meter is unreachable
	Logs           *requestlog.Writer
	Metrics        *Metrics
	Log            *slog.Logger
	PublicURL      string
	TrustXFF       bool

	SessionTTL time.Duration
	// QueryTimeout bounds a core route's database work (0: unbounded):
	// past it the call answers 503 unavailable.
	QueryTimeout time.Duration
	V1Key        string // the global v1 key; "" turns /api/v1 off

	router   *mux.Router
	v2       *mux.Router // the /api/v2/ routes, matched before any other
	routes   []Route
	v1routes []V1Route
}

// Router builds the router once.
func (s *Server) Router() *mux.Router {
	if s.router != nil {
		return s.router
	}
	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["X-Request-Id"] = []string{newRequestID()}
		httpapi.WriteError(w, httpapi.Errorf(http.StatusNotFound, "not_found", "no such route"))
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["X-Request-Id"] = []string{newRequestID()}
		httpapi.WriteError(w, httpapi.Errorf(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this route"))
	})
	s.router = r
	// v2 routes, the core's and later the modules', live on one subrouter
	// registered first: a v2 call is matched without trying the UI, admin
	// and auth routes, and those never see a v2 path.
	// (The subrouter's route has no matcher of its own: mux copies a
	// route's matchers into every route of its subrouter.)
	s.v2 = r.NewRoute().Subrouter()
	s.mountCore()
	return r
}

// Handler is the router behind the dispatcher (see dispatch.go), which
// also guards against panics.
func (s *Server) Handler() http.Handler { return s.dispatch(s.Router()) }

// HandleV2 mounts h at /api/v2 + rt.Path behind withApiV2Route.
func (s *Server) HandleV2(rt Route, h http.Handler) {
	s.Router()
	s.routes = append(s.routes, rt)
	route(s.v2, V2Prefix+rt.Path).Methods(rt.Method).Handler(s.withApiV2Route(rt, h))
}

// Routes lists the mounted v2 routes.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// Request ids are a random per-process prefix, a stripe and that stripe's
// count: unique across restarts and hosts, and cheap enough for every
// request. Striping keeps the cores from bumping one shared counter (whose
// cache line would move between them on every request).
var (
	requestIDPrefix = func() string {
		var b [6]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}()
	requestSeq striped.Counter
)

func newRequestID() string {
	var buf [12 + 1 + 16]byte
	slot, seq := requestSeq.Next()
	n := copy(buf[:], requestIDPrefix)
	buf[n] = "0123456789abcdef"[slot] // fewer than 16 slots
	out := strconv.AppendUint(buf[:n+1], seq, 16)
	return string(out)
}

// statusWriter remembers the status for the log and metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// parseBearer accepts exactly "Bearer <token>" (scheme in any case, one
// space, visible ASCII token).
func parseBearer(h string) (string, bool) {
	const scheme = "bearer "
	if len(h) <= len(scheme) || len(h) > len(scheme)+apikey.MaxKeyLen || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	tok := h[len(scheme):]
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c <= ' ' || c >= 0x7f {
			return "", false
		}
	}
	return tok, true
}

func (s *Server) clientIP(r *http.Request) string {
	if s.TrustXFF {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			first, _, _ := strings.Cut(xff, ",")
			// It goes into the audit log: what is not an address (not
			// even text, perhaps) is not used.
			if ip, err := netip.ParseAddr(strings.TrimSpace(first)); err == nil {
				return ip.WithZone("").String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// boundDB puts the request under Server.QueryTimeout, so that a database
// that hangs costs a 503 after that long instead of holding the call; the
// returned func releases the timer.
func (s *Server) boundDB(st *reqState) context.CancelFunc {
	if s.QueryTimeout <= 0 || st == nil {
		return func() {}
	}
	ctx, cancel := context.WithTimeout(st.Context, s.QueryTimeout)
	st.Context = ctx
	return cancel
}

// bounded runs h under Server.QueryTimeout (routes outside the v2 wrapper).
func (s *Server) bounded(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		st, r := requestState(r)
		defer s.boundDB(st)()
		h(w, r)
	}
}

func isSafeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// withApiV2Route is the one wrapper of every v2 route: request id → Bearer
// parsing → verify (cache) → scope check → rate limit and quota → metering
// → handler → queued request log. Nothing here waits on a database write.
func (s *Server) withApiV2Route(rt Route, h http.Handler) http.Handler {
	routeLabel := V2Prefix + rt.Path
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// wall clock: the request's latency, not a moment a test moves
		start := time.Now()
		now := s.Keys.Now() // the keys' clock (a test may move it), read once
		st, r, rid := begin(w, r)
		if rt.dbBound {
			defer s.boundDB(st)()
		}
		sw := &st.sw
		caller := s.admit(sw, r, rt, rid, now, &st.caller)
		if caller != nil && !caller.refused {
			h.ServeHTTP(sw, r)
		}
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		s.Metrics.request(routeLabel, sw.status)
		if caller != nil && s.Logs != nil {
			s.Logs.Enqueue(requestlog.Entry{
				RequestID: rid, OrgID: caller.OrgID, KeyID: caller.KeyID, Method: r.Method, Route: routeLabel,
				// wall clock: since the start above
				Status: sw.status, Latency: time.Since(start), Time: now,
			})
		}
	})
}

// admit runs the checks before the handler. It returns nil after writing
// a refusal for an unknown caller, or the caller. A known caller that is
// refused (403, 429, 402) comes back marked refused, with the refusal
// written, so that the call is still logged against its key.
// The caller is filled into c, which lives in the request's state.
func (s *Server) admit(w *statusWriter, r *http.Request, rt Route, rid string, now time.Time, c *Caller) *Caller {
	if !rt.hasPolicy() {
		httpapi.WriteError(w, httpapi.Errorf(http.StatusForbidden, "no_policy", "this route has no access policy"))
		return nil
	}
	auth := r.Header["Authorization"] // canonical already: no key canonicalisation per request
	switch {
	case len(auth) == 1 && rt.Session && s.BearerIdentity && s.Identity != nil && isJWTBearer(auth[0]):
		// A token from the identity provider, not an API key.
		return s.admitSession(w, r, rid, c)
	case len(auth) == 1:
		return s.admitKey(w, r, rt, rid, auth[0], now, c)
	case len(auth) == 0 && rt.Session && s.Identity != nil:
		return s.admitSession(w, r, rid, c)
	default:
		s.Metrics.verify("missing")
		httpapi.WriteUnauthorized(w)
		return nil
	}
}

func (s *Server) admitKey(w *statusWriter, r *http.Request, rt Route, rid, header string, now time.Time, c *Caller) *Caller {
	raw, ok := parseBearer(header)
	if !ok {
		s.Metrics.verify("malformed")
		httpapi.WriteUnauthorized(w)
		return nil
	}
	rec, code, err := s.Keys.VerifyAt(r.Context(), raw, now)
	if err != nil && r.Context().Err() != nil {
		// The caller went away while its key was looked up: not a failure
		// of the database, nor one to page anybody about.
		s.Log.Debug("caller went away during the key lookup", "err", err, "request_id", rid)
		s.Metrics.verify("caller_gone")
		w.WriteHeader(httpapi.StatusClientClosed)
		return nil
	}
	if err != nil {
		s.Log.Error("verify key", "err", err, "request_id", rid)
		httpapi.WriteError(w, httpapi.ErrUnavailable)
		return nil
	}
	s.Metrics.verify(code)
	if code != apikey.CodeValid {
		httpapi.WriteUnauthorized(w)
		return nil
	}
	*c = Caller{
		OrgID: rec.Row.OrgID, KeyID: rec.Row.ID, Scopes: rec.Scopes, Superkey: rec.Superkey,
		RequestID: rid, Record: rec, IP: s.clientIP(r),
	}
	if !rt.AnyKey && !scope.Grants(rec.Scopes, rec.Superkey, rt.Scopes) {
		httpapi.WriteError(w, httpapi.Errorf(http.StatusForbidden, "insufficient_scope",
			"this key lacks the scope %s", strings.Join(rt.Scopes, ", ")))
		return s.refused(c)
	}
	d := s.Keys.AdmitAt(rec, now)
	writeLimitHeaders(w.Header(), d)
	if d.Code != ratelimit.OK {
		s.Metrics.rejected(string(d.Code))
		if d.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.FormatInt(ceilSeconds(d.RetryAfter), 10))
		}
		msg := "rate limit exceeded; retry after the window resets"
		if d.Code == ratelimit.QuotaExceeded {
			msg = "this key has used its quota"
		}
		httpapi.WriteError(w, httpapi.Errorf(http.StatusTooManyRequests, string(d.Code), "%s", msg))
		return s.refused(c)
	}
	if s.Meter != nil && rt.Cost > 0 {
		call := metering.Call{OrgID: c.OrgID, KeyID: c.KeyID, Route: V2Prefix + rt.Path, Cost: rt.Cost, RequestID: meterID(r, c.KeyID, rid)}
		err := s.Meter.DeductAPICallToken(r.Context(), call)
		switch {
		case err == nil:
		case errors.Is(err, metering.ErrInsufficient):
			httpapi.WriteError(w, httpapi.Errorf(http.StatusPaymentRequired, "insufficient_balance", "the organization's API call balance is spent"))
			return s.refused(c)
		case s.FailOpen:
			s.Log.Warn("metering unavailable; allowing call (fail open)", "err", err, "request_id", rid)
			if s.Unmetered != nil {
				s.Unmetered.Record(call)
			}
		default:
			s.Log.Error("metering unavailable", "err", err, "request_id", rid)
			httpapi.WriteError(w, httpapi.Errorf(http.StatusServiceUnavailable, "metering_unavailable", "metering is unavailable; try again"))
			return s.refused(c)
		}
	}
	return c
}

// isJWTBearer reports whether an Authorization value is "Bearer <JWT>".
func isJWTBearer(h string) bool {
	const scheme = "bearer "
	return len(h) > len(scheme) && strings.EqualFold(h[:len(scheme)], scheme) && identity.LooksLikeJWT(h[len(scheme):])
}

// meterID is the charge's idempotency id: the request id, or, when the
// client sends an Idempotency-Key, that key scoped to the calling key, so
// that a retried call is charged once (and a module call's replayed
// answer, from the idempotency store, is not charged again).
func meterID(r *http.Request, keyID, rid string) string {
	if k := r.Header.Get("Idempotency-Key"); k != "" && len(k) <= idempotency.MaxKeyLen {
		return keyID + ":" + k
	}
	return rid
}

// refused marks a caller whose request was answered by the wrapper: it is
// logged, but the handler does not run.
func (s *Server) refused(c *Caller) *Caller {
	c.refused = true
	return c
}

func (s *Server) admitSession(w *statusWriter, r *http.Request, rid string, c *Caller) *Caller {
	id, err := s.Identity.Resolve(r)
	if errors.Is(err, identity.ErrInvalidToken) {
		httpapi.WriteUnauthorized(w)
		return nil
	}
	if err != nil {
		s.Log.Error("resolve session", "err", err, "request_id", rid)
		httpapi.WriteError(w, httpapi.ErrUnavailable)
		return nil
	}
	if id == nil || id.OrgID == "" {
		httpapi.WriteUnauthorized(w)
		return nil
	}
	*c = Caller{OrgID: id.OrgID, Superkey: true, RequestID: rid, Identity: id, IP: s.clientIP(r)}
	if !id.CanManageKeys() {
		httpapi.WriteError(w, httpapi.Errorf(http.StatusForbidden, "forbidden", "only owners and admins of the organization manage API keys"))
		return s.refused(c)
	}
	if !isSafeMethod(r.Method) && id.CSRFToken != "" {
		got := r.Header.Get("X-CSRF-Token")
		if subtle.ConstantTimeCompare([]byte(got), []byte(id.CSRFToken)) != 1 {
			httpapi.WriteError(w, httpapi.Errorf(http.StatusForbidden, "csrf_failed", "missing or wrong X-CSRF-Token header"))
			return s.refused(c)
		}
	}
	return c
}

func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

func writeLimitHeaders(h http.Header, d ratelimit.Decision) {
	if d.Limit <= 0 {
		return
	}
	// The keys in their canonical form and the values in one array: no
	// canonicalising and one allocation instead of three on every call.
	v := make([]string, 3)
	v[0] = strconv.FormatInt(d.Limit, 10)
	v[1] = strconv.FormatInt(max(d.Remaining, 0), 10)
	v[2] = strconv.FormatInt(ceilSeconds(d.Reset), 10)
	h["Ratelimit-Limit"] = v[0:1:1]
	h["Ratelimit-Remaining"] = v[1:2:2]
	h["Ratelimit-Reset"] = v[2:3:3]
}
