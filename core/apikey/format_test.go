package apikey

import (
	"hash/crc32"
	"strings"
	"testing"
)

func TestGenerateParseRoundTrip(t *testing.T) {
	for _, prefix := range []string{"indigo_sk", "ab", "acme_live_key_01"} {
		raw, p := Generate(prefix)
		if !strings.HasPrefix(raw, prefix+"_") {
			t.Fatalf("%q does not start with %q", raw, prefix+"_")
		}
		if len(raw) != len(prefix)+1+bodyLen {
			t.Fatalf("length %d, want %d", len(raw), len(prefix)+1+bodyLen)
		}
		got, ok := Parse(raw)
		if !ok {
			t.Fatalf("Parse(%q) refused a generated key", raw)
		}
		if got != p || got.Prefix != prefix || got.Last4 != raw[len(raw)-4:] || got.Hash() != Hash(raw) {
			t.Fatalf("Parse = %+v, Generate said %+v", got, p)
		}
		if len(got.Hash()) != 64 {
			t.Fatalf("hash %q is not a hex SHA-256", got.Hash())
		}
		for _, p := range []string{prefix, "a", "1ab", "ab-c", "abcdefghijklmnopq"} {
			if validPrefix(p) != PrefixRE.MatchString(p) {
				t.Fatalf("validPrefix(%q) disagrees with PrefixRE", p)
			}
		}
		if c := checksumOf(raw[:len(raw)-6]); string(c[:]) != raw[len(raw)-6:] || checksum(raw[:len(raw)-6]) != string(c[:]) {
			t.Fatalf("checksum mismatch")
		}
	}
}

func TestGenerateIsRandom(t *testing.T) {
	seen := map[string]bool{}
	counts := map[byte]int{}
	for i := 0; i < 2000; i++ {
		raw, _ := Generate("indigo_sk")
		if seen[raw] {
			t.Fatalf("duplicate key after %d draws", i)
		}
		seen[raw] = true
		body := raw[len("indigo_sk_") : len(raw)-checksumLen]
		for j := 0; j < len(body); j++ {
			counts[body[j]]++
		}
	}
	// 44,000 draws over 62 symbols: every symbol appears, none wildly often.
	if len(counts) != 62 {
		t.Fatalf("only %d of 62 symbols drawn", len(counts))
	}
	for c, n := range counts {
		if n < 400 || n > 1100 {
			t.Fatalf("symbol %q drawn %d times; expected about 710", c, n)
		}
	}
}

func TestParseRejects(t *testing.T) {
	good, _ := Generate("indigo_sk")
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	cases := map[string]string{
		"empty":               "",
		"no prefix":           good[len("indigo_sk_"):],
		"typo in random part": flip(good, len("indigo_sk_")+3),
		"typo in checksum":    flip(good, len(good)-1),
		"typo in prefix":      "indigo_sl" + good[len("indigo_sk"):],
		"truncated":           good[:len(good)-1],
		"extended":            good + "a",
		"bad character":       good[:len(good)-8] + "-" + good[len(good)-7:],
		"uppercase prefix":    "INDIGO_SK" + good[len("indigo_sk"):],
		"space":               good[:12] + " " + good[13:],
		"too long":            strings.Repeat("a", 200),
	}
	for name, raw := range cases {
		if _, ok := Parse(raw); ok {
			t.Errorf("%s: Parse(%q) accepted", name, raw)
		}
	}
}

// The verify path's checksum is CRC-32 (IEEE) in base62, computed without
// a copy of the key: it must equal the standard library's CRC and allocate
// nothing.
func TestChecksumOfIsCRC32WithoutAllocating(t *testing.T) {
	for _, s := range []string{"", "a", "indigo_sk_abc", strings.Repeat("z", MaxKeyLen), strings.Repeat("\xff", MaxKeyLen+3)} {
		v := crc32.ChecksumIEEE([]byte(s))
		var want [checksumLen]byte
		for i := checksumLen - 1; i >= 0; i-- {
			want[i] = base62[v%62]
			v /= 62
		}
		if got := checksumOf(s); got != want {
			t.Errorf("checksumOf(%q) = %s, want %s", s, got[:], want[:])
		}
	}
	raw, _ := Generate("indigo_sk")
	if n := testing.AllocsPerRun(100, func() { _, _ = Parse(raw) }); n != 0 {
		t.Errorf("Parse allocates %.0f times per call, want 0", n)
	}
}
