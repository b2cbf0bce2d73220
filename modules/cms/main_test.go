package main

import (
	"strings"
	"testing"

	"github.com/indigo-hq/indigo/sdk"
	"github.com/indigo-hq/indigo/sdk/sdktest"
)

func TestCMSInMemory(t *testing.T) {
	h := sdktest.New(t, newModule())
	a := sdk.Caller{OrgID: "org_a", Scopes: []string{"cms:read", "cms:write"}}
	b := sdk.Caller{OrgID: "org_b", Scopes: []string{"cms:read"}}
	v1 := sdk.Caller{V1: true}

	if r := h.Do("POST", "/cms/entries", a, []byte(`{"title":"Hello","body":"world","published":true}`)); r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	if r := h.Do("POST", "/cms/entries", a, []byte(`{"title":"Draft","body":"x"}`)); r.Status != 201 {
		t.Fatalf("create draft: %d", r.Status)
	}
	cases := []struct {
		name   string
		caller sdk.Caller
		want   []string
		not    []string
	}{
		{"owner org sees both", a, []string{"Hello", "Draft"}, nil},
		{"another org sees none", b, nil, []string{"Hello", "Draft"}},
		{"v1 sees published only", v1, []string{"Hello"}, []string{"Draft"}},
	}
	for _, c := range cases {
		r := h.Do("GET", "/cms/entries", c.caller, nil)
		if r.Status != 200 {
			t.Fatalf("%s: %d", c.name, r.Status)
		}
		for _, w := range c.want {
			if !strings.Contains(string(r.Body), w) {
				t.Errorf("%s: missing %s in %s", c.name, w, r.Body)
			}
		}
		for _, n := range c.not {
			if strings.Contains(string(r.Body), n) {
				t.Errorf("%s: shows %s", c.name, n)
			}
		}
	}
	if r := h.Do("POST", "/cms/entries", v1, []byte(`{"title":"x"}`)); r.Status != 403 {
		t.Fatalf("v1 write: %d", r.Status)
	}
}
