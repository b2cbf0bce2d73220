package api

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/indigo-hq/indigo/core/apikey"
	"github.com/indigo-hq/indigo/core/httpapi"
	"github.com/indigo-hq/indigo/core/ratelimit"
	"github.com/indigo-hq/indigo/core/scope"
)

// Core scope ids.
const (
	ScopeKeysRead   = "api-keys:read"
	ScopeKeysWrite  = "api-keys:write"
	ScopeKeysVerify = "api-keys:verify"
)

// RawKeyWarning accompanies every plaintext key.
const RawKeyWarning = "Store this key now: it is shown only once and cannot be recovered."

func (s *Server) mountCore() {
	read, write := []string{ScopeKeysRead}, []string{ScopeKeysWrite}
	// /me and verify are data-plane calls and cost a token when a metering
	// provider is wired; managing keys is free, so that an org out of
	// tokens can still fix its keys.
	s.HandleV2(Route{Method: "GET", Path: "/me", AnyKey: true, Cost: 1, Doc: docMe}, http.HandlerFunc(s.me))
	s.handleCore(Route{Method: "GET", Path: "/scopes", Scopes: read, Session: true, Doc: docScopes}, http.HandlerFunc(s.listScopes))
	s.handleCore(Route{Method: "POST", Path: "/keys/verify", Scopes: []string{ScopeKeysVerify}, Session: true, Cost: 1, Doc: docVerify}, http.HandlerFunc(s.verifyKey))
	s.handleCore(Route{Method: "GET", Path: "/keys", Scopes: read, Session: true, Doc: docListKeys}, http.HandlerFunc(s.listKeys))
	s.handleCore(Route{Method: "POST", Path: "/keys", Scopes: write, Session: true, Doc: docCreateKey}, http.HandlerFunc(s.createKey))
	s.handleCore(Route{Method: "GET", Path: "/keys/{id}", Scopes: read, Session: true, Doc: docGetKey}, http.HandlerFunc(s.getKey))
	s.handleCore(Route{Method: "PATCH", Path: "/keys/{id}", Scopes: write, Session: true, Doc: docUpdateKey}, http.HandlerFunc(s.updateKey))
	s.handleCore(Route{Method: "PUT", Path: "/keys/{id}/scopes", Scopes: write, Session: true, Doc: docUpdateScopes}, http.HandlerFunc(s.updateScopes))
	s.handleCore(Route{Method: "POST", Path: "/keys/{id}/roll", Scopes: write, Session: true, Doc: docRoll}, http.HandlerFunc(s.rollKey))
	s.handleCore(Route{Method: "DELETE", Path: "/keys/{id}", Scopes: write, Session: true, Doc: docRevoke}, http.HandlerFunc(s.revokeKey))
	s.handleCore(Route{Method: "GET", Path: "/keys/{id}/stats", Scopes: read, Session: true, Doc: docStats}, http.HandlerFunc(s.keyStats))
	s.mountAdmin()
	s.mountAuth()
	s.mountOps()
}

// handleCore mounts a core v2 route: its database work is bounded by
// QueryTimeout.
func (s *Server) handleCore(rt Route, h http.Handler) {
	rt.dbBound = true
	s.HandleV2(rt, h)
}

type meResponse struct {
	OrgID     string       `json:"org_id"`
	KeyID     string       `json:"key_id"`
	Name      string       `json:"name"`
	Scopes    []string     `json:"scopes"`
	Status    string       `json:"status"`
	ExpiresAt *apikey.Time `json:"expires_at"`
}

type meMemo struct{}

// me answers from a body rendered once per cached record: a valid key's
// status is its stored one (an expired or revoked key never gets here), so
// the body is a function of the record alone.
func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	rec := CallerFrom(r.Context()).Record
	if b, ok := rec.Memo.Load(meMemo{}); ok {
		httpapi.WriteRaw(w, http.StatusOK, b.([]byte))
		return
	}
	b, err := httpapi.Marshal(s.meBody(rec))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rec.Memo.Store(meMemo{}, b)
	httpapi.WriteRaw(w, http.StatusOK, b)
}

func (s *Server) meBody(rec *apikey.Record) meResponse {
	row := rec.Row
	resp := meResponse{OrgID: row.OrgID, KeyID: row.ID, Name: row.Name, Status: rec.EffectiveStatus(s.Keys.Now())}
	if !rec.Superkey {
		resp.Scopes = rec.Scopes
		if resp.Scopes == nil {
			resp.Scopes = []string{}
		}
	}
	if row.ExpiresAt.Valid {
		resp.ExpiresAt = &apikey.Time{Time: time.UnixMilli(row.ExpiresAt.Int64).UTC()}
	}
	return resp
}

func (s *Server) listScopes(w http.ResponseWriter, _ *http.Request) {
	reg := s.Keys.Scopes()
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"scopes": reg.List(), "groups": reg.Groups()})
}

// pageParams reads ?limit= (default 50, at most 200) and ?cursor=, which
// must decode to a position that valid accepts: a cursor is only ever the
// next_cursor of the same list, and anything else would page from nowhere.
func pageParams(r *http.Request, valid func(string) bool) (int, string, error) {
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, "", httpapi.Errorf(http.StatusBadRequest, "bad_request", "limit must be a positive integer")
		}
		limit = min(n, 200)
	}
	cursor := ""
	if v := r.URL.Query().Get("cursor"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || len(b) == 0 || len(b) > 64 || !valid(string(b)) {
			return 0, "", httpapi.Errorf(http.StatusBadRequest, "invalid_cursor", "cursor is not a next_cursor of this list")
		}
		cursor = string(b)
	}
	return limit, cursor, nil
}

// keyPosition is a key list's position: a key id. Ids are key_ and 26
// Crockford characters (ids.New), but rows seeded otherwise (the scale
// bench) must page too, so any key_ and word characters will do.
func keyPosition(c string) bool {
	if !strings.HasPrefix(c, "key_") || len(c) == len("key_") {
		return false
	}
	for i := len("key_"); i < len(c); i++ {
		if b := c[i]; !(b >= '0' && b <= '9' || b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b == '_') {
			return false
		}
	}
	return true
}

func encodeCursor(c string) *string {
	if c == "" {
		return nil
	}
	v := base64.RawURLEncoding.EncodeToString([]byte(c))
	return &v
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := pageParams(r, keyPosition)
	if err != nil {
		httpapi.WriteError(w, err)
		return
	}
	keys, next, err := s.Keys.List(r.Context(), CallerFrom(r.Context()).OrgID, cursor, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"keys": keys, "next_cursor": encodeCursor(next)})
}

// createBody is POST /keys. Opt fields tell absent from null.
type createBody struct {
	Name             string                       `json:"name"`
	Scopes           apikey.Opt[[]string]         `json:"scopes"`
	ExpiresAt        apikey.Opt[apikey.Time]      `json:"expires_at"`
	ExpiresInSeconds apikey.Opt[int64]            `json:"expires_in_seconds"`
	RateLimit        apikey.Opt[apikey.RateLimit] `json:"rate_limit"`
	Remaining        apikey.Opt[int64]            `json:"remaining"`
	Refill           apikey.Opt[apikey.Refill]    `json:"refill"`
	Metadata         json.RawMessage              `json:"metadata"`
	Prefix           string                       `json:"prefix"`
}

// ParseCreate turns a create body into service input, refusing what is
// malformed (400) before the service checks what is meaningful (422).
func ParseCreate(body createBody, now time.Time) (apikey.CreateInput, error) {
	in := apikey.CreateInput{Name: body.Name, Metadata: body.Metadata, Prefix: body.Prefix}
	if body.Scopes.Null {
		in.Superkey = true
	} else {
		in.Scopes = body.Scopes.V
	}
	if body.ExpiresAt.Set && body.ExpiresInSeconds.Set && !body.ExpiresAt.Null && !body.ExpiresInSeconds.Null {
		return in, httpapi.Errorf(http.StatusBadRequest, "bad_request", "give expires_at or expires_in_seconds, not both")
	}
	switch {
	case body.ExpiresAt.Set && !body.ExpiresAt.Null:
		t := body.ExpiresAt.V.Time
		in.ExpiresAt = &t
	case body.ExpiresInSeconds.Set && !body.ExpiresInSeconds.Null:
		if body.ExpiresInSeconds.V <= 0 {
			return in, httpapi.Errorf(http.StatusUnprocessableEntity, "invalid_expiry", "expires_in_seconds must be positive")
		}
		d, err := seconds("expires_in_seconds", "invalid_expiry", body.ExpiresInSeconds.V)
		if err != nil {
			return in, err
		}
		t := now.Add(d)
		in.ExpiresAt = &t
	}
	if body.RateLimit.Set {
		in.RateLimitSet = true
		if !body.RateLimit.Null {
			rl := body.RateLimit.V
			in.RateLimit = &rl
		}
	}
	if body.Remaining.Set && !body.Remaining.Null {
		v := body.Remaining.V
		in.Remaining = &v
	}
	if body.Refill.Set && !body.Refill.Null {
		rf := body.Refill.V
		in.Refill = &rf
	}
	return in, nil
}

// seconds converts a duration given in seconds, refusing what a
// time.Duration cannot hold (the product would wrap around).
func seconds(field, code string, v int64) (time.Duration, error) {
	switch {
	case v < 0:
		return 0, httpapi.Errorf(http.StatusUnprocessableEntity, code, "%s must not be negative", field)
	case v > apikey.MaxSeconds:
		return 0, httpapi.Errorf(http.StatusUnprocessableEntity, code, "%s", apikey.TooLarge(field))
	}
	return time.Duration(v) * time.Second, nil
}

// CreateResponse is the answer to create and roll.
type CreateResponse struct {
	Key      apikey.Key       `json:"key"`
	RawKey   string           `json:"raw_key"`
	Warning  string           `json:"warning"`
	Previous *apikey.Previous `json:"previous,omitempty"`
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	var body createBody
	if err := httpapi.ReadJSON(w, r, &body); err != nil {
		httpapi.WriteError(w, err)
		return
	}
	in, err := ParseCreate(body, s.Keys.Now())
	if err != nil {
		httpapi.WriteError(w, err)
		return
	}
	c := CallerFrom(r.Context())
	k, raw, err := s.Keys.Create(r.Context(), c.OrgID, c.Actor(), in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpapi.WriteJSON(w, http.StatusCreated, CreateResponse{Key: k, RawKey: raw, Warning: RawKeyWarning})
}

func (s *Server) getKey(w http.ResponseWriter, r *http.Request) {
	k, err := s.Keys.Get(r.Context(), CallerFrom(r.Context()).OrgID, Vars(r)["id"])
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"key": k})
}

func (s *Server) updateKey(w http.ResponseWriter, r *http.Request) {
	var in apikey.UpdateInput
	if err := httpapi.ReadJSON(w, r, &in); err != nil {
		httpapi.WriteError(w, err)
		return
	}
	c := CallerFrom(r.Context())
	k, err := s.Keys.Update(r.Context(), c.OrgID, Vars(r)["id"], c.Actor(), in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"key": k})
}

func (s *Server) updateScopes(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Scopes apikey.Opt[[]string] `json:"scopes"`
	}
	if err := httpapi.ReadJSON(w, r, &body); err != nil {
		httpapi.WriteError(w, err)
		return
	}
	if !body.Scopes.Set {
		httpapi.WriteError(w, httpapi.Errorf(http.StatusBadRequest, "bad_request", "scopes is required (null for a superkey, or a list)"))
		return
	}
	c := CallerFrom(r.Context())
	k, err := s.Keys.SetScopes(r.Context(), c.OrgID, Vars(r)["id"], c.Actor(), body.Scopes.V, body.Scopes.Null)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"key": k})
}

func (s *Server) rollKey(w http.ResponseWriter, r *http.Request) {
	var body struct {
		GraceSeconds apikey.Opt[int64] `json:"grace_seconds"`
	}
	if r.ContentLength != 0 {
		if err := httpapi.ReadJSON(w, r, &body); err != nil {
			httpapi.WriteError(w, err)
			return
		}
	}
	var grace *time.Duration
	if body.GraceSeconds.Set && !body.GraceSeconds.Null {
		g, err := seconds("grace_seconds", "invalid_grace", body.GraceSeconds.V)
		if err != nil {
			httpapi.WriteError(w, err)
			return
		}
		grace = &g
	}
	c := CallerFrom(r.Context())
	k, raw, prev, err := s.Keys.Roll(r.Context(), c.OrgID, Vars(r)["id"], c.Actor(), grace)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpapi.WriteJSON(w, http.StatusCreated, CreateResponse{Key: k, RawKey: raw, Warning: RawKeyWarning, Previous: &prev})
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	c := CallerFrom(r.Context())
	if err := s.Keys.Revoke(r.Context(), c.OrgID, Vars(r)["id"], c.Actor()); err != nil {
		s.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]bool{"revoked": true})
}

func (s *Server) keyStats(w http.ResponseWriter, r *http.Request) {
	st, err := s.Keys.Stats(r.Context(), CallerFrom(r.Context()).OrgID, Vars(r)["id"])
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, st)
}

// VerifyResponse is the answer of POST /keys/verify.
type VerifyResponse struct {
	Valid     bool             `json:"valid"`
	Code      string           `json:"code"`
	KeyID     *string          `json:"key_id"`
	OrgID     *string          `json:"org_id"`
	Scopes    []string         `json:"scopes"`
	Remaining *int64           `json:"remaining"`
	RateLimit *VerifyRateLimit `json:"rate_limit"`
}

// VerifyRateLimit is the checked key's window after this check.
type VerifyRateLimit struct {
	Limit     int64 `json:"limit"`
	Remaining int64 `json:"remaining"`
	Reset     int64 `json:"reset"`
}

func (s *Server) verifyKey(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Key    string    `json:"key"`
		Scopes *[]string `json:"scopes"`
	}
	if err := httpapi.ReadJSON(w, r, &body); err != nil {
		httpapi.WriteError(w, err)
		return
	}
	if body.Key == "" {
		httpapi.WriteError(w, httpapi.Errorf(http.StatusBadRequest, "bad_request", "key is required"))
		return
	}
	c := CallerFrom(r.Context())
	rec, code, err := s.Keys.Verify(r.Context(), body.Key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// A key of another org is reported exactly like an unknown one.
	if rec == nil || rec.Row.OrgID != c.OrgID {
		httpapi.WriteJSON(w, http.StatusOK, VerifyResponse{Code: apikey.CodeNotFound})
		return
	}
	resp := VerifyResponse{Code: code, KeyID: &rec.Row.ID, OrgID: &rec.Row.OrgID}
	if !rec.Superkey {
		resp.Scopes = append([]string{}, rec.Scopes...)
	}
	if code == apikey.CodeValid && body.Scopes != nil && !scope.Grants(rec.Scopes, rec.Superkey, *body.Scopes) {
		code = apikey.CodeInsufficientScope
	}
	if code == apikey.CodeValid {
		d := s.Keys.Admit(rec)
		switch d.Code {
		case ratelimit.RateLimited:
			code = apikey.CodeRateLimited
		case ratelimit.QuotaExceeded:
			code = apikey.CodeQuotaExceeded
		}
		resp.Remaining = d.QuotaRemaining
		if d.Limit > 0 {
			resp.RateLimit = &VerifyRateLimit{Limit: d.Limit, Remaining: max(d.Remaining, 0), Reset: ceilSeconds(d.Reset)}
		}
	}
	resp.Code, resp.Valid = code, code == apikey.CodeValid
	httpapi.WriteJSON(w, http.StatusOK, resp)
}
