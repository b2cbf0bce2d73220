package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/indigo-hq/indigo/core/apikey"
	"github.com/indigo-hq/indigo/core/coretest"
	"github.com/indigo-hq/indigo/db"
)

// The management bodies FuzzManagementJSON sends, by the op byte.
var manageOps = []struct{ name, method, path string }{
	{"update", "PATCH", "/api/v2/keys/ID"},
	{"scopes", "PUT", "/api/v2/keys/ID/scopes"},
	{"roll", "POST", "/api/v2/keys/ID/roll"},
	{"verify", "POST", "/api/v2/keys/verify"},
}

// FuzzManagementJSON sends a fuzzed body to update, updateScopes, roll or
// verify, acting on a fresh key (scopes api-keys:read) of the caller's org,
// on a host on SQLite (and PostgreSQL when one is set up). In a verify
// body, KEY stands for that key. Whatever the body: the answer is never a
// 5xx, is JSON, and an error has a code and a message; a body that is not
// JSON is never accepted; a refused change leaves the key as it was; an
// accepted one is what the key reads back as, and did what was asked
// (name, enabled, metadata and rate limit; the scopes; a successor with the
// same scopes and a key that parses; verify's valid matching its code and
// the key's real scopes).
func FuzzManagementJSON(f *testing.F) {
	for _, s := range []struct {
		op   uint8
		body string
	}{
		{0, `{"name":"renamed","enabled":false,"metadata":{"team":"x"},"rate_limit":{"limit":5,"window_seconds":60}}`},
		{0, `{"name":"  padded  ","rate_limit":null,"remaining":3,"refill":{"amount":3,"interval_seconds":60}}`},
		{0, `{"expires_at":"2030-01-01T00:00:00Z","metadata":null}`},
		{0, `{"name":null}`}, {0, `{"enabled":null}`}, {0, `{"name":""}`}, {0, `{"rate_limit":{"limit":0,"window_seconds":60}}`},
		{0, `{"metadata":[1]}`}, {0, `{"bogus":1}`}, {0, `{}`}, {0, ``}, {0, `{"name":"a"}{"name":"b"}`},
		{1, `{"scopes":["api-keys:write","api-keys:read","api-keys:write"]}`},
		{1, `{"scopes":null}`}, {1, `{"scopes":[]}`}, {1, `{"scopes":["nope:read"]}`}, {1, `{}`}, {1, `{"scopes":"api-keys:read"}`},
		{2, ``}, {2, `{}`}, {2, `{"grace_seconds":0}`}, {2, `{"grace_seconds":3600}`}, {2, `{"grace_seconds":-1}`},
		{2, `{"grace_seconds":null}`}, {2, `{"grace_seconds":1e99}`},
		{3, `{"key":"KEY"}`}, {3, `{"key":"KEY","scopes":["api-keys:read"]}`}, {3, `{"key":"KEY","scopes":["api-keys:write"]}`},
		{3, `{"key":"KEY","scopes":[]}`}, {3, `{"key":"KEYx"}`}, {3, `{"key":"indigo_sk_0000000000000000000000000000"}`},
		{3, `{"key":""}`}, {3, `{}`}, {3, `{"key":"KEY","scopes":null}`},
	} {
		f.Add(s.op, []byte(s.body))
	}
	engines := []string{db.SQLite}
	if os.Getenv("INDIGO_TEST_POSTGRES_URL") != "" {
		engines = append(engines, db.Postgres)
	}
	type host struct {
		e    *coretest.Env
		org  string
		auth string
	}
	var hosts []host
	for _, engine := range engines {
		e := coretest.New(f, engine)
		org := e.Org("A")
		_, raw := e.Superkey(org)
		hosts = append(hosts, host{e, org, bearer(raw)})
	}
	f.Fuzz(func(t *testing.T, opByte uint8, body []byte) {
		op := manageOps[int(opByte)%len(manageOps)]
		for i, h := range hosts {
			target, raw, err := h.e.Host.Keys.Create(context.Background(), h.org, apikey.Actor{ID: "fuzz"},
				apikey.CreateInput{Name: "target", Scopes: []string{"api-keys:read"}})
			if err != nil {
				t.Fatal(err)
			}
			sent := body
			if op.name == "verify" {
				sent = bytes.ReplaceAll(body, []byte("KEY"), []byte(raw))
			}
			handler := h.e.Host.Handler()
			getKey := func(id string) (int, map[string]any) {
				r := serveJSON(handler, "GET", "/api/v2/keys/"+id, h.auth, nil)
				var m struct{ Key map[string]any }
				_ = json.Unmarshal(r.Body.Bytes(), &m)
				delete(m.Key, "last_used_at") // a verify uses the key
				return r.Code, m.Key
			}
			_, before := getKey(target.ID)
			r := serveJSON(handler, op.method, strings.Replace(op.path, "ID", target.ID, 1), h.auth, sent)
			where := engines[i] + " " + op.name
			var resp map[string]any
			if r.Code >= 500 || !utf8.Valid(r.Body.Bytes()) || json.Unmarshal(r.Body.Bytes(), &resp) != nil {
				t.Fatalf("%s: body %q: %d %q", where, sent, r.Code, r.Body)
			}
			status, after := getKey(target.ID)
			if status != 200 {
				t.Fatalf("%s: body %q: the key reads back %d", where, sent, status)
			}
			if r.Code >= 300 {
				e, _ := resp["error"].(map[string]any)
				if code, _ := e["code"].(string); code == "" || e["message"] == "" || e["message"] == nil {
					t.Fatalf("%s: body %q: error %s has no code or message", where, sent, r.Body)
				}
				if !reflect.DeepEqual(before, after) {
					t.Fatalf("%s: body %q was refused (%d %s), but the key changed:\n%v\n%v", where, sent, r.Code, r.Body, before, after)
				}
				continue
			}
			if !json.Valid(sent) && !(op.name == "roll" && len(sent) == 0) {
				t.Fatalf("%s: accepted a body that is not JSON: %q: %d %s", where, sent, r.Code, r.Body)
			}
			var in map[string]json.RawMessage
			_ = json.Unmarshal(sent, &in)
			switch op.name {
			case "update", "scopes":
				delete(resp["key"].(map[string]any), "last_used_at")
				if !reflect.DeepEqual(resp["key"], after) {
					t.Fatalf("%s: body %q: answered\n%v\nbut reads back\n%v", where, sent, resp["key"], after)
				}
				checkAsked(t, where, sent, in, after)
			case "roll":
				next, _ := resp["key"].(map[string]any)
				rawKey, _ := resp["raw_key"].(string)
				prev, _ := resp["previous"].(map[string]any)
				if _, ok := apikey.Parse(rawKey); !ok || prev["id"] != target.ID || next["id"] == target.ID ||
					!reflect.DeepEqual(next["scopes"], before["scopes"]) || next["name"] != before["name"] {
					t.Fatalf("%s: body %q: rolled to %s", where, sent, r.Body)
				}
				if s := after["status"]; s != "expiring" && s != "expired" {
					t.Fatalf("%s: body %q: the rolled key is %v", where, sent, s)
				}
				if st, got := getKey(next["id"].(string)); st != 200 || got["status"] != "active" {
					t.Fatalf("%s: body %q: the successor reads back %d %v", where, sent, st, got)
				}
			case "verify":
				var v struct {
					Key    *string
					Scopes *[]string
				}
				_ = json.Unmarshal(sent, &v)
				valid, code := resp["valid"], resp["code"]
				if valid != (code == "valid") {
					t.Fatalf("%s: body %q: valid %v with code %v", where, sent, valid, code)
				}
				want := v.Key != nil && *v.Key == raw
				if want && v.Scopes != nil {
					for _, s := range *v.Scopes {
						want = want && s == "api-keys:read"
					}
				}
				if valid != want {
					t.Fatalf("%s: body %q: valid %v, want %v: %s", where, sent, valid, want, r.Body)
				}
				if !reflect.DeepEqual(before, after) {
					t.Fatalf("%s: verifying changed the key:\n%v\n%v", where, before, after)
				}
			}
		}
	})
}

// checkAsked checks that an accepted update or scopes body did what it
// asked, field by field, where the request gives the answer outright.
func checkAsked(t *testing.T, where string, sent []byte, in map[string]json.RawMessage, key map[string]any) {
	t.Helper()
	field := func(name string, v any) bool {
		raw, ok := in[name]
		return ok && json.Unmarshal(raw, v) == nil
	}
	var name string
	if field("name", &name) && key["name"] != strings.TrimSpace(name) {
		t.Fatalf("%s: body %q: name is %v", where, sent, key["name"])
	}
	var enabled bool
	if field("enabled", &enabled) && key["enabled"] != enabled {
		t.Fatalf("%s: body %q: enabled is %v", where, sent, key["enabled"])
	}
	var meta map[string]any
	if field("metadata", &meta) {
		if meta == nil {
			meta = map[string]any{}
		}
		if !reflect.DeepEqual(key["metadata"], meta) {
			t.Fatalf("%s: body %q: metadata is %v", where, sent, key["metadata"])
		}
	}
	var rl *struct {
		Limit         float64 `json:"limit"`
		WindowSeconds float64 `json:"window_seconds"`
	}
	if field("rate_limit", &rl) {
		got, _ := key["rate_limit"].(map[string]any)
		if (rl == nil) != (got == nil) || rl != nil && (got["limit"] != rl.Limit || got["window_seconds"] != rl.WindowSeconds) {
			t.Fatalf("%s: body %q: rate_limit is %v", where, sent, key["rate_limit"])
		}
	}
	var scopes *[]string
	if field("scopes", &scopes) {
		var want any // null: a superkey
		if scopes != nil {
			s := slices.Clone(*scopes)
			slices.Sort(s)
			var list []any
			for _, id := range slices.Compact(s) {
				list = append(list, id)
			}
			if list == nil {
				list = []any{}
			}
			want = list
		}
		if !reflect.DeepEqual(key["scopes"], want) {
			t.Fatalf("%s: body %q: scopes are %v", where, sent, key["scopes"])
		}
	}
}
