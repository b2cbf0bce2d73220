package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core/apikey"
	"github.com/indigo-hq/indigo/core/httpapi"
)

func TestParseBearer(t *testing.T) {
	key, _ := apikey.Generate("indigo_sk")
	cases := []struct {
		header string
		want   string
		ok     bool
	}{
		{"Bearer " + key, key, true},
		{"bearer " + key, key, true},
		{"BEARER " + key, key, true},
		{"Bearer  " + key, "", false},
		{"Bearer " + key + " ", "", false},
		{"Bearer\t" + key, "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Basic " + key, "", false},
		{"Token " + key, "", false},
		{key, "", false},
		{"Bearer " + key + "\x00", "", false},
		{"Bearer " + strings.Repeat("a", 500), "", false},
	}
	for _, c := range cases {
		got, ok := parseBearer(c.header)
		if ok != c.ok || got != c.want {
			t.Errorf("parseBearer(%q) = %q, %v; want %q, %v", c.header, got, ok, c.want, c.ok)
		}
	}
}

// FuzzParseBearer: whatever the header, the parser never panics, and what it
// accepts is exactly the visible-ASCII token after "Bearer ".
func FuzzParseBearer(f *testing.F) {
	key, _ := apikey.Generate("indigo_sk")
	for _, s := range []string{"Bearer " + key, "bearer x", "Bearer ", "Bearer  x", "Basic abc", "", "Bearer \xff\xfe", "Bearer a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := parseBearer(h)
		if !ok {
			if tok != "" {
				t.Fatalf("refused header returned token %q", tok)
			}
			return
		}
		if !strings.EqualFold(h[:7], "bearer ") || h[7:] != tok || tok == "" || len(tok) > apikey.MaxKeyLen {
			t.Fatalf("accepted %q as %q", h, tok)
		}
		for i := 0; i < len(tok); i++ {
			if tok[i] <= ' ' || tok[i] >= 0x7f {
				t.Fatalf("accepted a token with byte %#x", tok[i])
			}
		}
	})
}

// FuzzCreateKeyJSON: any body either decodes into a create request or is
// refused with a 4xx API error; it never panics, and what is accepted
// respects the rules that parsing owns.
func FuzzCreateKeyJSON(f *testing.F) {
	for _, s := range []string{
		`{"name":"a"}`,
		`{"name":"a","scopes":null}`,
		`{"name":"a","scopes":[]}`,
		`{"name":"a","scopes":["api-keys:read"],"expires_in_seconds":60}`,
		`{"name":"a","expires_at":"2030-01-01T00:00:00Z","expires_in_seconds":5}`,
		`{"name":"a","rate_limit":{"limit":5,"window_seconds":60},"remaining":3,"refill":{"amount":3,"interval_seconds":60}}`,
		`{"name":"a","metadata":{"team":"x"},"prefix":"acme"}`,
		`{"name":"a","unknown":1}`,
		`{"name":1}`,
		`{"name":"a"} {"name":"b"}`,
		`[]`, `null`, ``, `{`, `{"scopes":"x"}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		var body createBody
		err := httpapi.DecodeStrict(bytes.NewReader(data), &body)
		if err == nil {
			var in apikey.CreateInput
			in, err = ParseCreate(body, now)
			if err == nil {
				if in.ExpiresAt != nil && body.ExpiresInSeconds.Set && !body.ExpiresInSeconds.Null && !in.ExpiresAt.After(now) {
					t.Fatalf("accepted a non-positive expires_in_seconds: %s", data)
				}
				if in.Superkey && in.Scopes != nil {
					t.Fatalf("a superkey with a scope list: %s", data)
				}
				if !json.Valid(data) {
					t.Fatalf("accepted invalid JSON: %q", data)
				}
				return
			}
		}
		e, ok := err.(*httpapi.Error)
		if !ok || e.Status < 400 || e.Status >= 500 || e.Code == "" || e.Message == "" {
			t.Fatalf("body %q: error %#v is not a 4xx API error", data, err)
		}
		if e.Status != http.StatusBadRequest && e.Status != http.StatusUnprocessableEntity && e.Status != http.StatusRequestEntityTooLarge {
			t.Fatalf("body %q: unexpected status %d", data, e.Status)
		}
	})
}
