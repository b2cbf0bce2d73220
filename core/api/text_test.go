package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/core/coretest"
	"github.com/indigo-hq/indigo/core/identity"
	"github.com/indigo-hq/indigo/db"
)

// Text that is not valid UTF-8, or that holds a NUL character, is refused
// with one 400 wherever it comes in (a JSON string at any depth, a path
// segment, a query parameter, a data header), on both engines, before any
// query runs: PostgreSQL used to answer 500 (SQLSTATE 22021), and SQLite
// stored the bytes and listed them in a body that was not UTF-8.
func TestInvalidTextIsRefused(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		e := coretest.New(t, engine)
		org := e.Org("A")
		_, raw := e.Superkey(org)
		k, _ := e.Scoped(org)
		op, _ := e.Session(org, "operator@example.com", "owner", true)
		auth := bearer(raw)
		keyPath := "/api/v2/keys/" + k.ID
		cases := []struct {
			method, path, body string
			header             []string
		}{
			// JSON strings, escaped or raw, at any depth, keys included.
			{"POST", "/api/v2/keys", `{"name":"a\u0000b"}`, nil},
			{"POST", "/api/v2/keys", "{\"name\":\"a\xffb\"}", nil},
			{"POST", "/api/v2/keys", `{"name":"ok","metadata":{"k":"\u0000"}}`, nil},
			{"POST", "/api/v2/keys", "{\"name\":\"ok\",\"metadata\":{\"k\":\"\xff\"}}", nil},
			{"POST", "/api/v2/keys", "{\"name\":\"ok\",\"metadata\":{\"k\":\"\xc3\x28\"}}", nil},
			{"POST", "/api/v2/keys", `{"name":"ok","metadata":{"a":[1,{"\u0000":true}]}}`, nil},
			{"POST", "/api/v2/keys", `{"name":"ok","metadata":{"k":"\ud800"}}`, nil},
			{"POST", "/api/v2/keys", `{"name":"ok","scopes":["api-keys:read\u0000"]}`, nil},
			{"POST", "/api/v2/keys", "{\"name\":\"ok\",\"prefix\":\"\xc3\x28\"}", nil},
			{"PATCH", keyPath, `{"name":"a\u0000b"}`, nil},
			{"PATCH", keyPath, "{\"metadata\":{\"k\":\"\xff\"}}", nil},
			{"PUT", keyPath + "/scopes", `{"scopes":["\u0000"]}`, nil},
			{"POST", keyPath + "/roll", `{"\u0000":1}`, nil},
			{"POST", "/api/v2/keys/verify", "{\"key\":\"\xff\"}", nil},
			// Path ids, as mux hands them over once decoded.
			{"GET", "/api/v2/keys/%00", "", nil},
			{"GET", "/api/v2/keys/%ff", "", nil},
			{"GET", "/api/v2/keys/%c3%28", "", nil},
			{"GET", "/api/v2/keys/%ff/stats", "", nil},
			{"PATCH", "/api/v2/keys/%00", `{"name":"x"}`, nil},
			{"PUT", "/api/v2/keys/%c3%28/scopes", `{"scopes":[]}`, nil},
			{"POST", "/api/v2/keys/%ff/roll", "", nil},
			{"DELETE", "/api/v2/keys/%00", "", nil},
			// Query parameters, names and values.
			{"GET", "/api/v2/keys?limit=%ff", "", nil},
			{"GET", "/api/v2/keys?cursor=%00", "", nil},
			{"GET", "/api/v2/keys?x%c3%28=1", "", nil},
			{"GET", "/api/admin/keys?key_id=%00", "", []string{"Cookie", op}},
			{"GET", "/api/admin/keys?org_id=%ff", "", []string{"Cookie", op}},
			{"GET", "/api/admin/logs?route=%c3%28", "", []string{"Cookie", op}},
			{"GET", "/api/admin/audit?action=%ff", "", []string{"Cookie", op}},
			{"GET", "/auth/login?token=%00", "", nil},
			// Headers the host hands on as data.
			{"GET", "/api/v2/me", "", []string{"Idempotency-Key", "\xff"}},
		}
		for _, c := range cases {
			var body any
			if c.body != "" {
				body = c.body
			}
			r := e.Do(c.method, c.path, auth, body, c.header...)
			if r.Status != 400 || r.ErrorCode() != "invalid_text" || !utf8.Valid(r.Body) {
				t.Errorf("%s %s %q: %d %s; want 400 invalid_text", c.method, c.path, c.body, r.Status, r.Body)
			}
		}
		if strings.Contains(e.Logs.String(), "request failed") {
			t.Errorf("the host logged a failed request:\n%s", e.Logs.String())
		}
		r := e.Do("GET", "/api/v2/keys", auth, nil)
		if r.Status != 200 || !utf8.Valid(r.Body) {
			t.Fatalf("list: %d, valid UTF-8 %v", r.Status, utf8.Valid(r.Body))
		}
		if n := len(r.JSON(t)["keys"].([]any)); n != 2 {
			t.Errorf("the org holds %d keys after the refusals, want 2: %s", n, r.Body)
		}
		if got := e.Do("GET", keyPath, auth, nil).JSON(t)["key"].(map[string]any); got["name"] != k.Name || string(mustJSON(t, got["metadata"])) != "{}" {
			t.Errorf("a refused change reached the key: %v", got)
		}
	})
}

// Any valid text goes through as it was sent: characters beyond ASCII,
// escaped or not, surrogate pairs, and a backslash before "u0000".
func TestValidTextRoundTrips(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		e := coretest.New(t, engine)
		org := e.Org("A")
		_, raw := e.Superkey(org)
		body := `{"name":"café ✓ 😀 \u00e9\ud83d\ude00","metadata":{"k\u00e9":"\\u0000 \ud83d\ude00 \t","n":[1,{"x":"✓"}]}}`
		r := e.Do("POST", "/api/v2/keys", bearer(raw), body)
		if r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		id := r.JSON(t)["key"].(map[string]any)["id"].(string)
		got := e.Do("GET", "/api/v2/keys/"+id, bearer(raw), nil).JSON(t)["key"].(map[string]any)
		var want map[string]any
		if err := json.Unmarshal([]byte(body), &want); err != nil {
			t.Fatal(err)
		}
		if got["name"] != want["name"] || string(mustJSON(t, got["metadata"])) != string(mustJSON(t, want["metadata"])) {
			t.Fatalf("round trip: name %q metadata %s; want %q %s", got["name"], mustJSON(t, got["metadata"]), want["name"], mustJSON(t, want["metadata"]))
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// An external identity provider's answer is stored (the org on first
// sight, the user in the audit log) and queried by: one that is not text
// is refused like a bad token, instead of a 500 on PostgreSQL.
func TestIdentityThatIsNotTextIsUnauthorized(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		e := coretest.New(t, engine, func(_ *config.Config, o *core.Options) {
			o.Resolver = identity.ResolverFunc(func(r *http.Request) (*identity.Identity, error) {
				return &identity.Identity{UserID: r.Header.Get("X-User"), OrgID: r.Header.Get("X-Org"), Role: identity.RoleOwner}, nil
			})
		})
		for _, h := range [][]string{{"X-User", "u", "X-Org", "org\xff"}, {"X-User", "u\xc3\x28", "X-Org", "org_a"}} {
			if r := e.Do("POST", "/api/v2/keys", "", map[string]any{"name": "k"}, h...); r.Status != 401 {
				t.Errorf("identity %q: %d %s; want 401", h, r.Status, r.Body)
			}
		}
		if r := e.Do("POST", "/api/v2/keys", "", map[string]any{"name": "k"}, "X-User", "u", "X-Org", "org_a"); r.Status != 201 {
			t.Errorf("a text identity: %d %s", r.Status, r.Body)
		}
	})
}

// With trust_proxy on, X-Forwarded-For names the caller in the audit log:
// a value that is not an address is not used (it was stored as it came on
// SQLite, and was a 500 on PostgreSQL when it was not text).
func TestForwardedForThatIsNotAnAddress(t *testing.T) {
	coretest.Engines(t, func(t *testing.T, engine string) {
		e := coretest.New(t, engine, func(c *config.Config, _ *core.Options) { c.Server.TrustProxy = true })
		org := e.Org("A")
		_, raw := e.Superkey(org)
		for _, c := range []struct{ xff, want string }{
			{"\xff, 10.0.0.1", "127.0.0.1"},
			{"not an address", "127.0.0.1"},
			{" 203.0.113.7 , 10.0.0.1", "203.0.113.7"},
			{"2001:DB8::1", "2001:db8::1"},
		} {
			k, _ := e.Scoped(org)
			if r := e.Do("DELETE", "/api/v2/keys/"+k.ID, bearer(raw), nil, "X-Forwarded-For", c.xff); r.Status != 200 {
				t.Errorf("revoke with X-Forwarded-For %q: %d %s", c.xff, r.Status, r.Body)
				continue
			}
			rows, err := e.Host.Keys.Store().Q().AdminListAudit(context.Background(), db.AdminListAuditParams{KeyID: k.ID, Action: "key.revoke", Lim: 1})
			if err != nil || len(rows) != 1 || rows[0].SourceIp != c.want {
				t.Errorf("X-Forwarded-For %q: audit %v, %v; want source_ip %q", c.xff, rows, err, c.want)
			}
		}
	})
}

// A key whose metadata SQLite stored with invalid bytes, before requests
// were checked, is listed in a body that is UTF-8 (U+FFFD for each bad
// byte). PostgreSQL never stored such bytes.
func TestStoredInvalidMetadataIsListedAsUTF8(t *testing.T) {
	e := coretest.New(t, db.SQLite)
	org := e.Org("A")
	_, raw := e.Superkey(org)
	k, _ := e.Scoped(org)
	if _, err := e.Host.Keys.Store().DB.Exec(`UPDATE saas_api_keys SET metadata = ? WHERE id = ?`, "{\"k\":\"a\xffb\xc3\x28\"}", k.ID); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/v2/keys", "/api/v2/keys/" + k.ID} {
		r := e.Do("GET", path, bearer(raw), nil)
		if r.Status != 200 || !utf8.Valid(r.Body) || !strings.Contains(string(r.Body), "\"metadata\":{\"k\":\"a\uFFFDb\uFFFD(\"}") {
			t.Errorf("GET %s: %d %q", path, r.Status, r.Body)
		}
	}
}
