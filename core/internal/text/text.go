// Package text says whether a request's text can be stored: valid UTF-8
// with no NUL character. PostgreSQL refuses both in a text column (SQLSTATE
// 22021), SQLite stores them as they come and hands them back in responses
// that are not UTF-8, and encoding/json turns invalid UTF-8 into U+FFFD
// without a word, so the host checks the raw bytes at its edge instead.
package text

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Valid reports whether s is valid UTF-8 without a NUL character.
func Valid(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == 0:
			return false
		case c >= utf8.RuneSelf:
			return utf8.ValidString(s[i:]) && strings.IndexByte(s[i:], 0) < 0
		}
	}
	return true
}

// Error says where and why a JSON body is not storable text.
type Error struct {
	Offset int // byte offset in the body
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("%s at byte %d", e.Reason, e.Offset) }

// CheckJSON checks a raw JSON body: valid UTF-8 with no NUL byte, and no
// string escape that decodes to NUL (\u0000) or to half of a surrogate
// pair (\ud800 alone), which no UTF-8 text can hold. Escapes are only
// legal inside strings, so a scan for backslashes finds every one without
// parsing the document; what is not JSON at all is the decoder's to refuse.
func CheckJSON(b []byte) error {
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == 0:
			return &Error{i, "a NUL byte"}
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				return &Error{i, "invalid UTF-8"}
			}
			i += n - 1
		case c == '\\' && i+1 < len(b):
			if b[i+1] != 'u' {
				if strings.IndexByte(`"\/bfnrt`, b[i+1]) >= 0 {
					i++ // \" \\ \n and the like: skip the escaped byte
				}
				continue // anything else is checked as it comes
			}
			r, ok := hex4(b, i+2)
			if !ok {
				i++ // malformed: the decoder refuses it
				continue
			}
			switch {
			case r == 0:
				return &Error{i, `an escaped NUL (\u0000)`}
			case r >= 0xdc00 && r <= 0xdfff:
				return &Error{i, "an unpaired surrogate escape"}
			case r >= 0xd800 && r <= 0xdbff:
				lo, ok := -1, i+7 < len(b) && b[i+6] == '\\' && b[i+7] == 'u'
				if ok {
					lo, ok = hex4(b, i+8)
				}
				if !ok || lo < 0xdc00 || lo > 0xdfff {
					return &Error{i, "an unpaired surrogate escape"}
				}
				i += 11
			default:
				i += 5
			}
		}
	}
	return nil
}

// hex4 reads the four hex digits at b[i:].
func hex4(b []byte, i int) (int, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	v := 0
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | int(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | int(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | int(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}
