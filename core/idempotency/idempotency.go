// Package idempotency keeps the answers to requests sent with an
// Idempotency-Key, so that a client's retry is answered with the first
// answer instead of running the request again. The store is one host's
// memory: bounded in entries and bytes, each answer kept for a TTL on the
// host's clock.
package idempotency

import (
	"container/list"
	"crypto/sha256"
	"errors"
	"net/http"
	"sync"
	"time"
)

// MaxKeyLen is the longest Idempotency-Key the host accepts; metering uses
// the same bound for its charge ids.
const MaxKeyLen = 128

// MaxResponse is the largest answer body kept for replay.
const MaxResponse = 1 << 20

// entryOverhead approximates what an entry costs beyond its strings,
// headers and body, for the byte bound.
const entryOverhead = 256

var (
	// ErrInProgress: the first request with the key has not answered yet.
	ErrInProgress = errors.New("idempotency: the first request with this key is still running")
	// ErrReused: the key came with another request (query or body).
	ErrReused = errors.New("idempotency: the key was used with another request")
	// ErrNotKept: the first request answered, but its answer was too large
	// to keep; Begin returns its status.
	ErrNotKept = errors.New("idempotency: the first answer was too large to keep")
)

// Key names one request: who sent it, to which route, with which
// Idempotency-Key.
type Key struct {
	OrgID  string
	Caller string // the key id (or the user of a session)
	Method string
	Path   string
	Value  string // the Idempotency-Key header
}

// Response is an answer as it is kept and replayed.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Sum is the fingerprint of a request's content: the same key with another
// fingerprint is ErrReused.
func Sum(query string, body []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(query))
	h.Write([]byte{0})
	h.Write(body)
	var s [32]byte
	h.Sum(s[:0])
	return s
}

// Settings bound the store.
type Settings struct {
	TTL        time.Duration // how long an answer is kept
	MaxEntries int
	MaxBytes   int64
}

// Store is the in-memory store. The zero value is not usable; see New.
type Store struct {
	set Settings
	now func() time.Time

	mu      sync.Mutex
	entries map[Key]*entry
	order   list.List // of *entry, oldest first: the eviction order
	bytes   int64
}

type entry struct {
	key     Key
	sum     [32]byte
	done    bool // answered; resp holds the answer
	kept    bool // the body was small enough to keep
	resp    Response
	size    int64
	expires time.Time
	elem    *list.Element
}

// New returns a store on the clock now (time.Now when nil).
func New(set Settings, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	s := &Store{set: set, now: now, entries: map[Key]*entry{}}
	s.order.Init()
	return s
}

// Len is how many keys the store holds, answered or running.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// Begin looks up k for a request whose content has fingerprint sum. A kept
// answer comes back for replay. A new key is claimed for this request: the
// caller runs it and must Finish or Release the claim. Otherwise the error
// says why neither (ErrInProgress, ErrReused, or ErrNotKept with the first
// answer's status and headers).
func (s *Store) Begin(k Key, sum [32]byte) (*Claim, *Response, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	if e, ok := s.entries[k]; ok && !now.Before(e.expires) {
		s.remove(e) // behind a fresher one, after the clock moved back
	}
	if e, ok := s.entries[k]; ok {
		switch {
		case e.sum != sum:
			return nil, nil, ErrReused
		case !e.done:
			return nil, nil, ErrInProgress
		}
		r := &Response{Status: e.resp.Status, Header: e.resp.Header.Clone(), Body: e.resp.Body}
		if !e.kept {
			return nil, r, ErrNotKept
		}
		return nil, r, nil
	}
	e := &entry{key: k, sum: sum, expires: now.Add(s.set.TTL)}
	e.size = entrySize(e)
	e.elem = s.order.PushBack(e)
	s.entries[k] = e
	s.bytes += e.size
	s.evict()
	return &Claim{s: s, e: e}, nil, nil
}

// expire drops the answers past their time from the front.
func (s *Store) expire(now time.Time) {
	for f := s.order.Front(); f != nil; f = s.order.Front() {
		e := f.Value.(*entry)
		if now.Before(e.expires) {
			return
		}
		s.remove(e)
	}
}

// evict drops the oldest entries while the store is over a bound.
func (s *Store) evict() {
	for s.order.Len() > 0 && (s.order.Len() > s.set.MaxEntries || s.bytes > s.set.MaxBytes) {
		s.remove(s.order.Front().Value.(*entry))
	}
}

func (s *Store) remove(e *entry) {
	s.order.Remove(e.elem)
	delete(s.entries, e.key)
	s.bytes -= e.size
}

func entrySize(e *entry) int64 {
	n := entryOverhead + len(e.key.OrgID) + len(e.key.Caller) + len(e.key.Method) + len(e.key.Path) + len(e.key.Value) + len(e.resp.Body)
	for k, vs := range e.resp.Header {
		for _, v := range vs {
			n += len(k) + len(v)
		}
	}
	return int64(n)
}

// Claim is a key claimed by the request now running.
type Claim struct {
	s *Store
	e *entry
}

// Finish keeps the answer for replay, for the store's TTL from now. A body
// above MaxResponse is not kept: a retry learns the status, not the body.
func (c *Claim) Finish(r Response) {
	s, e := c.s, c.e
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries[e.key] != e || e.done {
		return // evicted meanwhile, or finished already
	}
	e.done = true
	e.kept = len(r.Body) <= MaxResponse
	e.resp = Response{Status: r.Status, Header: r.Header.Clone()}
	if e.kept {
		e.resp.Body = r.Body
	}
	s.bytes -= e.size
	e.size = entrySize(e)
	s.bytes += e.size
	e.expires = now.Add(s.set.TTL)
	s.order.MoveToBack(e.elem)
	s.evict()
}

// Release forgets a claim that has no answer to keep, so that a retry runs
// the request again. After Finish it does nothing.
func (c *Claim) Release() {
	s, e := c.s, c.e
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries[e.key] == e && !e.done {
		s.remove(e)
	}
}
