// Command benchmod is indigo-bench's module: two routes that answer from
// memory, so that the bench measures the wire between the host and a module
// process (the wire, the host's proxy, the SDK's adapter) without a database
// read. /benchmod/hello's fixed body is about the size of the projects
// module's list of two projects; /benchmod/16k's is 16 KiB, nearer the
// size of real answers.
//
// The bench builds it from the repository root next to the projects module
// and lists it in the host's configuration.
package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"

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

// body16k is /benchmod/16k's answer: a list of projects like body's,
// padded to 16 KiB exactly.
var body16k = func() []byte {
	const size = 16 << 10
	const tail = `],"pad":""}` + "\n"
	var b strings.Builder
	b.WriteString(`{"projects":[`)
	for i := 1; ; i++ {
		p := fmt.Sprintf(`{"id":"prj_%04d","org_id":"org_x","name":"Project %04d","created_at":"2026-01-01T00:00:00Z"}`, i, i)
		if i > 1 {
			p = "," + p
		}
		if b.Len()+len(p)+len(tail) > size {
			break
		}
		b.WriteString(p)
	}
	pad := strings.Repeat("x", size-b.Len()-len(tail))
	return []byte(b.String() + `],"pad":"` + pad + `"}` + "\n")
}()

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
			{Method: "GET", Path: "/benchmod/16k", Scopes: []string{"benchmod:read"}, Cost: 1, Handler: http.HandlerFunc(hello16k)},
		},
	})
}

// hello writes the fixed body.
func hello(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// hello16k writes the fixed 16 KiB body.
func hello16k(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body16k)
}
