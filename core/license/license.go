// Package license verifies the offline license that unlocks Indigo's paid
// modules (core-api). A license is a token signed with the vendor's Ed25519
// key; checking it needs no network:
//
//	indigo-lic-v1.<base64url(payload JSON)>.<base64url(signature)>
//
// Both parts use unpadded URL-safe base64. The signature covers the string
// "indigo-lic-v1.<base64url(payload)>", exactly as it appears in the token.
// The payload is
//
//	{"id": "...", "licensee": "...", "modules": ["core-api"],
//	 "issued_at": "RFC 3339", "expires_at": "RFC 3339"}
//
// where licensee, modules and expires_at are required. A payload change that
// adds a restriction must come with a new version prefix, because a v1
// verifier ignores fields it does not know.
package license

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

const (
	// Prefix is the token's version tag; the signed string starts with it
	// followed by a dot.
	Prefix = "indigo-lic-v1"

	// CoreAPI is the module name the core-api license must list.
	CoreAPI = "core-api"

	// EnvToken holds a token when no --license flag is given.
	EnvToken = "INDIGO_LICENSE"

	// EnvPublicKey overrides the built-in public key (tests, staging).
	EnvPublicKey = "INDIGO_LICENSE_PUBLIC_KEY"

	// FileName is the token file looked for in the project directory.
	FileName = "indigo.license"

	// ClockSkew is how far in the future issued_at may lie before a token is
	// refused as not yet valid.
	ClockSkew = 5 * time.Minute

	// maxTokenLen bounds what Verify decodes; real tokens are a few hundred
	// bytes.
	maxTokenLen = 16 << 10
)

// The errors Verify, Load and CheckForAdd return wrap one of these; test with
// errors.Is. The wrapped message gives the detail and is meant to follow
// "license: ", e.g. "license: expired: the license ended on 2026-01-31 (...)".
var (
	ErrMalformed    = errors.New("malformed token")
	ErrBadSignature = errors.New("bad signature")
	ErrExpired      = errors.New("expired")
	ErrNotYetValid  = errors.New("not yet valid")
	ErrWrongModule  = errors.New("wrong module")
	ErrNoLicense    = errors.New("no license")
)

// publicKeyHex is the production verification key. The matching private key
// is held by the vendor offline and is never part of this repository; it is
// what signs customers' licenses.
const publicKeyHex = "396b3eab69cbd79dd2b882c44274fdcd41d6d42f363eb7c93262fc4374e06d20"

// PublicKey is the built-in production public key.
var PublicKey ed25519.PublicKey = mustHexKey(publicKeyHex)

func mustHexKey(s string) ed25519.PublicKey {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		panic("license: bad built-in public key")
	}
	return ed25519.PublicKey(b)
}

// License is the verified content of a token.
type License struct {
	ID        string    `json:"id,omitempty"`
	Licensee  string    `json:"licensee"`
	Modules   []string  `json:"modules"`
	IssuedAt  time.Time `json:"issued_at,omitzero"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Covers reports whether the license lists module.
func (l License) Covers(module string) bool { return slices.Contains(l.Modules, module) }

// payload is the wire form: times as strings so that a bad one is reported
// by field name.
type payload struct {
	ID        string   `json:"id,omitempty"`
	Licensee  string   `json:"licensee"`
	Modules   []string `json:"modules"`
	IssuedAt  string   `json:"issued_at,omitempty"`
	ExpiresAt string   `json:"expires_at"`
}

var b64 = base64.RawURLEncoding.Strict()

// isB64URL reports whether s uses only the unpadded base64url alphabet (the
// decoder would otherwise skip line breaks).
func isB64URL(s string) bool {
	for _, c := range []byte(s) {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Sign returns the token for l, signed with priv. Times are written in UTC
// to the second. It is used by tests and by the vendor's issuing tool.
func Sign(priv ed25519.PrivateKey, l License) (string, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return "", fmt.Errorf("license: private key is %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	p := payload{ID: l.ID, Licensee: l.Licensee, Modules: l.Modules, ExpiresAt: formatTime(l.ExpiresAt)}
	if !l.IssuedAt.IsZero() {
		p.IssuedAt = formatTime(l.IssuedAt)
	}
	if l.ExpiresAt.IsZero() {
		p.ExpiresAt = ""
	}
	if _, err := p.license(); err != nil {
		return "", fmt.Errorf("license: refusing to sign: %w", err)
	}
	body, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("license: %w", err)
	}
	signed := Prefix + "." + b64.EncodeToString(body)
	return signed + "." + b64.EncodeToString(ed25519.Sign(priv, []byte(signed))), nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Verify checks token against pub and returns its license when the
// signature holds, now is within [issued_at-5m, expires_at) and the license
// lists module.
//
// Errors wrap ErrMalformed, ErrBadSignature, ErrExpired, ErrNotYetValid or
// ErrWrongModule. For the last three the signature has been verified, and
// the decoded License is returned alongside the error so that a caller can
// say whose license it is; it must not be treated as valid. Otherwise the
// returned License is the zero value.
func Verify(token string, pub ed25519.PublicKey, module string, now time.Time) (License, error) {
	token = strings.TrimSpace(token)
	if len(token) > maxTokenLen {
		return License{}, fmt.Errorf("%w: token is %d bytes, longer than any license", ErrMalformed, len(token))
	}
	if !strings.HasPrefix(token, Prefix+".") {
		return License{}, fmt.Errorf("%w: token does not start with %q", ErrMalformed, Prefix+".")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return License{}, fmt.Errorf("%w: token has %d dot-separated parts, want 3 (%s.<payload>.<signature>)", ErrMalformed, len(parts), Prefix)
	}
	body, err := b64.DecodeString(parts[1])
	if err != nil || !isB64URL(parts[1]) {
		return License{}, fmt.Errorf("%w: the payload is not unpadded base64url", ErrMalformed)
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil || !isB64URL(parts[2]) {
		return License{}, fmt.Errorf("%w: the signature is not unpadded base64url", ErrMalformed)
	}
	if len(sig) != ed25519.SignatureSize {
		return License{}, fmt.Errorf("%w: signature is %d bytes, want %d", ErrMalformed, len(sig), ed25519.SignatureSize)
	}
	if len(pub) != ed25519.PublicKeySize {
		// ed25519.Verify would panic; an unusable key verifies nothing.
		return License{}, fmt.Errorf("%w: the verification key is %d bytes, not an Ed25519 public key (check %s)", ErrBadSignature, len(pub), EnvPublicKey)
	}
	signed := token[:len(Prefix)+1+len(parts[1])]
	if !ed25519.Verify(pub, []byte(signed), sig) {
		return License{}, fmt.Errorf("%w: the token was altered or signed by a different key", ErrBadSignature)
	}

	var p payload
	if err := json.Unmarshal(body, &p); err != nil {
		return License{}, fmt.Errorf("%w: payload is not valid JSON: %v", ErrMalformed, err)
	}
	l, err := p.license()
	if err != nil {
		return License{}, err
	}

	if !now.Before(l.ExpiresAt) {
		return l, fmt.Errorf("%w: the license ended on %s (%s); ask the vendor for a renewal", ErrExpired, l.ExpiresAt.Format(time.DateOnly), l.ExpiresAt.Format(time.RFC3339))
	}
	if !l.IssuedAt.IsZero() && l.IssuedAt.After(now.Add(ClockSkew)) {
		return l, fmt.Errorf("%w: the license is issued at %s, which is still in the future (is the system clock right?)", ErrNotYetValid, l.IssuedAt.Format(time.RFC3339))
	}
	if !l.Covers(module) {
		return l, fmt.Errorf("%w: the license does not cover %s; it covers %s", ErrWrongModule, module, strings.Join(l.Modules, ", "))
	}
	return l, nil
}

// license validates the payload's fields; errors wrap ErrMalformed.
func (p payload) license() (License, error) {
	bad := func(format string, args ...any) (License, error) {
		return License{}, fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
	if strings.TrimSpace(p.Licensee) == "" {
		return bad("licensee is missing")
	}
	if len(p.Modules) == 0 {
		return bad("modules is missing or empty")
	}
	for i, m := range p.Modules {
		if strings.TrimSpace(m) == "" {
			return bad("modules[%d] is empty", i)
		}
	}
	l := License{ID: p.ID, Licensee: p.Licensee, Modules: p.Modules}
	if p.ExpiresAt == "" {
		return bad("expires_at is missing")
	}
	var err error
	if l.ExpiresAt, err = time.Parse(time.RFC3339, p.ExpiresAt); err != nil {
		return bad("expires_at %q is not an RFC 3339 time", p.ExpiresAt)
	}
	if p.IssuedAt != "" {
		if l.IssuedAt, err = time.Parse(time.RFC3339, p.IssuedAt); err != nil {
			return bad("issued_at %q is not an RFC 3339 time", p.IssuedAt)
		}
		if !l.IssuedAt.Before(l.ExpiresAt) {
			return bad("issued_at %s is not before expires_at %s", p.IssuedAt, p.ExpiresAt)
		}
	}
	return l, nil
}

// Load finds the token: the explicit value (the --license flag) first, then
// $INDIGO_LICENSE, then the file <projectDir>/indigo.license, each trimmed of
// surrounding white space. source is "flag", "INDIGO_LICENSE" or the file's
// path. When none holds a token the error wraps ErrNoLicense and says how to
// provide one. Load does not verify the token.
func Load(explicit string, projectDir string) (token string, source string, err error) {
	if t := strings.TrimSpace(explicit); t != "" {
		return t, "flag", nil
	}
	if t := strings.TrimSpace(os.Getenv(EnvToken)); t != "" {
		return t, EnvToken, nil
	}
	path := filepath.Join(projectDir, FileName)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", "", noLicense(path, "")
	case err != nil:
		return "", "", fmt.Errorf("reading license file: %w", err)
	}
	if t := strings.TrimSpace(string(b)); t != "" {
		return t, path, nil
	}
	return "", "", noLicense(path, path+" is empty; ")
}

func noLicense(path, note string) error {
	return fmt.Errorf("%w: %score-api needs a license: pass --license TOKEN, set %s, or save the token in %s; "+
		"for loopback-only development without a license, set dev = true under [api] in indigo.toml, "+
		"set INDIGO_API_DEV=true, or run `indigo add core-api --dev`", ErrNoLicense, note, EnvToken, path)
}

// PublicKeyFromEnv returns PublicKey, unless $INDIGO_LICENSE_PUBLIC_KEY holds
// a 32-byte key as hex or standard base64: then it returns that key.
//
// The override exists so that tests and the vendor's staging can sign
// licenses with their own key pair. It also lets anyone who controls the
// environment accept a license they signed themselves; a production build
// could remove it behind a build tag (not implemented).
//
// A set but unparsable value yields an invalid key, so that Verify fails
// with ErrBadSignature naming the variable instead of silently falling back
// to the production key.
func PublicKeyFromEnv() ed25519.PublicKey {
	v := strings.TrimSpace(os.Getenv(EnvPublicKey))
	if v == "" {
		return PublicKey
	}
	if b, err := hex.DecodeString(v); err == nil && len(b) == ed25519.PublicKeySize {
		return ed25519.PublicKey(b)
	}
	if b, err := base64.StdEncoding.DecodeString(v); err == nil && len(b) == ed25519.PublicKeySize {
		return ed25519.PublicKey(b)
	}
	return ed25519.PublicKey{}
}

// DevSummary is what CheckForAdd reports in development mode.
const DevSummary = "development mode: core-api is enabled for loopback-only development without a license"

// CheckForAdd is the license check of `indigo add core-api`. With dev it
// accepts without a license and returns DevSummary. Otherwise it loads the
// token (flagToken, $INDIGO_LICENSE, <projectDir>/indigo.license), verifies
// it for core-api against PublicKeyFromEnv at now, and returns
// "licensed to <licensee> until <date>". Errors start with "license: " and
// wrap the sentinel errors of this package.
func CheckForAdd(flagToken, projectDir string, dev bool, now time.Time) (summary string, err error) {
	if dev {
		return DevSummary, nil
	}
	token, source, err := Load(flagToken, projectDir)
	if err != nil {
		return "", fmt.Errorf("license: %w", err)
	}
	l, err := Verify(token, PublicKeyFromEnv(), CoreAPI, now)
	if err != nil {
		return "", fmt.Errorf("license: %w (token from %s)", err, source)
	}
	return fmt.Sprintf("licensed to %s until %s", l.Licensee, l.ExpiresAt.Format(time.DateOnly)), nil
}
