package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"

	"github.com/indigo-hq/indigo/core/httpapi"
)

// V1Prefix is the free, read-only API on one global key.
const V1Prefix = "/api/v1"

// V1Route is a module route readable on v1: GET only, no scopes, no org.
type V1Route struct {
	Path   string // below /api/v1, as below /api/v2
	Module string
}

// HandleV1 mounts h for GET at /api/v1 + path. Every other method on the
// path is a 405, whether or not a key is configured.
func (s *Server) HandleV1(rt V1Route, h http.Handler) {
	s.v1routes = append(s.v1routes, rt)
	r := s.Router()
	r.Handle(V1Prefix+rt.Path, s.withV1(rt, h)).Methods("GET")
	r.HandleFunc(V1Prefix+rt.Path, func(w http.ResponseWriter, _ *http.Request) {
		if s.V1Key == "" {
			httpapi.WriteError(w, httpapi.Errorf(http.StatusNotFound, "not_found", "the v1 API is not enabled"))
			return
		}
		w.Header().Set("Allow", "GET")
		httpapi.WriteError(w, httpapi.Errorf(http.StatusMethodNotAllowed, "method_not_allowed", "the v1 API is read-only"))
	})
}

// V1Routes lists the mounted v1 routes.
func (s *Server) V1Routes() []V1Route { return append([]V1Route(nil), s.v1routes...) }

// withV1 checks the global key in constant time (both sides hashed to the
// same length first) and marks the caller as a v1 caller.
func (s *Server) withV1(rt V1Route, h http.Handler) http.Handler {
	routeLabel := V1Prefix + rt.Path
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, r, rid := begin(w, r)
		sw := &st.sw
		defer func() {
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			s.Metrics.request(routeLabel, sw.status)
		}()
		if s.V1Key == "" {
			httpapi.WriteError(sw, httpapi.Errorf(http.StatusNotFound, "not_found", "the v1 API is not enabled"))
			return
		}
		tok, ok := parseBearer(r.Header.Get("Authorization"))
		want := sha256.Sum256([]byte(s.V1Key))
		got := sha256.Sum256([]byte(tok))
		if !ok || subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
			httpapi.WriteUnauthorized(sw)
			return
		}
		st.caller = Caller{RequestID: rid, V1: true, IP: s.clientIP(r)}
		h.ServeHTTP(sw, r)
	})
}
