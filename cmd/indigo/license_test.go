package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core/license"
)

// licenseEnv gives the test its own key pair through
// INDIGO_LICENSE_PUBLIC_KEY and a project folder without a license.
func licenseEnv(t *testing.T) (ed25519.PrivateKey, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(license.EnvPublicKey, hex.EncodeToString(pub))
	t.Setenv(license.EnvToken, "")
	return priv, t.TempDir()
}

func signedLicense(t *testing.T, priv ed25519.PrivateKey, modules []string, expires time.Time) string {
	t.Helper()
	issued := time.Now().Add(-48 * time.Hour)
	if !issued.Before(expires) {
		issued = expires.Add(-30 * 24 * time.Hour)
	}
	tok, err := license.Sign(priv, license.License{
		ID:        "lic_test_7",
		Licensee:  "Acme Corp",
		Modules:   modules,
		IssuedAt:  issued,
		ExpiresAt: expires,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// runLicense executes `license show ARGS...` in-process, as `indigo
// --config <dir>/indigo.toml license show ARGS...` would.
func runLicense(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	a := &app{configPath: filepath.Join(dir, "indigo.toml"), configSet: true, out: &out}
	cmd := a.licenseCmd()
	cmd.SetArgs(append([]string{"show"}, args...))
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	return out.String(), err
}

func TestLicenseShowValid(t *testing.T) {
	priv, dir := licenseEnv(t)
	exp := time.Now().Add(40*24*time.Hour + time.Hour)
	tok := signedLicense(t, priv, []string{"core-api", "billing"}, exp)
	file := filepath.Join(dir, license.FileName)
	if err := os.WriteFile(file, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	out, err := runLicense(t, dir)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"Acme Corp", "lic_test_7", "core-api, billing", exp.UTC().Format(time.DateOnly), "40 days left", "source:", file} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// --license wins over the file, and --json reports the verdict.
	out, err = runLicense(t, dir, "--license", tok, "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var rep struct {
		Licensee  string    `json:"licensee"`
		ID        string    `json:"id"`
		Modules   []string  `json:"modules"`
		ExpiresAt time.Time `json:"expires_at"`
		Valid     bool      `json:"valid"`
		Error     *string   `json:"error"`
		Source    string    `json:"source"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !rep.Valid || rep.Error == nil || *rep.Error != "" || rep.Source != "flag" || rep.Licensee != "Acme Corp" ||
		rep.ID != "lic_test_7" || len(rep.Modules) != 2 || !rep.ExpiresAt.Equal(exp.Truncate(time.Second)) {
		t.Fatalf("json: %+v\n%s", rep, out)
	}
}

func TestLicenseShowExpired(t *testing.T) {
	priv, dir := licenseEnv(t)
	exp := time.Now().Add(-72 * time.Hour)
	t.Setenv(license.EnvToken, signedLicense(t, priv, []string{"core-api"}, exp))

	out, err := runLicense(t, dir)
	if !errors.Is(err, license.ErrExpired) || !strings.HasPrefix(err.Error(), "license: expired") ||
		!strings.Contains(err.Error(), exp.UTC().Format(time.DateOnly)) {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(out, "licensee:") {
		t.Fatalf("an expired license was shown as valid:\n%s", out)
	}

	out, err = runLicense(t, dir, "--json")
	if !errors.Is(err, license.ErrExpired) {
		t.Fatalf("--json: err = %v", err)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep["valid"] != false || rep["source"] != license.EnvToken || rep["licensee"] != "Acme Corp" ||
		!strings.HasPrefix(rep["error"].(string), "expired") {
		t.Fatalf("json: %s", out)
	}
}

func TestLicenseShowWrongModule(t *testing.T) {
	priv, dir := licenseEnv(t)
	tok := signedLicense(t, priv, []string{"billing", "sso"}, time.Now().Add(30*24*time.Hour))

	_, err := runLicense(t, dir, "--license", tok)
	if !errors.Is(err, license.ErrWrongModule) || !strings.HasPrefix(err.Error(), "license: wrong module") ||
		!strings.Contains(err.Error(), "billing, sso") {
		t.Fatalf("err = %v", err)
	}
}

func TestLicenseShowRefusesOtherKeyAndNoLicense(t *testing.T) {
	_, dir := licenseEnv(t)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	tok := signedLicense(t, other, []string{"core-api"}, time.Now().Add(time.Hour))
	if _, err := runLicense(t, dir, "--license", tok); !errors.Is(err, license.ErrBadSignature) {
		t.Fatalf("other key: err = %v", err)
	}

	out, err := runLicense(t, dir, "--json")
	if !errors.Is(err, license.ErrNoLicense) || !strings.Contains(err.Error(), "--dev") {
		t.Fatalf("no license: err = %v", err)
	}
	if !strings.Contains(out, `"valid": false`) || strings.Contains(out, "licensee") {
		t.Fatalf("no license json:\n%s", out)
	}
}
