package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// JWTConfig configures the JWT provider. It mirrors [identity.jwt] in the
// host configuration (the host copies the fields over; this package does
// not read the configuration itself).
type JWTConfig struct {
	JWKSURL  string // the issuer's JSON Web Key Set
	Issuer   string // must equal the token's iss
	Audience string // must be one of the token's aud

	UserClaim  string // the user ID; required in the token; "" means "sub"
	EmailClaim string // optional in the token; "" ignores the email
	OrgClaim   string // the org ID; required in the token; "" means "org_id"
	RoleClaim  string // a role or a list of roles; "" makes everyone a member
	AdminRole  string // among the roles, makes the caller an operator; "" never

	// Cookie names a cookie, set by the host application, that carries the
	// same JWT; "" reads the Authorization header only.
	Cookie string

	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway time.Duration
	// JWKSRefreshMinInterval is the least time between two fetches of the
	// key set; 0 means DefaultJWKSRefreshMinInterval.
	JWKSRefreshMinInterval time.Duration
}

// DefaultJWKSRefreshMinInterval applies when JWTConfig leaves it zero.
const DefaultJWKSRefreshMinInterval = 10 * time.Second

const (
	jwksFetchTimeout = 5 * time.Second
	maxJWKSBytes     = 1 << 20
	maxTokenBytes    = 16 << 10
	maxClaimBytes    = 512
)

// jwtAlgorithms is the allow-list of signature algorithms: asymmetric only,
// so "none" and HMAC tokens (HS256 keyed with the public key, say) are
// refused before any key is looked at.
var jwtAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.ES256, jose.ES384, jose.EdDSA,
}

// ErrInvalidToken is a token that is present but not acceptable: malformed,
// badly signed, expired, for another issuer or audience, signed by an
// unknown key or missing a required claim. Resolve returns it wrapped in an
// *InvalidTokenError; test with errors.Is(err, ErrInvalidToken). The reason
// is for debug logs only; the client gets a plain 401.
var ErrInvalidToken = errors.New("invalid token")

// InvalidTokenError carries the reason a token was refused. It matches
// ErrInvalidToken and the reason with errors.Is.
type InvalidTokenError struct{ Reason error }

func (e *InvalidTokenError) Error() string { return "invalid token: " + e.Reason.Error() }

// Unwrap returns ErrInvalidToken and the reason.
func (e *InvalidTokenError) Unwrap() []error { return []error{ErrInvalidToken, e.Reason} }

func invalid(format string, a ...any) error {
	return &InvalidTokenError{Reason: fmt.Errorf(format, a...)}
}

// ErrJWKSUnavailable means no key set has been fetched yet and fetching it
// failed: a server-side problem (answer 503), not the caller's fault. Once
// a set has been fetched, later failed refetches keep the cached set.
var ErrJWKSUnavailable = errors.New("JWKS unavailable")

// JWT resolves callers from JSON Web Tokens issued by an OpenID Connect
// provider, checked against the provider's published key set (JWKS).
//
// The token comes from "Authorization: Bearer <jwt>" or, when configured,
// from a cookie set by the host application. A token from the header needs
// no CSRF check. A token from the cookie is sent by the browser on its own,
// so the Identity carries a CSRFToken, an HMAC of the token under a random
// key made by NewJWT, that the page learns from GET /api/session and echoes
// in X-CSRF-Token. The key lives in this process only: several hosts behind
// one load balancer then need sticky sessions, or better, a UI that sends
// the token in the Authorization header.
type JWT struct {
	cfg         JWTConfig
	client      *http.Client
	now         func() time.Time
	log         *slog.Logger
	minInterval time.Duration
	csrfKey     [32]byte

	mu          sync.Mutex
	keys        []jose.JSONWebKey // usable signing keys of the last good fetch
	loaded      bool              // a fetch has succeeded
	lastAttempt time.Time         // start of the last fetch, by now()
	lastErr     error             // outcome of the last fetch
	inflight    chan struct{}     // closed when the fetch under way ends
}

// NewJWT returns the JWT provider. The key set is fetched on first use.
// client is used for the JWKS fetch (a client with a 5 s timeout when nil);
// now is the clock (time.Now when nil); log gets refusal reasons at debug
// level and fetch failures at warn level (discarded when nil).
func NewJWT(cfg JWTConfig, client *http.Client, now func() time.Time, log *slog.Logger) *JWT {
	if client == nil {
		client = &http.Client{Timeout: jwksFetchTimeout}
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.UserClaim == "" {
		cfg.UserClaim = "sub"
	}
	if cfg.OrgClaim == "" {
		cfg.OrgClaim = "org_id"
	}
	j := &JWT{cfg: cfg, client: client, now: now, log: log, minInterval: cfg.JWKSRefreshMinInterval}
	if j.minInterval <= 0 {
		j.minInterval = DefaultJWKSRefreshMinInterval
	}
	rand.Read(j.csrfKey[:]) // never fails (crypto/rand, Go 1.24+)
	return j
}

const (
	fromHeader = "authorization"
	fromCookie = "cookie"
)

// Resolve returns the identity in the request's token: nil, nil when there
// is no token, an error matching ErrInvalidToken when the token is refused,
// and ErrJWKSUnavailable when the key set cannot be had.
func (j *JWT) Resolve(r *http.Request) (*Identity, error) {
	token, source := j.tokenFrom(r)
	if token == "" {
		return nil, nil
	}
	id, err := j.verify(r.Context(), token)
	if err != nil {
		// Never log the token itself.
		if errors.Is(err, ErrInvalidToken) {
			j.log.DebugContext(r.Context(), "jwt refused", "source", source, "reason", err)
		}
		return nil, err
	}
	if source == fromCookie {
		id.CSRFToken = j.csrfToken(token)
	}
	return id, nil
}

// tokenFrom picks the bearer token when it has the shape of a JWT (API keys
// never contain a dot, so they are left to the key check), else the cookie.
func (j *JWT) tokenFrom(r *http.Request) (token, source string) {
	if h := r.Header.Get("Authorization"); len(h) > len("Bearer ") && strings.EqualFold(h[:len("Bearer ")], "Bearer ") {
		if t := strings.TrimSpace(h[len("Bearer "):]); LooksLikeJWT(t) {
			return t, fromHeader
		}
	}
	if j.cfg.Cookie != "" {
		if c, err := r.Cookie(j.cfg.Cookie); err == nil && c.Value != "" {
			return c.Value, fromCookie
		}
	}
	return "", ""
}

// LooksLikeJWT reports whether t is three base64url parts joined by dots.
// API keys never are, so a host can tell the two bearers apart.
// The signature part may be empty, so that an unsigned ("alg": "none")
// token is refused rather than passed over.
func LooksLikeJWT(t string) bool {
	parts := strings.Split(t, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return false
	}
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			c := p[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// csrfToken is base64url(HMAC-SHA256(csrfKey, token)).
func (j *JWT) csrfToken(token string) string {
	m := hmac.New(sha256.New, j.csrfKey[:])
	m.Write([]byte(token))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (j *JWT) verify(ctx context.Context, token string) (*Identity, error) {
	if len(token) > maxTokenBytes {
		return nil, invalid("token is longer than %d bytes", maxTokenBytes)
	}
	tok, err := jwt.ParseSigned(token, jwtAlgorithms)
	if err != nil {
		return nil, invalid("parse: %w", err)
	}
	if len(tok.Headers) != 1 {
		return nil, invalid("want one signature, got %d", len(tok.Headers))
	}
	h := tok.Headers[0]
	key, err := j.key(ctx, h.KeyID, jose.SignatureAlgorithm(h.Algorithm))
	if err != nil {
		return nil, err
	}
	var std jwt.Claims
	var raw map[string]any
	if err := tok.Claims(key.Key, &std, &raw); err != nil {
		return nil, invalid("signature or claims (kid %q): %w", h.KeyID, err)
	}
	if std.Issuer != j.cfg.Issuer {
		return nil, invalid("issuer %q is not the configured one", std.Issuer)
	}
	if !std.Audience.Contains(j.cfg.Audience) {
		return nil, invalid("audience %q does not include the configured one", []string(std.Audience))
	}
	if std.Expiry == nil {
		return nil, invalid("no exp claim")
	}
	// Issuer and audience are checked above; this checks exp, nbf and iat.
	if err := std.ValidateWithLeeway(jwt.Expected{Time: j.now()}, j.cfg.Leeway); err != nil {
		return nil, invalid("%w", err)
	}
	return j.identity(raw)
}

// identity maps the verified claims to an Identity.
func (j *JWT) identity(raw map[string]any) (*Identity, error) {
	id := &Identity{Role: RoleMember}
	var err error
	if id.UserID, err = stringClaim(raw, j.cfg.UserClaim, true); err != nil {
		return nil, err
	}
	if id.OrgID, err = stringClaim(raw, j.cfg.OrgClaim, true); err != nil {
		return nil, err
	}
	if j.cfg.EmailClaim != "" {
		if id.Email, err = stringClaim(raw, j.cfg.EmailClaim, false); err != nil {
			return nil, err
		}
	}
	var roles []string
	if j.cfg.RoleClaim != "" {
		switch v := raw[j.cfg.RoleClaim].(type) {
		case nil:
		case string:
			roles = []string{v}
		case []any:
			for _, e := range v {
				s, ok := e.(string)
				if !ok {
					return nil, invalid("claim %q holds a non-string role", j.cfg.RoleClaim)
				}
				roles = append(roles, s)
			}
		default:
			return nil, invalid("claim %q is neither a string nor a list of strings", j.cfg.RoleClaim)
		}
	}
	has := func(role string) bool {
		for _, r := range roles {
			if r == role {
				return true
			}
		}
		return false
	}
	switch {
	case has(RoleOwner):
		id.Role = RoleOwner
	case has(RoleAdmin):
		id.Role = RoleAdmin
	}
	id.Operator = j.cfg.AdminRole != "" && has(j.cfg.AdminRole)
	return id, nil
}

// stringClaim reads a string claim; a missing (or null) optional claim is
// "", a required one must be a non-empty string.
func stringClaim(raw map[string]any, name string, required bool) (string, error) {
	v, ok := raw[name]
	if !ok || v == nil {
		if required {
			return "", invalid("claim %q is missing", name)
		}
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", invalid("claim %q is not a string", name)
	}
	if required && s == "" {
		return "", invalid("claim %q is empty", name)
	}
	if len(s) > maxClaimBytes {
		return "", invalid("claim %q is longer than %d bytes", name, maxClaimBytes)
	}
	return s, nil
}

// key finds the verification key for a token header. An unknown kid makes
// one refetch of the key set (rate limited) so that rotation is picked up.
// Hand-written, not go-oidc: its RemoteKeySet refetches on every miss (no minimum interval, no clock), has no size cap and hides its cache (TestJWTUnknownKidRefetchesOncePerInterval, TestJWTKeySetFailures).
func (j *JWT) key(ctx context.Context, kid string, alg jose.SignatureAlgorithm) (*jose.JSONWebKey, error) {
	keys, err := j.loadKeys(ctx)
	if err != nil {
		return nil, err
	}
	if kid == "" {
		if len(keys) != 1 {
			return nil, invalid("token has no kid and the key set holds %d keys", len(keys))
		}
		return pickKey(keys, kid, alg)
	}
	if !hasKid(keys, kid) {
		if keys, err = j.refresh(ctx); err != nil {
			return nil, err
		}
		if !hasKid(keys, kid) {
			return nil, invalid("unknown kid %q", kid)
		}
	}
	return pickKey(keys, kid, alg)
}

func hasKid(keys []jose.JSONWebKey, kid string) bool {
	for _, k := range keys {
		if k.KeyID == kid {
			return true
		}
	}
	return false
}

// pickKey returns the first key that has the kid (any key when kid is "")
// and fits the algorithm.
func pickKey(keys []jose.JSONWebKey, kid string, alg jose.SignatureAlgorithm) (*jose.JSONWebKey, error) {
	for i := range keys {
		if (kid == "" || keys[i].KeyID == kid) && fits(&keys[i], alg) {
			return &keys[i], nil
		}
	}
	return nil, invalid("no key with kid %q fits algorithm %s", kid, alg)
}

// fits reports whether the key may verify alg: its own "alg", when set,
// must agree, and its type and curve must match.
func fits(k *jose.JSONWebKey, alg jose.SignatureAlgorithm) bool {
	if k.Algorithm != "" && k.Algorithm != string(alg) {
		return false
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		switch alg {
		case jose.RS256, jose.RS384, jose.RS512, jose.PS256:
			return true
		}
	case *ecdsa.PublicKey:
		return alg == jose.ES256 && pub.Curve == elliptic.P256() || alg == jose.ES384 && pub.Curve == elliptic.P384()
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	}
	return false
}

// loadKeys returns the cached key set, fetching it the first time.
func (j *JWT) loadKeys(ctx context.Context) ([]jose.JSONWebKey, error) {
	j.mu.Lock()
	if j.loaded {
		keys := j.keys
		j.mu.Unlock()
		return keys, nil
	}
	j.mu.Unlock()
	return j.refresh(ctx)
}

// refresh fetches the key set again and returns the set then cached. When a
// fetch is under way it waits for that one instead (single flight); when
// the last fetch started less than the minimum interval ago it fetches
// nothing. A failed fetch keeps the cached set; with no cached set it is
// ErrJWKSUnavailable.
func (j *JWT) refresh(ctx context.Context) ([]jose.JSONWebKey, error) {
	j.mu.Lock()
	if done := j.inflight; done != nil {
		j.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		j.mu.Lock()
		defer j.mu.Unlock()
		return j.cached()
	}
	if !j.lastAttempt.IsZero() && j.now().Sub(j.lastAttempt) < j.minInterval {
		defer j.mu.Unlock()
		return j.cached()
	}
	done := make(chan struct{})
	j.inflight = done
	j.lastAttempt = j.now()
	j.mu.Unlock()

	keys, err := j.fetch(ctx)

	j.mu.Lock()
	defer j.mu.Unlock()
	if err == nil {
		j.keys, j.loaded = keys, true
	} else {
		j.log.Warn("jwks fetch failed", "url", j.cfg.JWKSURL, "err", err, "keeping_cached_set", j.loaded)
	}
	j.lastErr = err
	j.inflight = nil
	close(done)
	return j.cached()
}

// cached returns the cached set; j.mu must be held.
func (j *JWT) cached() ([]jose.JSONWebKey, error) {
	if j.loaded {
		return j.keys, nil
	}
	return nil, fmt.Errorf("%w: %v", ErrJWKSUnavailable, j.lastErr)
}

// fetch GETs the key set and keeps its usable signing keys: public RSA,
// EC (P-256, P-384) and Ed25519 keys not marked for encryption. Keys it
// cannot read or use are skipped; a set with none left is an error.
func (j *JWT) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	// The fetch serves every waiting request, so one caller going away
	// must not cancel it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jwksFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.cfg.JWKSURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", j.cfg.JWKSURL, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", j.cfg.JWKSURL, err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("GET %s: key set is larger than %d bytes", j.cfg.JWKSURL, maxJWKSBytes)
	}
	// A jose.JSONWebKeySet, read key by key so that one key of a type this
	// build does not know does not discard the others.
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("GET %s: not a JSON Web Key Set: %w", j.cfg.JWKSURL, err)
	}
	var keys []jose.JSONWebKey
	for i, rawKey := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(rawKey); err != nil {
			j.log.Warn("jwks: skipping unreadable key", "index", i, "err", err)
			continue
		}
		if !usable(&k) {
			j.log.Debug("jwks: skipping key that cannot verify tokens", "index", i, "kid", k.KeyID)
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("GET %s: no usable signing keys in the set", j.cfg.JWKSURL)
	}
	return keys, nil
}

func usable(k *jose.JSONWebKey) bool {
	if k.Use != "" && k.Use != "sig" {
		return false
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		return true
	case *ecdsa.PublicKey:
		return pub.Curve == elliptic.P256() || pub.Curve == elliptic.P384()
	case ed25519.PublicKey:
		return len(pub) == ed25519.PublicKeySize
	}
	return false // private and symmetric keys among them
}
