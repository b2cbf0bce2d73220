// Package striped has a counter that many cores can bump at once without
// fighting over one cache line: each add goes to a slot chosen at random,
// and a read sums the slots. Reads are rare (a scrape, a stats call);
// adds happen on every request.
package striped

import (
	"math/rand/v2"
	"sync/atomic"
)

// slots is a power of two, a few times the cores of the machines we run on.
const slots = 8

// Counter is a striped uint64 counter; the zero value is ready.
type Counter struct {
	s [slots]struct {
		n atomic.Uint64
		_ [56]byte // one slot per 64-byte cache line
	}
}

// Inc adds one.
func (c *Counter) Inc() { c.Add(1) }

// Add adds n.
func (c *Counter) Add(n uint64) { c.s[rand.Uint32()%slots].n.Add(n) }

// Next adds one to a random slot and returns the slot and its new count:
// the pairs it returns are unique, which makes it a sequence as well.
func (c *Counter) Next() (slot int, n uint64) {
	i := rand.Uint32() % slots
	return int(i), c.s[i].n.Add(1)
}

// Load returns the sum of the slots.
func (c *Counter) Load() uint64 {
	var n uint64
	for i := range c.s {
		n += c.s[i].n.Load()
	}
	return n
}
