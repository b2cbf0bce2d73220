package text

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValid(t *testing.T) {
	for _, c := range []struct {
		s    string
		want bool
	}{
		{"", true}, {"key_01ABC", true}, {"café ✓ 😀", true}, {"\uFFFD", true},
		{"\x00", false}, {"a\x00", false}, {"é\x00", false},
		{"\xff", false}, {"a\xc3\x28", false}, {"\xed\xa0\x80", false}, // the last: a surrogate in UTF-8
	} {
		if got := Valid(c.s); got != c.want {
			t.Errorf("Valid(%q) = %v, want %v", c.s, got, c.want)
		}
	}
}

func TestCheckJSON(t *testing.T) {
	for _, c := range []struct {
		body   string
		reason string // "" when the body is fine
	}{
		{`{"name":"a"}`, ""},
		{`{"name":"café ✓ 😀"}`, ""},
		{`{"a":"\u00e9\u0001\ud83d\ude00\\u0000"}`, ""}, // \\u0000 is a backslash, then "u0000"
		{`{"a":"\"\\"}`, ""},
		{`{"a":"\u00"}`, ""}, // malformed: the decoder's to refuse
		{`{"a":"\u0000"}`, "escaped NUL"},
		{`{"a":{"b":[1,{"c":"x\u0000"}]}}`, "escaped NUL"},
		{`{"\u0000":1}`, "escaped NUL"},
		{`{"a":"\\\u0000"}`, "escaped NUL"},
		{`{"a":"\ud800"}`, "unpaired surrogate"},
		{`{"a":"\uD800x"}`, "unpaired surrogate"},
		{`{"a":"\ud800\u0041"}`, "unpaired surrogate"},
		{`{"a":"\udc00"}`, "unpaired surrogate"},
		{`{"a":"\ud83d"}`, "unpaired surrogate"},
		{"{\"a\":\"\xff\"}", "invalid UTF-8"},
		{"{\"a\":\"\xc3\x28\"}", "invalid UTF-8"},
		{"{\"a\":\"\xed\xa0\x80\"}", "invalid UTF-8"},
		{"{\"a\":\"\x00\"}", "NUL byte"},
		{"{\"a\":\"\\\x00\"}", "NUL byte"},  // a backslash does not hide what follows it
		{"{\"a\":\\\xff}", "invalid UTF-8"}, // (found by FuzzJSONBody)
	} {
		err := CheckJSON([]byte(c.body))
		switch {
		case c.reason == "" && err != nil:
			t.Errorf("CheckJSON(%q) = %v, want nil", c.body, err)
		case c.reason != "" && (err == nil || !strings.Contains(err.Error(), c.reason)):
			t.Errorf("CheckJSON(%q) = %v, want %q", c.body, err, c.reason)
		case err != nil && !utf8.ValidString(err.Error()):
			t.Errorf("CheckJSON(%q): the message is not UTF-8", c.body)
		}
	}
}
