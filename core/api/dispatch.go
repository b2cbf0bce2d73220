package api

import (
	"context"
	"net/http"
	"path"
	"strings"

	"github.com/gorilla/mux"

	"github.com/indigo-hq/indigo/core/httpapi"
)

// The host's router is gorilla/mux, but the host calls Router.Match itself
// instead of Router.ServeHTTP. ServeHTTP copies the request twice per call
// (once for the path variables, once for the route), and withApiV2Route
// needed a third copy for its caller. Here one per-request state, which is
// itself the request's context, carries the variables, the caller and the
// status writer: one allocation and one request copy per request.

// reqState is a request's context: the parent context, plus what the
// dispatcher and withApiV2Route establish.
type reqState struct {
	context.Context
	match     mux.RouteMatch // kept here so that it is not a second allocation
	vars      map[string]string
	caller    Caller
	sw        statusWriter
	requestID [1]string // the X-Request-Id header value, without a slice allocation
}

type stateKey struct{}

// Value answers the state itself for stateKey and delegates the rest.
func (st *reqState) Value(key any) any {
	if key == (stateKey{}) {
		return st
	}
	return st.Context.Value(key)
}

func stateFrom(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}

// Vars returns the route's path variables ({id} and the like) of a request
// the host's router dispatched.
func Vars(r *http.Request) map[string]string {
	if st := stateFrom(r.Context()); st != nil {
		return st.vars
	}
	return mux.Vars(r) // a handler mounted on a router without the dispatcher
}

// dispatch does what mux.Router.ServeHTTP does (clean-path redirect,
// match, 405 and 404) with one request copy, and recovers a handler's
// panic as a JSON 500.
func (s *Server) dispatch(router *mux.Router) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.Log.Error("panic in handler", "panic", p, "path", req.URL.Path)
				httpapi.WriteError(w, httpapi.ErrInternal)
			}
		}()
		if err := checkText(req); err != nil {
			w.Header()["X-Request-Id"] = []string{newRequestID()}
			httpapi.WriteError(w, err)
			return
		}
		if p := cleanPath(req.URL.Path); p != req.URL.Path {
			u := *req.URL
			u.Path = p
			w.Header().Set("Location", u.String())
			w.WriteHeader(http.StatusMovedPermanently)
			return
		}
		st := &reqState{Context: req.Context()}
		router.Match(req, &st.match) // the router's NotFound and MethodNotAllowed handlers make it always match
		st.vars = st.match.Vars
		h := st.match.Handler
		if h == nil {
			h = router.NotFoundHandler
		}
		h.ServeHTTP(w, req.WithContext(st))
	})
}

// cleanPath is the canonical form of a URL path, as mux redirects to it:
// path.Clean, keeping a trailing slash.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// Path templates are matched segment by segment where that gives exactly
// mux's answer: a static template is a string comparison, and a template
// whose variables are whole segments without a pattern ("/keys/{id}/roll")
// is checked segment by segment before mux's regular expression runs to
// extract the variables. A matcher must not match where mux's Path would
// not: mux clears a pending 405 whenever a route's matcher matches.

type segment struct {
	lit   string
	isVar bool
}

// segmentMatcher returns the matcher for tpl, or false when tpl has a
// variable with a pattern or inside a segment, which only mux can read.
func segmentMatcher(tpl string) (mux.MatcherFunc, bool) {
	if !strings.HasPrefix(tpl, "/") {
		return nil, false
	}
	if !strings.Contains(tpl, "{") {
		return func(r *http.Request, _ *mux.RouteMatch) bool { return r.URL.Path == tpl }, true
	}
	var segs []segment
	for _, part := range strings.Split(tpl[1:], "/") {
		switch {
		case !strings.ContainsAny(part, "{}"):
			segs = append(segs, segment{lit: part})
		case len(part) > 2 && part[0] == '{' && part[len(part)-1] == '}' && !strings.ContainsAny(part[1:len(part)-1], "{}:"):
			segs = append(segs, segment{isVar: true})
		default:
			return nil, false
		}
	}
	return func(r *http.Request, _ *mux.RouteMatch) bool { return matchSegments(r.URL.Path, segs) }, true
}

// matchSegments reports whether p has exactly segs: literal segments equal,
// variable segments non-empty (mux's default pattern, [^/]+).
func matchSegments(p string, segs []segment) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	rest := p[1:]
	for i, sg := range segs {
		cur, next, more := strings.Cut(rest, "/")
		if sg.isVar && cur == "" || !sg.isVar && cur != sg.lit {
			return false
		}
		if i == len(segs)-1 {
			return !more
		}
		if !more {
			return false
		}
		rest = next
	}
	return false
}

// route adds a route for the path template tpl on router: the segment
// check first where it applies, then mux's own template matching where
// there are variables to read. The route is named after tpl, because a
// route without a Path matcher has no template that mux can report
// (GetPathTemplate), and the authorization walk reads every route's.
func route(router *mux.Router, tpl string) *mux.Route {
	rt := router.NewRoute().Name(tpl)
	m, ok := segmentMatcher(tpl)
	if ok {
		rt = rt.MatcherFunc(m)
	}
	if !ok || strings.Contains(tpl, "{") {
		rt = rt.Path(tpl)
	}
	return rt
}

// requestState returns the request's state, adding one (and copying the
// request) only when the handler was reached without the dispatcher.
func requestState(r *http.Request) (*reqState, *http.Request) {
	if st := stateFrom(r.Context()); st != nil {
		return st, r
	}
	st := &reqState{Context: r.Context(), vars: mux.Vars(r)}
	return st, r.WithContext(st)
}

// begin sets up a request of a wrapped route (v2 or v1): its state, a new
// request id in the X-Request-Id header, and the status writer around w.
func begin(w http.ResponseWriter, r *http.Request) (*reqState, *http.Request, string) {
	st, r := requestState(r)
	rid := newRequestID()
	st.requestID[0] = rid
	w.Header()["X-Request-Id"] = st.requestID[:]
	st.sw.ResponseWriter = w
	return st, r, rid
}
