package api_test

import (
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/core/coretest"
	"github.com/indigo-hq/indigo/core/httpapi"
)

// With [identity] provider = "jwt", the management API and the admin views
// admit the provider's tokens, by header or by the host's cookie, and map
// their org and role claims to permissions.
func TestJWTProviderThroughTheAPI(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		iss := coretest.NewIssuer(t)
		e := coretest.New(t, engine, func(c *config.Config, o *core.Options) {
			o.Now = time.Now // token lifetimes are checked on the host's clock
			iss.Configure(c)
		})
		const org = "acme-from-idp"
		owner := bearer(iss.Token(org, "owner", time.Hour))

		r := e.Do("GET", "/api/session", owner, nil)
		if r.Status != 200 {
			t.Fatalf("session: %d %s", r.Status, r.Body)
		}
		if s := r.JSON(t); s["org_id"] != org || s["role"] != "owner" || s["operator"] != false || s["csrf_token"] != nil {
			t.Fatalf("session = %s", r.Body)
		}
		// An org the provider vouches for is recorded on first sight, so
		// its keys can be created; the header needs no CSRF token.
		r = e.Do("POST", "/api/v2/keys", owner, map[string]any{"name": "from-jwt", "scopes": []string{"api-keys:read"}})
		if r.Status != 201 {
			t.Fatalf("create with a JWT: %d %s", r.Status, r.Body)
		}
		raw := r.JSON(t)["raw_key"].(string)
		if r := e.Do("GET", "/api/v2/me", bearer(raw), nil); r.Status != 200 || r.JSON(t)["org_id"] != org {
			t.Fatalf("the new key: %d %s", r.Status, r.Body)
		}
		if r := e.Do("GET", "/api/v2/keys", owner, nil); r.Status != 200 || len(r.JSON(t)["keys"].([]any)) != 1 {
			t.Fatalf("list with a JWT: %d %s", r.Status, r.Body)
		}
		// Another org's owner sees none of them.
		if r := e.Do("GET", "/api/v2/keys", bearer(iss.Token("other-org", "owner", time.Hour)), nil); r.Status != 200 || len(r.JSON(t)["keys"].([]any)) != 0 {
			t.Fatalf("another org's list: %d %s", r.Status, r.Body)
		}

		// Roles: a member manages nothing; admin_role makes an operator.
		member := bearer(iss.Token(org, "member", time.Hour))
		if r := e.Do("GET", "/api/v2/keys", member, nil); r.Status != 403 {
			t.Fatalf("member list: %d %s", r.Status, r.Body)
		}
		if r := e.Do("GET", "/api/admin/logs", owner, nil); r.Status != 403 {
			t.Fatalf("admin views without the admin role: %d", r.Status)
		}
		if r := e.Do("GET", "/api/admin/keys", bearer(iss.Token(org, "admin", time.Hour, coretest.IssuerAdmin)), nil); r.Status != 200 {
			t.Fatalf("admin views with the admin role: %d %s", r.Status, r.Body)
		}

		// A refused token gets the same 401 as any other bad credential.
		for name, auth := range map[string]string{
			"expired":  bearer(iss.Token(org, "owner", -time.Hour)),
			"tampered": owner[:len(owner)-4] + "AAAA",
		} {
			r := e.Do("GET", "/api/v2/keys", auth, nil)
			if r.Status != 401 || string(r.Body) != string(httpapi.UnauthorizedBody) {
				t.Errorf("%s token: %d %s", name, r.Status, r.Body)
			}
			if r := e.Do("GET", "/api/session", auth, nil); r.Status != 401 {
				t.Errorf("%s token on /api/session: %d", name, r.Status)
			}
		}
		// A token is not an API key: key-only routes refuse it.
		if r := e.Do("GET", "/api/v2/me", owner, nil); r.Status != 401 {
			t.Errorf("a JWT on a key-only route: %d", r.Status)
		}
		// No local sign-in with an external provider.
		if r := e.Do("GET", "/auth/login?token=abc", "", nil); r.Status != 404 {
			t.Errorf("local sign-in link with the jwt provider: %d", r.Status)
		}

		// Behind the host's own session cookie, writes need the CSRF token
		// that /api/session hands out.
		cookie := coretest.IssuerCookie + "=" + iss.Token(org, "owner", time.Hour)
		r = e.Do("GET", "/api/session", "", nil, "Cookie", cookie)
		csrf, _ := r.JSON(t)["csrf_token"].(string)
		if r.Status != 200 || csrf == "" {
			t.Fatalf("cookie session: %d %s", r.Status, r.Body)
		}
		body := map[string]any{"name": "cookie", "scopes": []string{}}
		if r := e.Do("POST", "/api/v2/keys", "", body, "Cookie", cookie); r.Status != 403 || r.ErrorCode() != "csrf_failed" {
			t.Fatalf("cookie write without CSRF: %d %s", r.Status, r.Body)
		}
		if r := e.Do("POST", "/api/v2/keys", "", body, "Cookie", cookie, "X-CSRF-Token", csrf); r.Status != 201 {
			t.Fatalf("cookie write with CSRF: %d %s", r.Status, r.Body)
		}
	})
}

// With the local provider no bearer is an identity: a JWT-shaped bearer is
// checked as an API key (401), even next to a valid session cookie.
func TestJWTShapedBearerWithLocalProvider(t *testing.T) {
	e := coretest.New(t, "sqlite")
	org := e.Org("A")
	cookie, _ := e.Session(org, "o@a.test", "owner", false)
	if r := e.Do("GET", "/api/v2/keys", "", nil, "Cookie", cookie); r.Status != 200 {
		t.Fatalf("the session alone: %d", r.Status)
	}
	jwtShaped := bearer("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
	if r := e.Do("GET", "/api/v2/keys", jwtShaped, nil, "Cookie", cookie); r.Status != 401 {
		t.Fatalf("a JWT-shaped bearer beside the session: %d %s", r.Status, r.Body)
	}
}
