package module

import (
	"net/http"

	"github.com/indigo-hq/indigo/core/api"
	"github.com/indigo-hq/indigo/core/httpapi"
	"github.com/indigo-hq/indigo/core/idempotency"
)

// idempotent looks a request with an Idempotency-Key up in the store. It
// answers a replay, or a refusal, itself and returns nil; or it returns the
// claim under which the request runs now.
func (m *Instance) idempotent(w http.ResponseWriter, r *http.Request, c *api.Caller, value string, body []byte) *idempotency.Claim {
	if len(value) > idempotency.MaxKeyLen {
		httpapi.WriteError(w, httpapi.Errorf(http.StatusBadRequest, "idempotency_key_invalid",
			"the Idempotency-Key header is longer than %d characters", idempotency.MaxKeyLen))
		return nil
	}
	caller := c.KeyID
	if caller == "" && c.Identity != nil {
		caller = "user:" + c.Identity.UserID
	}
	k := idempotency.Key{OrgID: c.OrgID, Caller: caller, Method: r.Method, Path: r.URL.Path, Value: value}
	claim, kept, err := m.loader.Idempotency.Begin(k, idempotency.Sum(r.URL.RawQuery, body))
	switch err {
	case nil:
		if kept == nil {
			return claim
		}
		h := w.Header()
		for name, vs := range kept.Header {
			h[name] = vs
		}
		h.Set("Idempotent-Replayed", "true")
		w.WriteHeader(kept.Status)
		_, _ = w.Write(kept.Body)
	case idempotency.ErrInProgress:
		w.Header().Set("Retry-After", "1")
		httpapi.WriteError(w, httpapi.Errorf(http.StatusConflict, "idempotency_in_progress",
			"a request with this Idempotency-Key is still running; repeat it once that one has answered"))
	case idempotency.ErrReused:
		httpapi.WriteError(w, httpapi.Errorf(http.StatusUnprocessableEntity, "idempotency_key_reused",
			"this Idempotency-Key was used with another request; use a new key for a new request"))
	case idempotency.ErrNotKept:
		httpapi.WriteError(w, httpapi.Errorf(http.StatusConflict, "idempotency_response_not_kept",
			"the request with this Idempotency-Key was answered %d, but its answer was too large to keep for a replay", kept.Status))
	default:
		httpapi.WriteError(w, err)
	}
	return nil
}
