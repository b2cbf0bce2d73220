package keycache

import (
	"sync"
	"testing"
	"time"
)

type rec struct{ id string }

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func digest(b byte) [32]byte { return [32]byte{b} }

func TestHitMissAndTTL(t *testing.T) {
	c := New[rec](time.Minute, 10)
	if _, ok, _ := c.Get(digest(1), t0); ok {
		t.Fatal("an empty cache had an entry")
	}
	_, _, gen := c.Get(digest(1), t0)
	c.Put(digest(1), "k1", &rec{"k1"}, gen, t0)
	if r, ok, _ := c.Get(digest(1), t0.Add(time.Minute)); !ok || r.id != "k1" {
		t.Fatalf("at the TTL: %v %v", r, ok)
	}
	if _, ok, _ := c.Get(digest(1), t0.Add(time.Minute+time.Nanosecond)); ok {
		t.Fatal("an entry outlived its TTL")
	}
	// A remembered miss is an entry with no record.
	_, _, gen = c.Get(digest(2), t0)
	c.Put(digest(2), "", nil, gen, t0)
	if r, ok, _ := c.Get(digest(2), t0); !ok || r != nil {
		t.Fatalf("remembered miss: %v %v", r, ok)
	}
	c.Hit()
	c.Miss()
	c.Miss()
	if h, m := c.Stats(); h != 1 || m != 2 {
		t.Fatalf("stats %d %d", h, m)
	}
}

func TestInvalidateDropsTheRecordAndStopsARacingPut(t *testing.T) {
	c := New[rec](time.Hour, 10)
	_, _, gen := c.Get(digest(1), t0)
	c.Put(digest(1), "k1", &rec{"k1"}, gen, t0)
	c.Invalidate("k1")
	if _, ok, _ := c.Get(digest(1), t0); ok {
		t.Fatal("the invalidated record is still served")
	}
	// A lookup that began before an invalidation must not store what it read.
	_, _, gen = c.Get(digest(1), t0)
	c.Invalidate("k1")
	c.Put(digest(1), "k1", &rec{"stale"}, gen, t0)
	if _, ok, _ := c.Get(digest(1), t0); ok {
		t.Fatal("a put that raced an invalidation was stored")
	}
	// Invalidating an id with no record is harmless.
	c.Invalidate("nobody")
}

func TestRememberedMissesAreBounded(t *testing.T) {
	c := New[rec](time.Hour, 3)
	_, _, gen := c.Get(digest(100), t0)
	c.Put(digest(100), "k", &rec{"k"}, gen, t0)
	for i := range byte(3) {
		_, _, gen := c.Get(digest(i), t0)
		c.Put(digest(i), "", nil, gen, t0)
	}
	_, _, gen = c.Get(digest(9), t0)
	c.Put(digest(9), "", nil, gen, t0) // the fourth miss clears the first three
	for i := range byte(3) {
		if _, ok, _ := c.Get(digest(i), t0); ok {
			t.Fatalf("miss %d survived the bound", i)
		}
	}
	if _, ok, _ := c.Get(digest(9), t0); !ok {
		t.Fatal("the newest miss was dropped")
	}
	if r, ok, _ := c.Get(digest(100), t0); !ok || r.id != "k" {
		t.Fatal("a record was dropped with the misses")
	}
}

// Readers, writers and invalidations at once (run with -race).
func TestConcurrentUse(t *testing.T) {
	c := New[rec](time.Hour, 50)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 500 {
				d := digest(byte(i % 64))
				if _, ok, gen := c.Get(d, t0); !ok {
					if w%2 == 0 {
						c.Put(d, "k", &rec{"k"}, gen, t0)
					} else {
						c.Put(d, "", nil, gen, t0)
					}
				}
				if i%50 == 0 {
					c.Invalidate("k")
				}
			}
		})
	}
	wg.Wait()
}
