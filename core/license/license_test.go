package license

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// now is the fixed clock of these tests.
var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func keyPair(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func sample() License {
	return License{
		ID:        "lic_0042",
		Licensee:  "Acme Corp",
		Modules:   []string{"billing", CoreAPI},
		IssuedAt:  now.Add(-30 * 24 * time.Hour),
		ExpiresAt: now.Add(365 * 24 * time.Hour),
	}
}

func sign(t *testing.T, priv ed25519.PrivateKey, l License) string {
	t.Helper()
	tok, err := Sign(priv, l)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// signRaw signs an arbitrary payload, so that payloads Sign refuses can be
// tested past the signature check.
func signRaw(priv ed25519.PrivateKey, payload string) string {
	signed := Prefix + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	return signed + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(signed)))
}

// refused checks that err wraps want and that its message says why.
func refused(t *testing.T, err error, want error, reason ...string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
	for _, r := range reason {
		if !strings.Contains(err.Error(), r) {
			t.Fatalf("error %q does not mention %q", err, r)
		}
	}
}

func TestVerifyAcceptsValidTokenAndRoundTrips(t *testing.T) {
	pub, priv := keyPair(t)
	in := sample()
	tok := sign(t, priv, in)
	if !strings.HasPrefix(tok, Prefix+".") || strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, "+/=") {
		t.Fatalf("token shape: %s", tok)
	}
	got, err := Verify(tok, pub, CoreAPI, now)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != in.ID || got.Licensee != in.Licensee || !slices.Equal(got.Modules, in.Modules) ||
		!got.IssuedAt.Equal(in.IssuedAt) || !got.ExpiresAt.Equal(in.ExpiresAt) {
		t.Fatalf("round trip: got %+v, want %+v", got, in)
	}
	// The other listed module is licensed too; surrounding white space (a
	// pasted token) is ignored.
	if _, err := Verify(" "+tok+"\n", pub, "billing", now); err != nil {
		t.Fatal(err)
	}
	// issued_at and id are optional.
	min := License{Licensee: "Solo", Modules: []string{CoreAPI}, ExpiresAt: now.Add(time.Hour)}
	got, err = Verify(sign(t, priv, min), pub, CoreAPI, now)
	if err != nil || got.ID != "" || !got.IssuedAt.IsZero() {
		t.Fatalf("minimal license: %+v, %v", got, err)
	}
}

func TestVerifyRefusesExpired(t *testing.T) {
	pub, priv := keyPair(t)
	l := sample()
	l.ExpiresAt = time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC)
	got, err := Verify(sign(t, priv, l), pub, CoreAPI, now)
	refused(t, err, ErrExpired, "expired", "2026-10-31")
	if got.Licensee != "Acme Corp" {
		t.Fatalf("an expired license should still say whose it is: %+v", got)
	}
	// now == expires_at is already expired.
	l.ExpiresAt = now
	_, err = Verify(sign(t, priv, l), pub, CoreAPI, now)
	refused(t, err, ErrExpired)
	_, err = Verify(sign(t, priv, l), pub, CoreAPI, now.Add(-time.Second))
	if err != nil {
		t.Fatalf("one second before expiry: %v", err)
	}
}

func TestVerifyRefusesNotYetValid(t *testing.T) {
	pub, priv := keyPair(t)
	l := sample()
	l.IssuedAt = now.Add(ClockSkew + time.Minute)
	_, err := Verify(sign(t, priv, l), pub, CoreAPI, now)
	refused(t, err, ErrNotYetValid, "not yet valid", l.IssuedAt.Format(time.RFC3339))
	// Within the allowed clock skew it is accepted.
	l.IssuedAt = now.Add(ClockSkew - time.Second)
	if _, err := Verify(sign(t, priv, l), pub, CoreAPI, now); err != nil {
		t.Fatalf("issued within the clock skew: %v", err)
	}
}

func TestVerifyRefusesWrongModule(t *testing.T) {
	pub, priv := keyPair(t)
	l := sample()
	l.Modules = []string{"billing", "sso"}
	_, err := Verify(sign(t, priv, l), pub, CoreAPI, now)
	refused(t, err, ErrWrongModule, "wrong module", CoreAPI, "billing, sso")
}

func TestVerifyRefusesTamperedPayload(t *testing.T) {
	pub, priv := keyPair(t)
	tok := sign(t, priv, sample())
	parts := strings.Split(tok, ".")
	body, _ := base64.RawURLEncoding.DecodeString(parts[1])
	forged := strings.Replace(string(body), "Acme Corp", "Evil Corp", 1)
	if forged == string(body) {
		t.Fatal("test did not change the payload")
	}
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(forged))
	_, err := Verify(strings.Join(parts, "."), pub, CoreAPI, now)
	refused(t, err, ErrBadSignature, "bad signature")
}

func TestVerifyRefusesTamperedSignature(t *testing.T) {
	pub, priv := keyPair(t)
	tok := sign(t, priv, sample())
	parts := strings.Split(tok, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[10] ^= 0x01
	parts[2] = base64.RawURLEncoding.EncodeToString(sig)
	_, err := Verify(strings.Join(parts, "."), pub, CoreAPI, now)
	refused(t, err, ErrBadSignature, "bad signature")
}

func TestVerifyRefusesOtherKey(t *testing.T) {
	pub, _ := keyPair(t)
	_, other := keyPair(t)
	_, err := Verify(sign(t, other, sample()), pub, CoreAPI, now)
	refused(t, err, ErrBadSignature, "bad signature")
	// Nor does the built-in production key accept a test-signed token.
	_, err = Verify(sign(t, other, sample()), PublicKey, CoreAPI, now)
	refused(t, err, ErrBadSignature)
	// An unusable verification key refuses instead of panicking.
	_, err = Verify(sign(t, other, sample()), ed25519.PublicKey{1, 2, 3}, CoreAPI, now)
	refused(t, err, ErrBadSignature, EnvPublicKey)
}

func TestVerifyRefusesMalformed(t *testing.T) {
	pub, priv := keyPair(t)
	good := sign(t, priv, sample())
	parts := strings.Split(good, ".")
	exp := now.Add(time.Hour).Format(time.RFC3339)
	for _, c := range []struct {
		name, token, reason string
	}{
		{"empty", "", "does not start with"},
		{"wrong prefix", "indigo-lic-v2." + parts[1] + "." + parts[2], "does not start with"},
		{"prefix without dot", "indigo-lic-v1" + parts[1], "does not start with"},
		{"two parts", parts[0] + "." + parts[1], "parts, want 3"},
		{"four parts", good + ".x", "4 dot-separated parts"},
		{"padded payload", parts[0] + "." + parts[1] + "==." + parts[2], "payload is not unpadded base64url"},
		{"std base64 payload", parts[0] + ".a+b/." + parts[2], "payload is not unpadded base64url"},
		{"line break in payload", parts[0] + "." + parts[1][:8] + "\n" + parts[1][8:] + "." + parts[2], "payload is not unpadded base64url"},
		{"bad signature base64", parts[0] + "." + parts[1] + ".!!!", "signature is not unpadded base64url"},
		{"short signature", parts[0] + "." + parts[1] + "." + parts[2][:20], "signature is"},
		{"not JSON", signRaw(priv, "licensee=Acme"), "not valid JSON"},
		{"JSON array", signRaw(priv, `["core-api"]`), "not valid JSON"},
		{"trailing garbage", signRaw(priv, `{"licensee":"A","modules":["core-api"],"expires_at":"`+exp+`"}x`), "not valid JSON"},
		{"no licensee", signRaw(priv, `{"modules":["core-api"],"expires_at":"`+exp+`"}`), "licensee is missing"},
		{"blank licensee", signRaw(priv, `{"licensee":"  ","modules":["core-api"],"expires_at":"`+exp+`"}`), "licensee is missing"},
		{"no modules", signRaw(priv, `{"licensee":"A","expires_at":"`+exp+`"}`), "modules is missing"},
		{"empty modules", signRaw(priv, `{"licensee":"A","modules":[],"expires_at":"`+exp+`"}`), "modules is missing"},
		{"empty module name", signRaw(priv, `{"licensee":"A","modules":["core-api",""],"expires_at":"`+exp+`"}`), "modules[1] is empty"},
		{"no expiry", signRaw(priv, `{"licensee":"A","modules":["core-api"]}`), "expires_at is missing"},
		{"bad expiry", signRaw(priv, `{"licensee":"A","modules":["core-api"],"expires_at":"next year"}`), "expires_at \"next year\" is not an RFC 3339 time"},
		{"bad issued_at", signRaw(priv, `{"licensee":"A","modules":["core-api"],"issued_at":"1700000000","expires_at":"`+exp+`"}`), "issued_at"},
		{"issued after expiry", signRaw(priv, `{"licensee":"A","modules":["core-api"],"issued_at":"`+exp+`","expires_at":"`+now.Format(time.RFC3339)+`"}`), "not before expires_at"},
		{"too long", Prefix + "." + strings.Repeat("A", maxTokenLen) + "." + parts[2], "longer than any license"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Verify(c.token, pub, CoreAPI, now)
			refused(t, err, ErrMalformed, "malformed token", c.reason)
			if got.Licensee != "" {
				t.Fatalf("a malformed token returned a license: %+v", got)
			}
		})
	}
	// The same JSON with all fields present is accepted: the table fails
	// for the reason named, not because signRaw is wrong.
	if _, err := Verify(signRaw(priv, `{"licensee":"A","modules":["core-api"],"expires_at":"`+exp+`"}`), pub, CoreAPI, now); err != nil {
		t.Fatalf("control: %v", err)
	}
}

func TestSignRefusesIncompleteLicense(t *testing.T) {
	_, priv := keyPair(t)
	for _, l := range []License{
		{Modules: []string{CoreAPI}, ExpiresAt: now},
		{Licensee: "A", ExpiresAt: now},
		{Licensee: "A", Modules: []string{CoreAPI}},
	} {
		if _, err := Sign(priv, l); !errors.Is(err, ErrMalformed) {
			t.Errorf("Sign(%+v) = %v, want ErrMalformed", l, err)
		}
	}
	if _, err := Sign(priv[:10], sample()); err == nil {
		t.Error("Sign accepted a short private key")
	}
}

func TestBuiltInPublicKey(t *testing.T) {
	if len(PublicKey) != ed25519.PublicKeySize {
		t.Fatalf("PublicKey is %d bytes", len(PublicKey))
	}
}

// clearEnv isolates a test from the caller's license environment.
func clearEnv(t *testing.T) {
	t.Setenv(EnvToken, "")
	t.Setenv(EnvPublicKey, "")
}

func TestLoadPrecedence(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	file := filepath.Join(dir, FileName)
	if err := os.WriteFile(file, []byte("\n  from-file \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(explicit, wantToken, wantSource string) {
		t.Helper()
		tok, src, err := Load(explicit, dir)
		if err != nil || tok != wantToken || src != wantSource {
			t.Fatalf("Load(%q) = %q, %q, %v; want %q, %q", explicit, tok, src, err, wantToken, wantSource)
		}
	}
	check("", "from-file", file)
	t.Setenv(EnvToken, " from-env\n")
	check("", "from-env", EnvToken)
	check(" from-flag ", "from-flag", "flag")
	t.Setenv(EnvToken, "")
	check("from-flag", "from-flag", "flag")
	check("   ", "from-file", file)
}

func TestLoadNoLicense(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	_, _, err := Load("", dir)
	refused(t, err, ErrNoLicense, "--license", EnvToken, filepath.Join(dir, FileName), "--dev", "loopback")

	// An empty file is no license either, and the message says so.
	file := filepath.Join(dir, FileName)
	if err := os.WriteFile(file, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = Load("", dir)
	refused(t, err, ErrNoLicense, file+" is empty", "--dev")
}

func TestPublicKeyFromEnv(t *testing.T) {
	clearEnv(t)
	if got := PublicKeyFromEnv(); !got.Equal(PublicKey) {
		t.Fatal("without the override PublicKeyFromEnv is not the built-in key")
	}
	pub, priv := keyPair(t)
	tok := sign(t, priv, sample())
	for name, v := range map[string]string{
		"hex":    hex.EncodeToString(pub),
		"base64": " " + base64.StdEncoding.EncodeToString(pub) + "\n",
	} {
		t.Setenv(EnvPublicKey, v)
		got := PublicKeyFromEnv()
		if !got.Equal(pub) {
			t.Fatalf("%s: PublicKeyFromEnv = %x, want %x", name, got, pub)
		}
		if _, err := Verify(tok, got, CoreAPI, now); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// A bad override fails closed rather than falling back.
	for _, v := range []string{"nonsense", hex.EncodeToString(pub[:16]), base64.StdEncoding.EncodeToString(append(pub, 0))} {
		t.Setenv(EnvPublicKey, v)
		got := PublicKeyFromEnv()
		if got.Equal(PublicKey) || got.Equal(pub) {
			t.Fatalf("override %q gave a usable key", v)
		}
		_, err := Verify(tok, got, CoreAPI, now)
		refused(t, err, ErrBadSignature, EnvPublicKey)
	}
}

func TestCheckForAdd(t *testing.T) {
	clearEnv(t)
	pub, priv := keyPair(t)
	t.Setenv(EnvPublicKey, hex.EncodeToString(pub))
	dir := t.TempDir()

	// Development mode needs no license at all.
	s, err := CheckForAdd("", dir, true, now)
	if err != nil || s != DevSummary || !strings.Contains(s, "loopback-only development without a license") {
		t.Fatalf("dev: %q, %v", s, err)
	}

	_, err = CheckForAdd("", dir, false, now)
	refused(t, err, ErrNoLicense, "license: ", "--dev")

	l := sample()
	l.ExpiresAt = time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	s, err = CheckForAdd(sign(t, priv, l), dir, false, now)
	if err != nil || s != "licensed to Acme Corp until 2027-03-01" {
		t.Fatalf("licensed: %q, %v", s, err)
	}

	// From the file, an expired license is refused and names its source.
	l.ExpiresAt = now.Add(-time.Hour)
	file := filepath.Join(dir, FileName)
	if err := os.WriteFile(file, []byte(sign(t, priv, l)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = CheckForAdd("", dir, false, now)
	refused(t, err, ErrExpired, "license: expired", file)

	l = sample()
	l.Modules = []string{"billing"}
	_, err = CheckForAdd(sign(t, priv, l), dir, false, now)
	refused(t, err, ErrWrongModule, "billing", "flag")

	// A token signed by another key than the configured one is refused.
	_, other := keyPair(t)
	_, err = CheckForAdd(sign(t, other, sample()), dir, false, now)
	refused(t, err, ErrBadSignature)
}
