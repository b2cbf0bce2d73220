package api

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"time"

	"github.com/indigo-hq/indigo/core/apikey"
	"github.com/indigo-hq/indigo/core/httpapi"
	"github.com/indigo-hq/indigo/core/identity"
	"github.com/indigo-hq/indigo/core/ui"
)

func (s *Server) mountAuth() {
	r := s.Router()
	r.HandleFunc("/auth/login", s.bounded(s.login)).Methods("GET")
	r.HandleFunc("/auth/logout", s.bounded(s.logout)).Methods("POST")
	r.HandleFunc("/api/session", s.bounded(s.session)).Methods("GET")
	ui.Mount(r)
}

// login consumes a one-time link and sets the session cookie.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if s.Local == nil {
		httpapi.WriteError(w, httpapi.Errorf(http.StatusNotFound, "not_found", "local sign-in is not enabled"))
		return
	}
	tok := r.URL.Query().Get("token")
	if tok == "" || len(tok) > 128 {
		ui.WriteInvalidLink(w, s.Local.LinkTTL())
		return
	}
	session, err := s.Local.SignIn(r.Context(), tok)
	if errors.Is(err, identity.ErrInvalidLink) {
		// A person follows this link in a browser: answer with a page.
		ui.WriteInvalidLink(w, s.Local.LinkTTL())
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	http.SetCookie(w, identity.SessionCookie(r, session, s.SessionTTL, s.TrustXFF))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/settings/api-keys", http.StatusSeeOther)
}

func (s *Server) resolve(w http.ResponseWriter, r *http.Request) *identity.Identity {
	if s.Identity == nil {
		httpapi.WriteUnauthorized(w)
		return nil
	}
	id, err := s.Identity.Resolve(r)
	if errors.Is(err, identity.ErrInvalidToken) {
		httpapi.WriteUnauthorized(w)
		return nil
	}
	if err != nil {
		s.fail(w, r, err)
		return nil
	}
	if id == nil {
		httpapi.WriteError(w, httpapi.Errorf(http.StatusUnauthorized, "unauthorized", "not signed in"))
		return nil
	}
	return id
}

// session tells a signed-in page who it is, the name of its organization
// and its CSRF token.
func (s *Server) session(w http.ResponseWriter, r *http.Request) {
	id := s.resolve(w, r)
	if id == nil {
		return
	}
	name := id.OrgID
	if org, err := s.Keys.Store().Q().GetOrg(r.Context(), id.OrgID); err == nil {
		name = org.Name
	} else if !errors.Is(err, sql.ErrNoRows) {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpapi.WriteJSON(w, http.StatusOK, struct {
		*identity.Identity
		OrgName          string            `json:"org_name"`
		DefaultRateLimit *apikey.RateLimit `json:"default_rate_limit"`
	}{id, name, s.Keys.DefaultRateLimit()})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	id := s.resolve(w, r)
	if id == nil {
		return
	}
	if id.CSRFToken != "" && r.Header.Get("X-CSRF-Token") != id.CSRFToken {
		httpapi.WriteError(w, httpapi.Errorf(http.StatusForbidden, "csrf_failed", "missing or wrong X-CSRF-Token header"))
		return
	}
	if s.Local != nil {
		if err := s.Local.SignOut(r.Context(), r); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: identity.CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	httpapi.WriteJSON(w, http.StatusOK, map[string]bool{"signed_out": true})
}

// Check is one of /readyz's checks. A failing required check answers 503;
// a failing optional one answers 200 with status "degraded".
type Check struct {
	Name     string
	Optional bool
	Run      func(ctx context.Context) error
}

func (s *Server) mountOps() {
	r := s.Router()
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}).Methods("GET")
	r.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.Keys.Store().DB.PingContext(ctx); err != nil {
			httpapi.WriteError(w, httpapi.Errorf(http.StatusServiceUnavailable, "unavailable", "database is not reachable"))
			return
		}
		body := map[string]any{"status": "ready"}
		if len(s.Ready) > 0 {
			checks := map[string]string{"database": "ok"}
			for _, c := range s.Ready {
				err := c.Run(ctx)
				switch {
				case err == nil:
					checks[c.Name] = "ok"
				case c.Optional:
					// The host serves without it, in a documented fallback.
					checks[c.Name] = "unreachable (falling back)"
					body["status"] = "degraded"
				default:
					httpapi.WriteError(w, httpapi.Errorf(http.StatusServiceUnavailable, "unavailable", "%s is not reachable", c.Name))
					return
				}
			}
			body["checks"] = checks
		}
		httpapi.WriteJSON(w, http.StatusOK, body)
	}).Methods("GET")
	if s.Metrics != nil {
		r.Handle("/metrics", promHandler(s.Metrics)).Methods("GET")
	}
	r.HandleFunc("/api/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, s.OpenAPI())
	}).Methods("GET")
}
