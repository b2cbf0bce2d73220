package clienttest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core/coretest"
)

// tsDir is the TypeScript client's package.
const tsDir = "../../sdk/typescript"

var (
	tsOnce sync.Once
	tsErr  error
)

// buildTypeScript installs the TypeScript client's locked dependencies and
// compiles it into dist/, once per test binary (go test -count=N runs the
// tests N times in one process).
func buildTypeScript(t *testing.T) {
	t.Helper()
	tsOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		for _, args := range [][]string{
			{"ci", "--no-audit", "--no-fund", "--prefer-offline"},
			{"run", "build"},
		} {
			cmd := exec.CommandContext(ctx, "npm", args...)
			cmd.Dir = tsDir
			if out, err := cmd.CombinedOutput(); err != nil {
				tsErr = fmt.Errorf("npm %s in sdk/typescript: %v\n%s", strings.Join(args, " "), err, out)
				return
			}
		}
	})
	if tsErr != nil {
		t.Fatal(tsErr)
	}
}

// nodeTest runs node's test runner on files of the TypeScript client's
// test folder and fails unless every test ran and passed.
func nodeTest(t *testing.T, env []string, files ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{"--test", "--test-reporter=spec"}, files...)...)
	cmd.Dir = tsDir
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("node --test %s (%v):\n%s", strings.Join(files, " "), time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("the TypeScript tests failed: %v", err)
	}
	// A test that skipped (no INDIGO_URL, say) would pass unseen.
	if !strings.Contains(string(out), "skipped 0") {
		t.Fatal("some TypeScript tests were skipped")
	}
}

// TestTypeScriptWalkthrough is issue 16's walk-through with the
// TypeScript client (sdk/typescript/test/walkthrough.test.mjs): the steps
// of TestClientWalkThrough, against a host with the projects module on
// each engine, on the wall clock so that a Retry-After is really waited.
// Before it, the client's own rules against a fake fetch
// (test/client.test.mjs). It needs node and npm (Node.js 20 or later) and
// the npm registry or npm's cache for `npm ci`; without node or npm it
// skips, except under CI=true.
func TestTypeScriptWalkthrough(t *testing.T) {
	var missing []string
	for _, bin := range []string{"node", "npm"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) == 0 {
		// Node.js 18 (Debian bookworm's) lacks globalThis.crypto.
		out, err := exec.Command("node", "-p", "process.versions.node.split('.')[0]").Output()
		if major, _ := strconv.Atoi(strings.TrimSpace(string(out))); err != nil || major < 20 {
			missing = append(missing, fmt.Sprintf("Node.js 20 or later (node is %s)", strings.TrimSpace(string(out))))
		}
	}
	if len(missing) > 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the TypeScript client's tests need %s", strings.Join(missing, " and "))
		}
		t.Skipf("the TypeScript client's tests need %s", strings.Join(missing, " and "))
	}
	buildTypeScript(t)
	t.Run("rules", func(t *testing.T) { nodeTest(t, nil, "test/client.test.mjs") })

	projects := buildProjects(t)
	coretest.Engines(t, func(t *testing.T, engine string) {
		env := walkHost(t, engine, projects)
		org := env.Org("walk")
		admin, adminRaw := env.Superkey(org)
		other, _ := env.Superkey(env.Org("other"))
		nodeTest(t, []string{
			"INDIGO_URL=" + env.Server.URL,
			"INDIGO_KEY=" + adminRaw,
			"INDIGO_KEY_ID=" + admin.ID,
			"INDIGO_ORG=" + org,
			"INDIGO_OTHER_KEY_ID=" + other.ID,
		}, "test/walkthrough.test.mjs")
	})
}
