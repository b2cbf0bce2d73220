package apikey

import (
	"crypto/sha256"
	"hash/crc32"
	"regexp"
	"testing"
)

// keyRE is the key format as the design states it, written independently
// of the hand-rolled parser.
var keyRE = regexp.MustCompile(`^[a-z][a-z0-9_]{1,15}_[0-9A-Za-z]{28}$`)

// referenceChecksum is CRC-32 (IEEE) of s in six base62 characters, through
// the standard library.
func referenceChecksum(s string) string {
	v := crc32.ChecksumIEEE([]byte(s))
	var out [checksumLen]byte
	for i := checksumLen - 1; i >= 0; i-- {
		out[i] = base62[v%62]
		v /= 62
	}
	return string(out[:])
}

// FuzzParseKey: Parse accepts exactly the keys of the stated format whose
// last six characters are the checksum of the rest; what it returns is the
// key's own prefix, digest and last four; and a key with any one byte
// changed is refused (CRC-32 catches every single-byte error, and its
// base62 form is one-to-one). Keys carrying the right checksum are built
// from the input, since the fuzzer would rarely hit one by chance.
func FuzzParseKey(f *testing.F) {
	good, _ := Generate("indigo_sk")
	for _, s := range []string{good, "ab_" + good[len("indigo_sk_"):], good[:len(good)-1], good + "x", "", "indigo_sk_", "_" + good,
		"indigo_sk_0000000000000000000000000000", "Indigo_sk" + good[len("indigo_sk"):], "a_b_c_" + good[len("indigo_sk_"):]} {
		f.Add(s, uint8(0), byte('a'))
	}
	f.Add(good, uint8(len(good)-1), byte('Z'))
	f.Add(good, uint8(3), byte('-'))
	f.Fuzz(func(t *testing.T, raw string, pos uint8, b byte) {
		check := func(raw string) bool {
			p, ok := Parse(raw)
			shape := keyRE.MatchString(raw)
			want := shape && referenceChecksum(raw[:len(raw)-checksumLen]) == raw[len(raw)-checksumLen:]
			if ok != want {
				t.Fatalf("Parse(%q) = %v, want %v (shape %v)", raw, ok, want, shape)
			}
			if _, sok := parseShape(raw); sok != shape {
				t.Fatalf("parseShape(%q) = %v, the format says %v", raw, sok, shape)
			}
			if !ok {
				if p != (Parsed{}) {
					t.Fatalf("a refused key returned %+v", p)
				}
				return false
			}
			if p.Prefix != raw[:len(raw)-bodyLen-1] || p.Last4 != raw[len(raw)-4:] || p.Digest != sha256.Sum256([]byte(raw)) || p.Hash() != Hash(raw) {
				t.Fatalf("Parse(%q) = %+v", raw, p)
			}
			return true
		}
		check(raw)
		// The same bytes, made to carry the right checksum.
		if len(raw) >= checksumLen {
			signed := raw[:len(raw)-checksumLen] + referenceChecksum(raw[:len(raw)-checksumLen])
			if check(signed) != keyRE.MatchString(signed) {
				t.Fatalf("%q has the right checksum and shape but is refused", signed)
			}
			if keyRE.MatchString(signed) {
				i := int(pos) % len(signed)
				if signed[i] != b {
					typo := signed[:i] + string([]byte{b}) + signed[i+1:]
					if _, ok := Parse(typo); ok {
						t.Fatalf("%q (one byte changed from %q) is accepted", typo, signed)
					}
				}
			}
		}
	})
}
