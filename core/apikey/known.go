package apikey

import (
	"context"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bits-and-blooms/bloom/v3"

	"github.com/indigo-hq/indigo/db"
)

// A key that passes the checksum but is not cached costs a database lookup.
// Anyone can compute the checksum, so a flood of made-up keys would turn
// into a flood of lookups and slow every other caller. knownKeys is a Bloom
// filter of every stored key's hash, loaded at start and kept current by
// this host's creations and the change feed: a key it has never seen is
// refused without a lookup. A key the filter does not know may still have
// been created a moment ago on another host (the change feed takes
// milliseconds), so it is still looked up while fewer than 100 such
// lookups found nothing this second: a lookup that finds its key costs
// nothing, so only made-up keys use the budget up. A key found that way
// joins the filter.
const (
	// knownFalsePositive is the filter's target rate: one made-up key in
	// a thousand still costs a lookup (and is then cached as missing).
	knownFalsePositive = 0.001
	// knownMinCapacity sizes the filter of a small install; a filter is
	// sized for twice the keys it starts with and rebuilt when it fills.
	knownMinCapacity = 100_000
	// unknownLookups lookups a second of keys the filter does not know may
	// find nothing before such keys are refused without one.
	unknownLookups = 100
	knownPage      = 10_000
)

type knownKeys struct {
	ready    atomic.Bool // loaded: until then every key may exist
	mu       sync.RWMutex
	f        *bloom.BloomFilter
	capacity uint
	added    uint // since the last build
	building bool
	pending  [][32]byte    // added while a build runs, for the new filter
	refused  atomic.Uint64 // made-up keys refused without a lookup
	// The lookups of unknown keys that found nothing, in the current
	// second of the wall clock: a lookup that finds its key costs nothing,
	// so keys created elsewhere never use the budget up themselves.
	missSecond, misses atomic.Int64
}

func newKnownKeys() *knownKeys { return &knownKeys{} }

// mayExist reports whether a key with this digest may be stored.
func (k *knownKeys) mayExist(d *[32]byte) bool {
	if !k.ready.Load() {
		return true
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.f.Test(d[:])
}

// allowLookup reports whether a key the filter does not know may still be
// looked up: fewer than unknownLookups such lookups found nothing this
// second.
func (k *knownKeys) allowLookup() bool {
	// wall clock: a budget against floods, not a moment the keys' clock decides
	sec := time.Now().Unix()
	return k.missSecond.Load() != sec || k.misses.Load() < unknownLookups
}

// missed records a lookup of an unknown key that found nothing.
func (k *knownKeys) missed() {
	// wall clock: the same budget
	sec := time.Now().Unix()
	if k.missSecond.Swap(sec) != sec {
		k.misses.Store(0)
	}
	k.misses.Add(1)
}

// add records a stored key; it reports whether the filter is full enough
// to be rebuilt bigger.
func (k *knownKeys) add(d [32]byte) (full bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.building {
		k.pending = append(k.pending, d)
	}
	if k.f == nil {
		return false
	}
	k.f.Add(d[:])
	k.added++
	return k.added > k.capacity/2
}

// build loads every stored key's hash into a new filter and puts it in
// place. Keys added meanwhile go into both.
func (k *knownKeys) build(ctx context.Context, q db.Querier) error {
	k.mu.Lock()
	if k.building {
		k.mu.Unlock()
		return nil
	}
	k.building, k.pending = true, nil
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		k.building, k.pending = false, nil
		k.mu.Unlock()
	}()

	var digests [][32]byte
	after := ""
	for {
		rows, err := q.ListKeyHashesAfter(ctx, db.ListKeyHashesAfterParams{AfterID: after, Lim: knownPage})
		if err != nil {
			return err
		}
		for _, r := range rows {
			var d [32]byte
			if n, err := hex.Decode(d[:], []byte(r.KeyHash)); err == nil && n == len(d) {
				digests = append(digests, d)
			}
			after = r.ID
		}
		if len(rows) < knownPage {
			break
		}
	}
	capacity := max(uint(2*len(digests)), knownMinCapacity)
	f := bloom.NewWithEstimates(capacity, knownFalsePositive)
	for i := range digests {
		f.Add(digests[i][:])
	}
	k.mu.Lock()
	for i := range k.pending {
		f.Add(k.pending[i][:])
	}
	k.f, k.capacity, k.added = f, capacity, uint(len(digests)+len(k.pending))
	k.mu.Unlock()
	k.ready.Store(true)
	return nil
}

// LoadKnownKeys builds the filter of stored keys that lets verify refuse a
// made-up key without a database lookup. Until it has run (or when it
// fails) every key is looked up, as before.
func (s *Service) LoadKnownKeys(ctx context.Context) error {
	return s.known.build(ctx, s.store.Q())
}

// UnknownRefused counts keys refused without a lookup because no stored
// key has their hash.
func (s *Service) UnknownRefused() uint64 { return s.known.refused.Load() }

// learnKey records a key that now exists (created here, found by a lookup,
// or reported by the change feed), growing the filter when it fills.
func (s *Service) learnKey(d [32]byte) {
	if s.known.add(d) {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := s.known.build(ctx, s.store.Q()); err != nil {
				s.log.Warn("known keys: rebuild", "err", err)
			}
		}()
	}
}

// learnKeyID records a key that the change feed reports, by id.
func (s *Service) learnKeyID(ctx context.Context, id string) {
	if !s.known.ready.Load() {
		return
	}
	row, err := s.store.Q().GetKeyByID(ctx, id)
	if err != nil {
		return // deleted, or the database is away: the lookup budget covers it
	}
	var d [32]byte
	if n, err := hex.Decode(d[:], []byte(row.KeyHash)); err == nil && n == len(d) {
		s.learnKey(d)
	}
}
