package module

import (
	"strings"
	"testing"

	"github.com/indigo-hq/indigo/core/api"
	"github.com/indigo-hq/indigo/core/apikey"
	"github.com/indigo-hq/indigo/core/scope"
	"github.com/indigo-hq/indigo/sdk"
)

// The SDK refuses a module named after the first segment of a core v2
// route, or after core's scope prefix: such a module would share the
// core's routes (FuzzManifest's seed "keys") or scopes.
func TestCoreNamesAreReserved(t *testing.T) {
	s := &api.Server{Keys: apikey.New(nil, scope.NewWithCore(), apikey.Settings{}, nil, nil)}
	s.Router()
	names := map[string]bool{}
	for _, rt := range s.Routes() {
		first, _, _ := strings.Cut(strings.TrimPrefix(rt.Path, "/"), "/")
		names[first] = true
	}
	for _, sc := range scope.Core {
		prefix, _, _ := strings.Cut(sc.ID, ":")
		names[prefix] = true
	}
	for name := range names {
		err := sdk.ValidateManifest(sdk.Manifest{Name: name, Protocol: 1})
		if err == nil || !strings.Contains(err.Error(), "is the host's own") {
			t.Errorf("a module named %q: %v, want it refused as the host's own", name, err)
		}
	}
}
