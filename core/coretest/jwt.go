package coretest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/indigo-hq/indigo/core/config"
)

// Issuer is an identity provider for tests: an ES256 key pair and its JWKS
// endpoint on loopback.
type Issuer struct {
	t   testing.TB
	key *ecdsa.PrivateKey
	srv *httptest.Server
}

// Issuer constants that Configure writes into the host's config.
const (
	IssuerName     = "https://idp.test"
	IssuerAudience = "indigo"
	IssuerAdmin    = "platform-ops"
	IssuerCookie   = "host_session"
)

// NewIssuer starts the JWKS endpoint; it stops at cleanup.
func NewIssuer(t testing.TB) *Issuer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	iss := &Issuer{t: t, key: k}
	iss.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}}
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(iss.srv.Close)
	return iss
}

// Configure points a host at this issuer: provider jwt, role claim
// "roles", admin role IssuerAdmin and the cookie IssuerCookie.
func (iss *Issuer) Configure(c *config.Config) {
	c.Identity.Provider = "jwt"
	c.Identity.JWT.JWKSURL = iss.srv.URL
	c.Identity.JWT.Issuer = IssuerName
	c.Identity.JWT.Audience = IssuerAudience
	c.Identity.JWT.RoleClaim = "roles"
	c.Identity.JWT.AdminRole = IssuerAdmin
	c.Identity.JWT.Cookie = IssuerCookie
}

// Token signs a token for a user with role in org, valid for ttl (negative:
// already expired), with any further roles.
func (iss *Issuer) Token(org, role string, ttl time.Duration, more ...string) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: iss.key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		iss.t.Fatal(err)
	}
	claims := map[string]any{
		"iss": IssuerName, "aud": IssuerAudience, "sub": "user-" + role, "email": role + "@idp.test",
		"org_id": org, "roles": append([]string{role}, more...),
		// wall clock: hosts that take these tokens verify them on the real clock
		"exp": time.Now().Add(ttl).Unix(), "iat": time.Now().Add(-time.Minute).Unix(),
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		iss.t.Fatal(err)
	}
	sig, err := signer.Sign(payload)
	if err != nil {
		iss.t.Fatal(err)
	}
	s, err := sig.CompactSerialize()
	if err != nil {
		iss.t.Fatal(err)
	}
	return s
}
