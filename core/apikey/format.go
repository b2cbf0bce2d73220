// Package apikey owns Indigo's API keys: the wire format, hashing, the
// lifecycle (create, update, roll, revoke, expire), verification through an
// in-memory cache, and the per-key rate limits and quotas.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"hash/crc32"
	"regexp"
	"strings"
)

const (
	base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	// randomLen base62 characters carry 22*log2(62) ≈ 131 bits.
	randomLen   = 22
	checksumLen = 6
	bodyLen     = randomLen + checksumLen
	// MaxKeyLen bounds what Parse looks at: a 16-char prefix, "_", the body.
	MaxKeyLen = 16 + 1 + bodyLen
)

// PrefixRE is what a key prefix must match.
var PrefixRE = regexp.MustCompile(`^[a-z][a-z0-9_]{1,15}$`)

// Parsed is a syntactically valid key.
type Parsed struct {
	Prefix string
	Digest [32]byte // SHA-256 of the whole key
	Last4  string
}

// Hash is the digest in hex, as stored.
func (p Parsed) Hash() string { return hex.EncodeToString(p.Digest[:]) }

// Generate returns a new key with the given prefix. The random part comes
// from crypto/rand; the checksum lets Parse reject typos and truncations
// without a lookup.
func Generate(prefix string) (string, Parsed) {
	var b strings.Builder
	b.Grow(len(prefix) + 1 + bodyLen)
	b.WriteString(prefix)
	b.WriteByte('_')
	b.WriteString(randomBase62(randomLen))
	b.WriteString(checksum(b.String()))
	raw := b.String()
	return raw, Parsed{Prefix: prefix, Digest: sha256.Sum256([]byte(raw)), Last4: raw[len(raw)-4:]}
}

// randomBase62 draws n characters uniformly by rejection sampling bytes.
func randomBase62(n int) string {
	out := make([]byte, 0, n)
	buf := make([]byte, 64)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			panic("crypto/rand failed: " + err.Error()) // never returns an error on supported platforms
		}
		for _, c := range buf {
			if c < 248 { // 248 = 4*62: keeps the draw uniform
				out = append(out, base62[c%62])
				if len(out) == n {
					break
				}
			}
		}
	}
	return string(out)
}

// checksum encodes CRC32 of s as six base62 characters.
func checksum(s string) string {
	c := checksumOf(s)
	return string(c[:])
}

// checksumOf is checksum without allocating, for the verify path: the
// CRC is computed over the string itself with the standard IEEE table
// (crc32.ChecksumIEEE would need a []byte copy, which escapes).
func checksumOf(s string) [checksumLen]byte {
	v := ^uint32(0)
	for i := 0; i < len(s); i++ {
		v = crc32.IEEETable[byte(v)^s[i]] ^ v>>8
	}
	v = ^v
	var out [checksumLen]byte
	for i := checksumLen - 1; i >= 0; i-- {
		out[i] = base62[v%62]
		v /= 62
	}
	return out
}

// validPrefix is PrefixRE without a regular expression, for the verify path.
func validPrefix(p string) bool {
	if len(p) < 2 || len(p) > 16 || p[0] < 'a' || p[0] > 'z' {
		return false
	}
	for i := 1; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func isBase62(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// Hash is the stored digest of a key.
func Hash(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// Parse checks a key's shape and checksum. It does no lookup, so malformed
// keys are refused before they cost a cache or database access.
func Parse(raw string) (Parsed, bool) {
	p, ok := parseShape(raw)
	if !ok || !checksumValid(raw) {
		return Parsed{}, false
	}
	return p, true
}

// parseShape is Parse without the checksum. Verify checks the checksum only
// on a cache miss: the cache holds only digests that passed it, and a
// digest match means the very same key.
func parseShape(raw string) (Parsed, bool) {
	if len(raw) > MaxKeyLen || len(raw) < 2+1+bodyLen {
		return Parsed{}, false
	}
	i := strings.LastIndexByte(raw, '_')
	if i < 0 || len(raw)-i-1 != bodyLen {
		return Parsed{}, false
	}
	prefix, body := raw[:i], raw[i+1:]
	if !validPrefix(prefix) {
		return Parsed{}, false
	}
	for j := 0; j < len(body); j++ {
		if !isBase62(body[j]) {
			return Parsed{}, false
		}
	}
	var buf [MaxKeyLen]byte
	return Parsed{Prefix: prefix, Digest: sha256.Sum256(buf[:copy(buf[:], raw)]), Last4: raw[len(raw)-4:]}, true
}

// checksumValid reports whether a key of valid shape carries the checksum
// of the rest of it.
func checksumValid(raw string) bool {
	sum := checksumOf(raw[:len(raw)-checksumLen])
	return string(sum[:]) == raw[len(raw)-checksumLen:]
}
