// Package ids makes the identifiers and random tokens of Indigo's records:
// time-ordered ids such as key_01JD2… and hex tokens for sessions and
// sign-in links, all from crypto/rand.
package ids

import (
	"crypto/rand"
	"encoding/hex"
)

// New returns a time-ordered identifier such as key_01JD2...: 10 base32
// characters of milliseconds then 16 random ones, so ids sort by creation
// and list pagination can use them as a cursor.
func New(kind string, unixMilli int64) string {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ" // Crockford
	var b [26]byte
	t := uint64(unixMilli)
	for i := 9; i >= 0; i-- {
		b[i] = alphabet[t&31]
		t >>= 5
	}
	var r [16]byte
	if _, err := rand.Read(r[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	for i := 0; i < 16; i++ {
		b[10+i] = alphabet[r[i]&31]
	}
	return kind + "_" + string(b[:])
}

// Token returns n random bytes as hex, for sessions and links.
func Token(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b)
}
