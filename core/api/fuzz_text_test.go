package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/indigo-hq/indigo/core/coretest"
	"github.com/indigo-hq/indigo/db"
)

// FuzzJSONBody sends POST /api/v2/keys with a fuzzed name and metadata, as
// raw bytes, to a host on SQLite (and on PostgreSQL when one is set up).
// Whatever the bytes, the answer is never a 5xx and is UTF-8; a body that
// is certainly not storable text is a 400 invalid_text, one that certainly
// is never is; and what is accepted reads back as it was sent.
func FuzzJSONBody(f *testing.F) {
	for _, s := range [][2]string{
		{`k`, `{"team":"x"}`},
		{`café ✓ 😀`, `{"k\u00e9":"\ud83d\ude00","n":[1,2.5,true,null,{"x":"\\u0000"}]}`},
		{`a\u0000b`, `null`},
		{`k`, `{"v":"\u0000"}`},
		{`k`, `{"v":[{"\u0000":1}]}`},
		{`k`, `{"v":"\ud800"}`},
		{`k`, `{"v":"\udc00\ud800"}`},
		{"a\xffb", `{}`},
		{`k`, "{\"v\":\"\xc3\x28\"}"},
		{`k`, "{\"v\":\"\x00\"}"},
		{`k`, `{"v":"\uFFFD"}`},
		{`k`, `[1]`},
		{`k","x":"y`, `{}`},
	} {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	engines := []string{db.SQLite}
	if os.Getenv("INDIGO_TEST_POSTGRES_URL") != "" {
		engines = append(engines, db.Postgres)
	}
	type host struct {
		h    http.Handler
		auth string
	}
	var hosts []host
	for _, engine := range engines {
		e := coretest.New(f, engine)
		_, raw := e.Superkey(e.Org("A"))
		hosts = append(hosts, host{e.Host.Handler(), bearer(raw)})
	}
	f.Fuzz(func(t *testing.T, name, meta []byte) {
		body := slicesConcat([]byte(`{"name":"`), name, []byte(`","metadata":`), meta, []byte(`}`))
		bad, good := judgeText(body)
		for i, h := range hosts {
			r := serveJSON(h.h, "POST", "/api/v2/keys", h.auth, body)
			code := errorCode(r.Body.Bytes())
			switch {
			case r.Code >= 500 || !utf8.Valid(r.Body.Bytes()):
				t.Fatalf("%s: body %q: %d %q", engines[i], body, r.Code, r.Body)
			case bad && (r.Code != 400 || code != "invalid_text"):
				t.Fatalf("%s: body %q is not storable text, answered %d %s", engines[i], body, r.Code, r.Body)
			case good && code == "invalid_text":
				t.Fatalf("%s: body %q is valid text, answered %s", engines[i], body, r.Body)
			case r.Code != 201:
				continue
			}
			var sent struct {
				Name     string
				Metadata map[string]any
			}
			if err := json.Unmarshal(body, &sent); err != nil {
				t.Fatalf("%s: body %q accepted: %v", engines[i], body, err)
			}
			var created struct{ Key struct{ ID string } }
			_ = json.Unmarshal(r.Body.Bytes(), &created)
			g := serveJSON(h.h, "GET", "/api/v2/keys/"+created.Key.ID, h.auth, nil)
			var got struct {
				Key struct {
					Name     string
					Metadata map[string]any
				}
			}
			if g.Code != 200 || !utf8.Valid(g.Body.Bytes()) || json.Unmarshal(g.Body.Bytes(), &got) != nil {
				t.Fatalf("%s: reading back %q: %d %q", engines[i], body, g.Code, g.Body)
			}
			if sent.Metadata == nil {
				sent.Metadata = map[string]any{}
			}
			if got.Key.Name != strings.TrimSpace(sent.Name) || !reflect.DeepEqual(got.Key.Metadata, sent.Metadata) {
				t.Fatalf("%s: sent %q, read back %s", engines[i], body, g.Body)
			}
		}
	})
}

// judgeText tells, without the code under test, whether a JSON body is
// certainly not storable text (bad) or certainly is (good); a body that is
// neither (not JSON, but holding no invalid byte) may go either way. A
// decoded U+FFFD that the body does not spell out, raw or escaped, can only
// come from an unpaired surrogate escape.
func judgeText(body []byte) (bad, good bool) {
	if !utf8.Valid(body) || bytes.IndexByte(body, 0) >= 0 {
		return true, false
	}
	var v any
	if json.Unmarshal(body, &v) != nil {
		return false, false
	}
	// Every string of the body, read as tokens: a value that a duplicate
	// key replaces is not in v, but it is in the body the host checks.
	nul, fffd := false, false
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if s, ok := tok.(string); ok {
			nul = nul || strings.IndexByte(s, 0) >= 0
			fffd = fffd || strings.ContainsRune(s, utf8.RuneError)
		}
	}
	spelled := strings.ContainsRune(string(body), utf8.RuneError) || strings.Contains(strings.ToLower(string(body)), `\ufffd`)
	switch {
	case nul || fffd && !spelled:
		return true, false
	case !fffd:
		return false, true
	}
	return false, false
}

func serveJSON(h http.Handler, method, path, auth string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func errorCode(b []byte) string {
	var m struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(b, &m)
	return m.Error.Code
}

func slicesConcat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
