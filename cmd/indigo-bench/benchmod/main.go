// Command benchmod is indigo-bench's module: one route that answers from
// memory, so that the bench measures the wire between the host and a module
// process (gRPC, the host's proxy, the SDK's adapter) without a database
// read. Its fixed body is about the size of the projects module's list of
// two projects.
//
// The bench builds it from the repository root next to the projects module
// and lists it in the host's configuration.
package main

import (
	"net/http"
	"os"

	"github.com/indigo-hq/indigo/sdk"
	"github.com/indigo-hq/indigo/sdk/rpc"
)

// cpuProfileEnv is the bench's variable for this module's CPU profile
// (-module-cpuprofile). The bench sets it rather than rpc.CPUProfileEnv,
// which every module process inherits, so that only this module writes
// the profile; cmd/indigo-bench spells the same name.
const cpuProfileEnv = "INDIGO_BENCHMOD_CPUPROFILE"

// body is the route's answer, as sdk.JSON would encode a list of two
// projects.
var body = []byte(`{"projects":[{"id":"prj_1","org_id":"org_x","name":"Apollo","created_at":"2026-01-01T00:00:00Z"},{"id":"prj_2","org_id":"org_x","name":"Gemini","created_at":"2026-01-01T00:00:01Z"}]}` + "\n")

func main() {
	if path := os.Getenv(cpuProfileEnv); path != "" {
		// The SDK reads it when it starts serving, after this.
		if err := os.Setenv(rpc.CPUProfileEnv, path); err != nil {
			panic(err)
		}
	}
	sdk.Serve(sdk.Module{
		Name:    "benchmod",
		Version: "1.0.0",
		Scopes:  []sdk.Scope{{ID: "benchmod:read", Label: "Read the bench's fixed answer"}},
		Routes: []sdk.Route{
			{Method: "GET", Path: "/benchmod/hello", Scopes: []string{"benchmod:read"}, Cost: 1, Handler: http.HandlerFunc(hello)},
		},
	})
}

// hello writes the fixed body.
func hello(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
