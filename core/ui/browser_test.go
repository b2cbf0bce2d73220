package ui_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/core/coretest"
	"github.com/indigo-hq/indigo/core/identity"
)

// TestBrowser runs the Playwright suite in e2e/ against a host on loopback,
// in Debian's headless Chromium. It needs node, /usr/bin/chromium (or
// INDIGO_CHROMIUM) and `npm ci` in e2e/; without them it skips, except
// under CI=true, where that is a failure. Screenshots land in
// test-artifacts/ui at the repository root (or INDIGO_ARTIFACTS).
func TestBrowser(t *testing.T) {
	chromium := os.Getenv("INDIGO_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	var missing []string
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node")
	}
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, chromium)
	}
	if _, err := os.Stat("e2e/node_modules/playwright-core"); err != nil {
		missing = append(missing, "e2e/node_modules/playwright-core (run npm ci in core/ui/e2e)")
	}
	if len(missing) > 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("browser tests need %s", strings.Join(missing, ", "))
		}
		t.Skipf("browser tests need %s", strings.Join(missing, ", "))
	}

	// The browser reads real time, so the host does too. Keys created
	// without a rate limit get the host's default, as with indigo.toml.
	e := coretest.New(t, "sqlite", func(c *config.Config, o *core.Options) {
		o.Now = time.Now
		c.API.DefaultRateLimit = "600/1m"
	})
	ctx := context.Background()
	orgA, orgB := e.Org("Acme"), e.Org("Bolt")
	link := func(org, email, role string, operator bool) string {
		tok, err := e.Host.Local.LoginLink(ctx, org, email, role, operator)
		if err != nil {
			t.Fatal(err)
		}
		return e.Server.URL + "/auth/login?token=" + tok
	}

	// Traffic for the admin log filters: org A has 200s and a 403, org B
	// only 200s.
	_, rawA := e.Scoped(orgA)
	_, rawB := e.Superkey(orgB)
	for i := 0; i < 3; i++ {
		e.Do("GET", "/api/v2/me", coretest.Bearer(rawA), nil)
		e.Do("GET", "/api/v2/me", coretest.Bearer(rawB), nil)
	}
	if r := e.Do("GET", "/api/v2/keys", coretest.Bearer(rawA), nil); r.Status != 403 {
		t.Fatalf("seed 403: %d", r.Status)
	}
	e.FlushLogs()

	// A second host signs its users in through an identity provider, for
	// the page that embeds the component and hands it a token.
	iss := coretest.NewIssuer(t)
	jwtHost := coretest.New(t, "sqlite", func(c *config.Config, o *core.Options) {
		o.Now = time.Now
		iss.Configure(c)
	})

	artifacts := os.Getenv("INDIGO_ARTIFACTS")
	if artifacts == "" {
		root, err := filepath.Abs("../..")
		if err != nil {
			t.Fatal(err)
		}
		artifacts = filepath.Join(root, "test-artifacts", "ui")
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	tctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(tctx, "node", "--test", "--test-reporter=spec", "ui.test.mjs")
	cmd.Dir = "e2e"
	cmd.Env = append(os.Environ(),
		"INDIGO_URL="+e.Server.URL,
		"INDIGO_CHROMIUM="+chromium,
		"INDIGO_ARTIFACTS="+artifacts,
		"INDIGO_ORG_A="+orgA,
		"INDIGO_ORG_B="+orgB,
		"INDIGO_LOGIN_OWNER="+link(orgA, "owner@acme.test", identity.RoleOwner, false),
		"INDIGO_LOGIN_MEMBER="+link(orgA, "member@acme.test", identity.RoleMember, false),
		"INDIGO_LOGIN_OPERATOR="+link(orgA, "ops@acme.test", identity.RoleOwner, true),
		"INDIGO_JWT_URL="+jwtHost.Server.URL,
		"INDIGO_JWT_TOKEN="+iss.Token("org-from-idp", identity.RoleOwner, time.Hour),
	)
	out, err := cmd.CombinedOutput()
	t.Logf("playwright suite:\n%s", out)
	if err != nil {
		t.Fatalf("the browser suite failed: %v (screenshots in %s)", err, artifacts)
	}
	shots, _ := filepath.Glob(filepath.Join(artifacts, "*.png"))
	narrow, _ := filepath.Glob(filepath.Join(artifacts, "*-390.png"))
	if len(shots) < 12 || len(narrow) < 7 {
		t.Errorf("%d screenshots (%d at 390 px) in %s, want every page at both widths", len(shots), len(narrow), artifacts)
	}
}
