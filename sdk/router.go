package sdk

import (
	"net/http"

	"github.com/indigo-hq/indigo/sdk/internal/route"
)

// router dispatches to the handler each Route carries. The host has
// already matched the request to one of these routes (with their patterns),
// so matching again here only picks the handler and fills r.PathValue.
type router struct {
	routes []routed
}

type routed struct {
	method string
	tpl    *route.Template
	h      http.Handler
}

// newRouter builds the router of routes whose Handler is set; validate
// makes sure that is all of them when the module has no Handler.
func newRouter(routes []Route) *router {
	rt := &router{}
	for _, r := range routes {
		tpl, err := route.Parse(r.Path)
		if err != nil || r.Handler == nil {
			continue
		}
		rt.routes = append(rt.routes, routed{method: r.Method, tpl: tpl, h: r.Handler})
	}
	return rt
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	allowed := false
	for _, x := range rt.routes {
		vars, ok := x.tpl.Match(r.URL.Path)
		if !ok {
			continue
		}
		if x.method != r.Method {
			allowed = true
			continue
		}
		for k, v := range vars {
			r.SetPathValue(k, v)
		}
		x.h.ServeHTTP(w, r)
		return
	}
	if allowed {
		JSON(w, http.StatusMethodNotAllowed, errorBodyOf("method_not_allowed", "method not allowed on this route"))
		return
	}
	JSON(w, http.StatusNotFound, errorBodyOf("not_found", "no such route"))
}

func errorBodyOf(code, message string) errorBody {
	var e errorBody
	e.Error.Code, e.Error.Message = code, message
	return e
}
