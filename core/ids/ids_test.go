package ids

import (
	"strings"
	"testing"
)

func TestNewSortsByTimeAndIsUnique(t *testing.T) {
	a, b := New("key", 1_700_000_000_000), New("key", 1_700_000_000_001)
	if !strings.HasPrefix(a, "key_") || len(a) != len("key_")+26 || !(a < b) {
		t.Fatalf("%q then %q", a, b)
	}
	seen := map[string]bool{}
	for range 1000 {
		id := New("org", 1)
		if seen[id] {
			t.Fatalf("duplicate %s", id)
		}
		seen[id] = true
	}
}

func TestTokenLength(t *testing.T) {
	if tok, other := Token(32), Token(32); len(tok) != 64 || tok == other {
		t.Fatalf("%q %q", tok, other)
	}
}
