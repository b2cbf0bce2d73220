package identity

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	testIssuer   = "https://idp.test/"
	testAudience = "indigo"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// jwksServer serves a key set that a test can swap, and counts requests.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int64

	mu     sync.Mutex
	keys   []jose.JSONWebKey
	status int
	raw    []byte        // served instead of keys when set
	gate   chan struct{} // when set, each request waits for it to close
}

func newJWKSServer(t *testing.T, keys ...jose.JSONWebKey) *jwksServer {
	s := &jwksServer{keys: keys, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		gate, status, raw := s.gate, s.status, s.raw
		set := jose.JSONWebKeySet{Keys: s.keys}
		s.mu.Unlock()
		if gate != nil {
			<-gate
		}
		if r.Method != http.MethodGet {
			http.Error(w, "want GET", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if raw != nil {
			w.Write(raw)
			return
		}
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(keys ...jose.JSONWebKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

type testKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv any
	pub  any
}

func rsaKey(t *testing.T, kid string) testKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kid: kid, alg: jose.RS256, priv: k, pub: &k.PublicKey}
}

func ecKey(t *testing.T, kid string) testKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kid: kid, alg: jose.ES256, priv: k, pub: &k.PublicKey}
}

// jwk is the public half as published in the key set.
func (k testKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.pub, KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// sign makes a compact JWS of claims with the key, with the key's kid in
// the header when it has one.
func sign(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (k testKey) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	return sign(t, k.alg, k.priv, k.kid, claims)
}

// claims are valid claims at the clock's time; edits change or (nil value)
// delete entries.
func claims(clock *fakeClock, edits map[string]any) map[string]any {
	now := clock.Now()
	c := map[string]any{
		"iss":    testIssuer,
		"aud":    testAudience,
		"sub":    "usr_42",
		"email":  "ada@example.com",
		"org_id": "org_7",
		"role":   "admin",
		"iat":    now.Unix(),
		"nbf":    now.Unix(),
		"exp":    now.Add(5 * time.Minute).Unix(),
	}
	for k, v := range edits {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

type fixture struct {
	j     *JWT
	srv   *jwksServer
	clock *fakeClock
	key   testKey
	logs  *bytes.Buffer
}

func newFixture(t *testing.T, mutate func(*JWTConfig)) *fixture {
	t.Helper()
	key := rsaKey(t, "k1")
	srv := newJWKSServer(t, key.jwk())
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	cfg := JWTConfig{
		JWKSURL: srv.URL + "/jwks.json", Issuer: testIssuer, Audience: testAudience,
		UserClaim: "sub", EmailClaim: "email", OrgClaim: "org_id", RoleClaim: "role", AdminRole: "indigo-admin",
		Cookie: "host_session", Leeway: 30 * time.Second, JWKSRefreshMinInterval: 10 * time.Second,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return &fixture{j: NewJWT(cfg, srv.Client(), clock.Now, log), srv: srv, clock: clock, key: key, logs: logs}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func bearer(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/session", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

func withCookie(name, token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/session", nil)
	r.AddCookie(&http.Cookie{Name: name, Value: token})
	return r
}

func mustResolve(t *testing.T, j *JWT, r *http.Request) *Identity {
	t.Helper()
	id, err := j.Resolve(r)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if id == nil {
		t.Fatal("Resolve: nobody signed in")
	}
	return id
}

func mustRefuse(t *testing.T, j *JWT, r *http.Request) error {
	t.Helper()
	id, err := j.Resolve(r)
	if !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("Resolve = %+v, %v; want ErrInvalidToken", id, err)
	}
	if id != nil {
		t.Fatalf("refused token still gave an identity: %+v", id)
	}
	var ite *InvalidTokenError
	if !errors.As(err, &ite) || ite.Reason == nil {
		t.Fatalf("error %v is not an *InvalidTokenError with a reason", err)
	}
	return err
}

func TestJWTValidTokenAccepted(t *testing.T) {
	f := newFixture(t, nil)
	for _, k := range []testKey{f.key, ecKey(t, "k-ec")} {
		f.srv.setKeys(f.key.jwk(), k.jwk())
		f.clock.Advance(time.Minute) // let the new EC key be fetched
		tok := k.sign(t, claims(f.clock, nil))
		id := mustResolve(t, f.j, bearer(tok))
		want := Identity{UserID: "usr_42", Email: "ada@example.com", OrgID: "org_7", Role: RoleAdmin}
		if *id != want {
			t.Fatalf("%s: identity = %+v, want %+v", k.alg, *id, want)
		}
	}
	// A token 10 s past exp is still inside the 30 s leeway.
	tok := f.key.sign(t, claims(f.clock, map[string]any{"exp": f.clock.Now().Add(-10 * time.Second).Unix()}))
	mustResolve(t, f.j, bearer(tok))
	// Lower-case scheme is accepted too.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "bearer "+tok)
	mustResolve(t, f.j, r)
	if strings.Contains(f.logs.String(), tok) {
		t.Fatal("the token was logged")
	}
}

func TestJWTNoTokenIsNobody(t *testing.T) {
	f := newFixture(t, nil)
	for name, r := range map[string]*http.Request{
		"no header":       httptest.NewRequest(http.MethodGet, "/", nil),
		"api key":         bearer("indigo_sk_live_abcdefABCDEF0123456789"),
		"basic auth":      func() *http.Request { r := bearer("x"); r.Header.Set("Authorization", "Basic dXNlcjpwdw=="); return r }(),
		"other cookie":    withCookie("indigo_session", "abc"),
		"empty cookie":    withCookie("host_session", ""),
		"four dot groups": bearer("a.b.c.d"),
	} {
		id, err := f.j.Resolve(r)
		if id != nil || err != nil {
			t.Errorf("%s: Resolve = %+v, %v; want nil, nil", name, id, err)
		}
	}
	if n := f.srv.hits.Load(); n != 0 {
		t.Fatalf("the key set was fetched %d times for requests without a token", n)
	}
}

func TestJWTRefusesBadTokens(t *testing.T) {
	f := newFixture(t, nil)
	now := f.clock.Now()
	other := rsaKey(t, "k1") // same kid, different key
	octSecret := bytes.Repeat([]byte("s"), 32)
	f.srv.setKeys(f.key.jwk(), jose.JSONWebKey{Key: octSecret, KeyID: "k-oct", Algorithm: "HS256"})
	pubDER, err := x509.MarshalPKIXPublicKey(f.key.pub)
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	cases := map[string]string{
		"expired": f.key.sign(t, claims(f.clock, map[string]any{"exp": now.Add(-31 * time.Second).Unix()})),
		"no exp":  f.key.sign(t, claims(f.clock, map[string]any{"exp": nil})),
		"not yet valid": f.key.sign(t, claims(f.clock, map[string]any{
			"nbf": now.Add(time.Minute).Unix(), "exp": now.Add(time.Hour).Unix()})),
		"issued in the future": f.key.sign(t, claims(f.clock, map[string]any{"iat": now.Add(time.Minute).Unix()})),
		"wrong audience":       f.key.sign(t, claims(f.clock, map[string]any{"aud": []string{"other", "api"}})),
		"no audience":          f.key.sign(t, claims(f.clock, map[string]any{"aud": nil})),
		"wrong issuer":         f.key.sign(t, claims(f.clock, map[string]any{"iss": "https://evil.test/"})),
		"unknown kid":          rsaKey(t, "k-unknown").sign(t, claims(f.clock, nil)),
		"wrong key, same kid":  other.sign(t, claims(f.clock, nil)),
		"alg none": b64(map[string]any{"alg": "none", "typ": "JWT", "kid": "k1"}) + "." +
			b64(claims(f.clock, nil)) + ".",
		"HS256 keyed with the public key": sign(t, jose.HS256, pubDER, "k1", claims(f.clock, nil)),
		"HS256 with a symmetric JWKS key": sign(t, jose.HS256, octSecret, "k-oct", claims(f.clock, nil)),
		"ES256 header on an RSA kid": b64(map[string]any{"alg": "ES256", "kid": "k1"}) + "." +
			b64(claims(f.clock, nil)) + "." + strings.Repeat("A", 86),
		"tampered payload": func() string {
			parts := strings.Split(f.key.sign(t, claims(f.clock, nil)), ".")
			parts[1] = b64(claims(f.clock, map[string]any{"org_id": "org_victim"}))
			return strings.Join(parts, ".")
		}(),
		"no user":           f.key.sign(t, claims(f.clock, map[string]any{"sub": nil})),
		"empty user":        f.key.sign(t, claims(f.clock, map[string]any{"sub": ""})),
		"no org":            f.key.sign(t, claims(f.clock, map[string]any{"org_id": nil})),
		"numeric org":       f.key.sign(t, claims(f.clock, map[string]any{"org_id": 7})),
		"numeric role":      f.key.sign(t, claims(f.clock, map[string]any{"role": 1})),
		"mixed role list":   f.key.sign(t, claims(f.clock, map[string]any{"role": []any{"admin", 2}})),
		"numeric email":     f.key.sign(t, claims(f.clock, map[string]any{"email": 5})),
		"garbage JWT shape": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			err := mustRefuse(t, f.j, bearer(tok))
			if strings.Contains(err.Error(), tok) {
				t.Fatal("the error holds the token")
			}
			// Disallowed algorithms are refused by the allow-list, when
			// parsing, before any key is looked at.
			if strings.HasPrefix(name, "alg none") || strings.HasPrefix(name, "HS256") {
				if !strings.Contains(err.Error(), "parse:") || !strings.Contains(err.Error(), "algorithm") {
					t.Fatalf("refused, but not by the algorithm allow-list: %v", err)
				}
			}
		})
	}
	if strings.Contains(f.logs.String(), cases["expired"]) {
		t.Fatal("a token was logged")
	}
	if !strings.Contains(f.logs.String(), "jwt refused") {
		t.Fatalf("refusals were not logged at debug level: %s", f.logs.String())
	}
	// The same claims under the right key are fine, so each case above
	// failed for its own reason.
	mustResolve(t, f.j, bearer(f.key.sign(t, claims(f.clock, nil))))
	// A malformed cookie is refused too.
	mustRefuse(t, f.j, withCookie("host_session", "not-a-jwt"))
}

func TestJWTKidlessToken(t *testing.T) {
	// The set holds exactly one key: a token without kid uses it.
	f := newFixture(t, nil)
	noKid := f.key
	noKid.kid = ""
	mustResolve(t, f.j, bearer(noKid.sign(t, claims(f.clock, nil))))

	// Two keys: a token without kid is refused, and causes no refetch.
	g := newFixture(t, nil)
	g.srv.setKeys(g.key.jwk(), rsaKey(t, "k2").jwk())
	noKid = g.key
	noKid.kid = ""
	g.clock.Advance(time.Hour)
	mustRefuse(t, g.j, bearer(noKid.sign(t, claims(g.clock, nil))))
	g.clock.Advance(time.Hour)
	mustRefuse(t, g.j, bearer(noKid.sign(t, claims(g.clock, nil))))
	if n := g.srv.hits.Load(); n != 1 {
		t.Fatalf("kid-less tokens made %d fetches, want 1", n)
	}
}

func TestJWTUnknownKidRefetchesOncePerInterval(t *testing.T) {
	f := newFixture(t, nil)
	mustResolve(t, f.j, bearer(f.key.sign(t, claims(f.clock, nil))))
	if n := f.srv.hits.Load(); n != 1 {
		t.Fatalf("first use: %d fetches, want 1", n)
	}
	mustResolve(t, f.j, bearer(f.key.sign(t, claims(f.clock, nil))))
	if n := f.srv.hits.Load(); n != 1 {
		t.Fatalf("a known kid refetched: %d fetches", n)
	}
	f.clock.Advance(11 * time.Second)
	mustRefuse(t, f.j, bearer(rsaKey(t, "ghost-1").sign(t, claims(f.clock, nil))))
	if n := f.srv.hits.Load(); n != 2 {
		t.Fatalf("unknown kid: %d fetches, want 2 (one refetch)", n)
	}
	f.clock.Advance(5 * time.Second)
	mustRefuse(t, f.j, bearer(rsaKey(t, "ghost-2").sign(t, claims(f.clock, nil))))
	if n := f.srv.hits.Load(); n != 2 {
		t.Fatalf("second unknown kid within the interval refetched: %d fetches", n)
	}
	f.clock.Advance(6 * time.Second)
	mustRefuse(t, f.j, bearer(rsaKey(t, "ghost-3").sign(t, claims(f.clock, nil))))
	if n := f.srv.hits.Load(); n != 3 {
		t.Fatalf("unknown kid after the interval: %d fetches, want 3", n)
	}
}

func TestJWTKeyRotation(t *testing.T) {
	f := newFixture(t, nil)
	oldTok := f.key.sign(t, claims(f.clock, nil))
	mustResolve(t, f.j, bearer(oldTok))
	if n := f.srv.hits.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}

	next := ecKey(t, "k2")
	f.srv.setKeys(next.jwk()) // the issuer rotates: k1 is gone
	f.clock.Advance(time.Minute)
	id := mustResolve(t, f.j, bearer(next.sign(t, claims(f.clock, map[string]any{"sub": "usr_rotated"}))))
	if id.UserID != "usr_rotated" {
		t.Fatalf("identity = %+v", id)
	}
	if n := f.srv.hits.Load(); n != 2 {
		t.Fatalf("rotation: %d fetches, want exactly 2 (one refetch)", n)
	}
	// The new key is cached now.
	mustResolve(t, f.j, bearer(next.sign(t, claims(f.clock, nil))))
	// A second unknown kid within the interval does not refetch; neither
	// does the old, now removed, kid.
	mustRefuse(t, f.j, bearer(rsaKey(t, "k3").sign(t, claims(f.clock, nil))))
	mustRefuse(t, f.j, bearer(f.key.sign(t, claims(f.clock, nil))))
	if n := f.srv.hits.Load(); n != 2 {
		t.Fatalf("unknown kids within the interval: %d fetches, want still 2", n)
	}
}

func TestJWTConcurrentRefetchSharesOneFetch(t *testing.T) {
	f := newFixture(t, nil)
	mustResolve(t, f.j, bearer(f.key.sign(t, claims(f.clock, nil))))

	next := rsaKey(t, "k2")
	gate := make(chan struct{})
	f.srv.mu.Lock()
	f.srv.keys = []jose.JSONWebKey{f.key.jwk(), next.jwk()}
	f.srv.gate = gate
	f.srv.mu.Unlock()
	f.clock.Advance(time.Minute)
	tok := next.sign(t, claims(f.clock, nil))

	const n = 16
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			id, err := f.j.Resolve(bearer(tok))
			if err == nil && id == nil {
				err = errors.New("nobody")
			}
			errs <- err
		})
	}
	// Hold the one fetch until it has started, give the others time to
	// queue behind it, then let it finish.
	for f.srv.hits.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a request waiting on the shared fetch failed: %v", err)
		}
	}
	if got := f.srv.hits.Load(); got != 2 {
		t.Fatalf("%d concurrent requests made %d fetches, want 1 refetch (2 in all)", n, got)
	}
}

func TestJWTRoleAndOrgClaims(t *testing.T) {
	f := newFixture(t, nil)
	cases := []struct {
		name     string
		edits    map[string]any
		role     string
		operator bool
	}{
		{"owner string", map[string]any{"role": "owner"}, RoleOwner, false},
		{"admin string", map[string]any{"role": "admin"}, RoleAdmin, false},
		{"member string", map[string]any{"role": "member"}, RoleMember, false},
		{"unknown role", map[string]any{"role": "viewer"}, RoleMember, false},
		{"no role claim", map[string]any{"role": nil}, RoleMember, false},
		{"empty list", map[string]any{"role": []string{}}, RoleMember, false},
		{"list with owner wins over admin", map[string]any{"role": []string{"admin", "owner"}}, RoleOwner, false},
		{"list with admin", map[string]any{"role": []string{"viewer", "admin"}}, RoleAdmin, false},
		{"admin role only", map[string]any{"role": "indigo-admin"}, RoleMember, true},
		{"admin role in list", map[string]any{"role": []string{"owner", "indigo-admin"}}, RoleOwner, true},
		{"roles are case-sensitive", map[string]any{"role": []string{"Owner", "Indigo-Admin"}}, RoleMember, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := mustResolve(t, f.j, bearer(f.key.sign(t, claims(f.clock, c.edits))))
			if id.Role != c.role || id.Operator != c.operator || id.OrgID != "org_7" {
				t.Fatalf("identity = %+v, want role %s, operator %v, org org_7", id, c.role, c.operator)
			}
		})
	}

	// Configured claim names.
	g := newFixture(t, func(c *JWTConfig) {
		c.UserClaim, c.EmailClaim, c.OrgClaim, c.RoleClaim, c.AdminRole = "uid", "mail", "https://example.com/tenant", "groups", "ops"
	})
	tok := g.key.sign(t, claims(g.clock, map[string]any{
		"uid": "u-9", "mail": "m@example.com", "https://example.com/tenant": "org_x", "groups": []string{"ops", "admin"},
		"sub": "ignored", "email": "ignored@example.com", "org_id": "ignored", "role": "owner",
	}))
	id := mustResolve(t, g.j, bearer(tok))
	want := Identity{UserID: "u-9", Email: "m@example.com", OrgID: "org_x", Role: RoleAdmin, Operator: true}
	if *id != want {
		t.Fatalf("configured claims: identity = %+v, want %+v", *id, want)
	}
	// Email is optional.
	id = mustResolve(t, g.j, bearer(g.key.sign(t, claims(g.clock, map[string]any{"uid": "u", "https://example.com/tenant": "o"}))))
	if id.Email != "" {
		t.Fatalf("email = %q, want none", id.Email)
	}
	// With no admin_role nobody is an operator.
	h := newFixture(t, func(c *JWTConfig) { c.AdminRole = "" })
	if id := mustResolve(t, h.j, bearer(h.key.sign(t, claims(h.clock, map[string]any{"role": []string{"", "owner"}})))); id.Operator {
		t.Fatal("empty admin_role made an operator")
	}
}

func TestJWTCookieSourceAndCSRF(t *testing.T) {
	f := newFixture(t, nil)
	tokA := f.key.sign(t, claims(f.clock, nil))
	tokB := f.key.sign(t, claims(f.clock, map[string]any{"sub": "usr_other"}))

	viaHeader := mustResolve(t, f.j, bearer(tokA))
	if viaHeader.CSRFToken != "" {
		t.Fatalf("Authorization header gave CSRF token %q, want none", viaHeader.CSRFToken)
	}
	a1 := mustResolve(t, f.j, withCookie("host_session", tokA))
	a2 := mustResolve(t, f.j, withCookie("host_session", tokA))
	b := mustResolve(t, f.j, withCookie("host_session", tokB))
	if a1.CSRFToken == "" || b.CSRFToken == "" {
		t.Fatal("cookie source gave no CSRF token")
	}
	if a1.CSRFToken != a2.CSRFToken {
		t.Fatalf("CSRF token not stable for the same JWT: %q vs %q", a1.CSRFToken, a2.CSRFToken)
	}
	if a1.CSRFToken == b.CSRFToken {
		t.Fatal("two JWTs share a CSRF token")
	}
	if raw, err := base64.RawURLEncoding.DecodeString(a1.CSRFToken); err != nil || len(raw) != 32 {
		t.Fatalf("CSRF token %q is not base64url of 32 bytes", a1.CSRFToken)
	}
	if a1.UserID != "usr_42" || b.UserID != "usr_other" {
		t.Fatalf("cookie identities: %+v, %+v", a1, b)
	}
	// A second JWT provider (another host) has its own key.
	other := NewJWT(f.j.cfg, f.srv.Client(), f.clock.Now, nil)
	if id := mustResolve(t, other, withCookie("host_session", tokA)); id.CSRFToken == a1.CSRFToken {
		t.Fatal("two providers derive the same CSRF token: the key is not random")
	}
	// A JWT-shaped bearer wins over the cookie; an API key bearer does not.
	r := withCookie("host_session", tokB)
	r.Header.Set("Authorization", "Bearer "+tokA)
	if id := mustResolve(t, f.j, r); id.UserID != "usr_42" || id.CSRFToken != "" {
		t.Fatalf("bearer + cookie: %+v", id)
	}
	r = withCookie("host_session", tokB)
	r.Header.Set("Authorization", "Bearer indigo_sk_abc")
	if id := mustResolve(t, f.j, r); id.UserID != "usr_other" || id.CSRFToken != b.CSRFToken {
		t.Fatalf("api key + cookie: %+v", id)
	}
	// Without a configured cookie, the cookie is not read.
	g := newFixture(t, func(c *JWTConfig) { c.Cookie = "" })
	if id, err := g.j.Resolve(withCookie("host_session", g.key.sign(t, claims(g.clock, nil)))); id != nil || err != nil {
		t.Fatalf("unconfigured cookie was read: %+v, %v", id, err)
	}
	if strings.Contains(f.logs.String(), tokA) || strings.Contains(f.logs.String(), tokB) {
		t.Fatal("a token was logged")
	}
}

func TestJWTKeySetFailures(t *testing.T) {
	t.Run("server error", func(t *testing.T) {
		f := newFixture(t, nil)
		f.srv.mu.Lock()
		f.srv.status = http.StatusInternalServerError
		f.srv.mu.Unlock()
		tok := f.key.sign(t, claims(f.clock, nil))
		_, err := f.j.Resolve(bearer(tok))
		if !errors.Is(err, ErrJWKSUnavailable) || errors.Is(err, ErrInvalidToken) {
			t.Fatalf("err = %v, want ErrJWKSUnavailable and not ErrInvalidToken", err)
		}
		// Within the interval the failed fetch is not retried.
		if _, err := f.j.Resolve(bearer(tok)); !errors.Is(err, ErrJWKSUnavailable) || f.srv.hits.Load() != 1 {
			t.Fatalf("retry within the interval: err %v, %d fetches", err, f.srv.hits.Load())
		}
		// After it, a recovered server is used.
		f.srv.mu.Lock()
		f.srv.status = http.StatusOK
		f.srv.mu.Unlock()
		f.clock.Advance(11 * time.Second)
		mustResolve(t, f.j, bearer(tok))
	})
	t.Run("too large", func(t *testing.T) {
		f := newFixture(t, nil)
		set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{f.key.jwk()}})
		// Valid JSON, padded with whitespace past 1 MiB.
		f.srv.mu.Lock()
		f.srv.raw = append(set, bytes.Repeat([]byte(" "), 1<<20)...)
		f.srv.mu.Unlock()
		if _, err := f.j.Resolve(bearer(f.key.sign(t, claims(f.clock, nil)))); !errors.Is(err, ErrJWKSUnavailable) {
			t.Fatalf("err = %v, want ErrJWKSUnavailable", err)
		}
	})
	t.Run("failed refetch keeps the cached set", func(t *testing.T) {
		f := newFixture(t, nil)
		tok := f.key.sign(t, claims(f.clock, nil))
		mustResolve(t, f.j, bearer(tok))
		f.srv.mu.Lock()
		f.srv.status = http.StatusBadGateway
		f.srv.mu.Unlock()
		f.clock.Advance(time.Minute)
		mustRefuse(t, f.j, bearer(rsaKey(t, "k9").sign(t, claims(f.clock, nil))))
		if f.srv.hits.Load() != 2 {
			t.Fatalf("%d fetches, want 2", f.srv.hits.Load())
		}
		mustResolve(t, f.j, bearer(tok))
	})
	t.Run("unusable keys skipped", func(t *testing.T) {
		f := newFixture(t, nil)
		priv := jose.JSONWebKey{Key: f.key.priv, KeyID: "k-private", Algorithm: "RS256"}
		enc := jose.JSONWebKey{Key: f.key.pub, KeyID: "k1", Algorithm: "RSA-OAEP", Use: "enc"}
		f.srv.setKeys(enc, priv, f.key.jwk())
		mustResolve(t, f.j, bearer(f.key.sign(t, claims(f.clock, nil))))
		f.j.mu.Lock()
		n := len(f.j.keys)
		f.j.mu.Unlock()
		if n != 1 {
			t.Fatalf("cached %d keys, want only the public signing key", n)
		}
	})
	t.Run("cancelled request does not cancel the shared fetch", func(t *testing.T) {
		f := newFixture(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r := bearer(f.key.sign(t, claims(f.clock, nil))).WithContext(ctx)
		if _, err := f.j.Resolve(r); err != nil {
			t.Fatalf("fetch led by a cancelled request: %v", err)
		}
	})
}
