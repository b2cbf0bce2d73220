package route

import (
	"reflect"
	"testing"
)

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		tpl, path string
		want      map[string]string // nil: no match
	}{
		{"/projects", "/projects", map[string]string{}},
		{"/projects", "/projects/", nil},
		{"/projects/{id}", "/projects/p1", map[string]string{"id": "p1"}},
		{"/projects/{id}", "/projects/p1/x", nil},
		{"/projects/{id}", "/projects/", nil},
		{"/p/{id}/f/{name}", "/p/1/f/a b", map[string]string{"id": "1", "name": "a b"}},
		{"/f/{name:[a-z]+}.json", "/f/abc.json", map[string]string{"name": "abc"}},
		{"/f/{name:[a-z]+}.json", "/f/abcxjson", nil},
		{"/f/{name:[a-z]+}.json", "/f/ABC.json", nil},
		{"/n/{n:[0-9]{3}}", "/n/123", map[string]string{"n": "123"}},
		{"/n/{n:[0-9]{3}}", "/n/1234", nil},
		{"/g/{a:(?:x|y)}/{b}", "/g/y/z", map[string]string{"a": "y", "b": "z"}},
		{"/rest/{path:.*}", "/rest/a/b/c", map[string]string{"path": "a/b/c"}},
		{"/a.b", "/axb", nil},
	} {
		tpl, err := Parse(tc.tpl)
		if err != nil {
			t.Fatalf("%s: %v", tc.tpl, err)
		}
		got, ok := tpl.Match(tc.path)
		if ok != (tc.want != nil) || (ok && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("%s ~ %s = %v %v, want %v", tc.tpl, tc.path, got, ok, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tpl := range []string{"", "p", "/p/{id", "/p/id}", "/p/{}", "/p/{:x}", "/p/{a}/{a}", "/p/{a:[}", "/p?x", "/p#x",
		"/g/{a:(x|y)}", "/p/{a:(?P<n>x)}", "/p//x", "/p/./x", "/p/../x", "/p/{a}/..", "/p/.", "//"} {
		if _, err := Parse(tpl); err == nil {
			t.Errorf("%q parsed", tpl)
		}
	}
}

func TestKey(t *testing.T) {
	key := func(s string) string {
		tpl, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return tpl.Key()
	}
	if key("/p/{id}") != key("/p/{pid}") {
		t.Error("variable names change the key")
	}
	if key("/p/{id}") == key("/p/{id:[0-9]+}") || key("/p/{id}") == key("/q/{id}") {
		t.Error("different templates share a key")
	}
}
