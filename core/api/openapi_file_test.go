package api_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/indigo-hq/indigo/core/coretest"
	"github.com/indigo-hq/indigo/db"
)

// The committed document, api/openapi.json, is the contract the clients
// (sdk/client, generated from it) are built on. It is what a host serves
// with the core alone: module routes depend on what a deployment loads, so
// they are reached through the clients' generic calls, and the route walk
// (TestEveryRouteIsDocumented) holds a host with modules to its served
// document instead.
var updateOpenAPI = flag.Bool("update-openapi", false, "write the served document to api/openapi.json (make generate)")

const openAPIFile = "../../api/openapi.json"

// canonicalJSON is how the file holds a document: indented, keys sorted,
// no HTML escaping, one final newline; so make generate is byte-stable.
func canonicalJSON(t *testing.T, raw []byte) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("the document is not JSON: %v", err)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var jsonName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// jsonDiff lists where a and b differ (paths["/api/v2/me"].get.summary),
// at most max places.
func jsonDiff(a, b any, at string, out *[]string, max int) {
	if len(*out) >= max || reflect.DeepEqual(a, b) {
		return
	}
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := make([]string, 0, len(am)+len(bm))
		for k := range am {
			keys = append(keys, k)
		}
		for k := range bm {
			if _, ok := am[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			p := at + "." + k
			if !jsonName.MatchString(k) {
				p = at + "[" + strconv.Quote(k) + "]"
			}
			av, ain := am[k]
			bv, bin := bm[k]
			switch {
			case !ain:
				*out = append(*out, p+": only in the served document")
			case !bin:
				*out = append(*out, p+": only in the file")
			default:
				jsonDiff(av, bv, p, out, max)
			}
		}
		return
	}
	al, aok := a.([]any)
	bl, bok := b.([]any)
	if aok && bok && len(al) == len(bl) {
		for i := range al {
			jsonDiff(al[i], bl[i], at+"["+strconv.Itoa(i)+"]", out, max)
		}
		return
	}
	*out = append(*out, fmt.Sprintf("%s: file %.80s, served %.80s", at, compact(a), compact(b)))
}

func compact(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestOpenAPIFileIsTheServedDocument fails when api/openapi.json is not
// what a host with the core alone serves at /api/openapi.json. make
// generate rewrites the file (go test -run this -update-openapi).
func TestOpenAPIFileIsTheServedDocument(t *testing.T) {
	env := coretest.New(t, db.SQLite)
	r := env.Do("GET", "/api/openapi.json", "", nil)
	if r.Status != 200 {
		t.Fatalf("GET /api/openapi.json: %d %s", r.Status, r.Body)
	}
	served := canonicalJSON(t, r.Body)
	if *updateOpenAPI {
		if err := os.WriteFile(openAPIFile, served, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", filepath.Clean(openAPIFile))
		return
	}
	file, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatalf("%v: run make generate and commit api/openapi.json", err)
	}
	if bytes.Equal(file, served) {
		return
	}
	var fv, sv any
	if err := json.Unmarshal(file, &fv); err != nil {
		t.Fatalf("api/openapi.json is not JSON (%v): run make generate", err)
	}
	_ = json.Unmarshal(served, &sv)
	var diffs []string
	jsonDiff(fv, sv, "document", &diffs, 20)
	if len(diffs) == 0 {
		diffs = []string{"(same content, other layout)"}
	}
	t.Errorf("api/openapi.json is not the document the host serves: the API changed without its contract. "+
		"Run make generate (it rewrites the file and the clients generated from it) and commit both. Differences:\n  %s",
		strings.Join(diffs, "\n  "))
}
