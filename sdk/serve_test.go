package sdk

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/indigo-hq/indigo/sdk/rpc"
)

func TestDescribeOutput(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(validModule(), []string{"describe"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var got Manifest
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("describe printed no JSON manifest: %v\n%s", err, stdout.String())
	}
	if want := validModule().Manifest(); !reflect.DeepEqual(got, want) {
		t.Errorf("manifest:\n got %+v\nwant %+v", got, want)
	}
	if got.Protocol != rpc.ProtocolVersion {
		t.Errorf("protocol = %d", got.Protocol)
	}
}

func TestWriteManifest(t *testing.T) {
	m := Module{
		Name:   "cms",
		Scopes: []Scope{{ID: "cms:read", Label: "Read & list"}},
		Routes: []Route{{Method: "GET", Path: "/pages", V1: true}},
	}
	var out bytes.Buffer
	if err := writeManifest(&out, m.Manifest()); err != nil {
		t.Fatal(err)
	}
	want := `{
  "name": "cms",
  "version": "",
  "scopes": [
    {
      "id": "cms:read",
      "label": "Read & list"
    }
  ],
  "routes": [
    {
      "method": "GET",
      "path": "/pages",
      "scopes": [],
      "cost": 0,
      "v1": true
    }
  ],
  "protocol": 1,
  "hooks": [],
  "stream_calls": true,
  "data_socket": true
}
`
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}

// An empty module still describes itself with lists, not nulls, so the
// host's catalogue need not special-case it.
func TestManifestHasNoNullLists(t *testing.T) {
	var out bytes.Buffer
	if err := writeManifest(&out, Module{Name: "empty"}.Manifest()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "null") {
		t.Errorf("manifest has null:\n%s", out.String())
	}
}

func TestServeRefusesInvalidModule(t *testing.T) {
	for _, args := range [][]string{nil, {"describe"}} {
		var stdout, stderr bytes.Buffer
		m := validModule()
		m.Name = "Bad Name"
		if code := run(m, args, &stdout, &stderr); code != 1 {
			t.Errorf("args %q: exit %d, want 1", args, code)
		}
		if !strings.Contains(stderr.String(), `invalid module "Bad Name"`) || !strings.Contains(stderr.String(), "module name") {
			t.Errorf("args %q: stderr = %q", args, stderr.String())
		}
		if stdout.Len() != 0 {
			t.Errorf("args %q: stdout = %q", args, stdout.String())
		}
	}
}

func TestManifestDoesNotAliasModule(t *testing.T) {
	m := validModule()
	man := m.Manifest()
	man.Routes[0].Scopes[0] = "changed"
	man.Scopes[0].ID = "changed"
	if m.Routes[0].Scopes[0] != "projects:read" || m.Scopes[0].ID != "projects:read" {
		t.Error("changing a manifest changed the module")
	}
}
