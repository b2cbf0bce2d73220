// Package keycache is the verify path's cache of key records by the
// SHA-256 digest of the presented key, with remembered misses, an index by
// key id for invalidation, and a time-to-live as a backstop.
//
// Reads take no lock and write no shared memory (a sync.Map load and an
// atomic load), so that verification on many cores does not fight over one
// cache line; writers (a miss being filled, an invalidation) serialise on a
// mutex. A generation counter stops a lookup that raced an invalidation
// from storing what it read before the change.
package keycache

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/indigo-hq/indigo/core/internal/striped"
)

// Cache maps digests to records of type V; a nil record is a remembered
// miss (no key has that digest).
type Cache[V any] struct {
	byHash sync.Map // [32]byte -> entry[V]
	gen    atomic.Uint64

	mu          sync.Mutex
	hashByID    map[string][32]byte
	negative    int
	maxNegative int
	ttl         time.Duration

	hits, misses striped.Counter
}

type entry[V any] struct {
	rec     *V
	expires time.Time
}

// New returns a cache whose entries live ttl at most, holding at most
// maxNegative remembered misses (when full, they are all dropped at once).
func New[V any](ttl time.Duration, maxNegative int) *Cache[V] {
	return &Cache[V]{hashByID: map[string][32]byte{}, ttl: ttl, maxNegative: maxNegative}
}

// Get returns the entry for hash: its record (nil for a remembered miss)
// and whether there is a live entry at all. The generation it returns goes
// to Put when there is none; it is read first, so an invalidation after
// this point makes that Put a no-op.
func (c *Cache[V]) Get(hash [32]byte, now time.Time) (rec *V, ok bool, gen uint64) {
	gen = c.gen.Load()
	v, found := c.byHash.Load(hash)
	if !found {
		return nil, false, gen
	}
	e := v.(entry[V])
	if now.After(e.expires) {
		return nil, false, gen
	}
	return e.rec, true, gen
}

// Put stores what a lookup found for hash: the record with its key id, or
// nil and "" for no such key. It does nothing when the cache was
// invalidated since the Get that returned gen.
func (c *Cache[V]) Put(hash [32]byte, id string, rec *V, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen.Load() {
		return
	}
	if rec == nil {
		if c.negative >= c.maxNegative {
			c.byHash.Range(func(h, v any) bool {
				if v.(entry[V]).rec == nil {
					c.byHash.Delete(h)
				}
				return true
			})
			c.negative = 0
		}
		c.negative++
	} else {
		c.hashByID[id] = hash
	}
	c.byHash.Store(hash, entry[V]{rec: rec, expires: now.Add(c.ttl)})
}

// Invalidate drops the record of key id, and makes every lookup in flight
// store nothing.
func (c *Cache[V]) Invalidate(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	if h, ok := c.hashByID[id]; ok {
		c.byHash.Delete(h)
		delete(c.hashByID, id)
	}
}

// Hit and Miss count lookups for Stats; the caller decides which is which
// (a bad checksum, refused before any lookup, is neither).
func (c *Cache[V]) Hit()  { c.hits.Inc() }
func (c *Cache[V]) Miss() { c.misses.Inc() }

// Stats reports the hits and misses counted so far.
func (c *Cache[V]) Stats() (hits, misses uint64) { return c.hits.Load(), c.misses.Load() }
