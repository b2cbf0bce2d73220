package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// admitScript decides n calls of one key in Redis, atomically and on
// Redis's clock, with a constant number of Redis commands however many
// calls it decides and however long the key's log is.
//
// The sliding-window log of KEYS[1] is a sorted set with one member per
// script run that admitted something, scored by the time in microseconds
// (so that calls a window apart are told apart to the microsecond):
// "<total>:<calls>:<unique>", where calls is how many calls the run
// admitted and total the calls the log has admitted up to and including
// them, counted since it was last empty. The calls within the window are
// then the newest member's total minus what the log had admitted before
// the oldest one (its total minus its calls): two lookups, not a count of
// members.
//
// The quota of KEYS[2] is a hash: remaining, last_refill. The calls are
// the concurrent calls of one key that one round trip carries (batch.go):
// the script admits as many as the limit and the quota allow, exactly as
// if they had come one by one. A call the limit refuses takes no quota,
// and a call either refuses takes no slot.
//
// A lease (lease.go) is a run's calls that a host admits later, on its
// own, within the lease time after the run: they go into the log with the
// run's calls, and also into KEYS[4], a sorted set of the leases by the
// time of their run ("<calls>:<unique>"). A lease's calls may be used up to
// the lease time after its run, so they count until a window after that:
// for the lease time after they leave the log, they are still counted from
// KEYS[4]. So no window's length admits more than the limit, leases or not.
// A lease is granted only to a key without a quota, only when all the run's
// calls were admitted, of at least 4 calls and at most a 64th of what the
// window has left, so that a key near its limit gets none.
//
// ARGV: limit, window_ms, has_quota (0/1), initial_remaining,
// initial_last_refill_ms, refill_amount, refill_interval_ms, member (a
// suffix, unique to the run), debit (quota this host spent on its own
// while Redis was unreachable, taken off first, once per token: KEYS[3]
// marks the token applied), n, lease_want (calls the host would like to
// lease, 0 for none).
// Returns {admitted, window_count_before, reset_ms, quota_remaining (-1
// without a quota), retry_ms, refusal (1 limited, 2 quota) for the calls
// beyond admitted, leased}.
var admitScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nowus = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit, win, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[10])
local winus = win * 1000
local leaseus = math.min(math.floor(winus / 64), 50000)
local count, reset, allowed, refusal = 0, 0, n, 1
local total, logged = 0, false
if limit > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', nowus - winus)
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if oldest[1] then
    logged = true
    local newest = redis.call('ZRANGE', KEYS[1], -1, -1)
    local before, calls = string.match(oldest[1], '^(%d+):(%d+):')
    total = tonumber(string.match(newest[1], '^(%d+):'))
    count = total - (tonumber(before) - tonumber(calls))
    reset = math.ceil((tonumber(oldest[2]) + winus - nowus) / 1000)
  end
  local tail = redis.call('ZRANGEBYSCORE', KEYS[4], '(' .. (nowus - winus - leaseus), nowus - winus, 'WITHSCORES')
  for i = 1, #tail, 2 do
    count = count + tonumber(string.match(tail[i], '^(%d+):'))
    if i == 1 then
      local r = math.ceil((tonumber(tail[2]) + winus + leaseus - nowus) / 1000)
      if not logged or r < reset then reset = r end
    end
  end
  if count >= limit then
    local q = -1
    if ARGV[3] == '1' then q = tonumber(redis.call('HGET', KEYS[2], 'remaining') or ARGV[4]) end
    return {0, count, reset, q, reset, 1, 0}
  end
  allowed = math.min(n, limit - count)
end
local q = -1
local retry = 0
if ARGV[3] == '1' then
  local h = redis.call('HMGET', KEYS[2], 'remaining', 'last_refill')
  local changed = not h[1] or not h[2]
  q = tonumber(h[1] or ARGV[4])
  local last = tonumber(h[2] or ARGV[5])
  local debit = tonumber(ARGV[9])
  if debit > 0 and redis.call('SET', KEYS[3], '1', 'NX', 'PX', 86400000) then
    q, changed = math.max(q - debit, 0), true
  end
  local amount, every = tonumber(ARGV[6]), tonumber(ARGV[7])
  if amount > 0 and every > 0 then
    if last == 0 then
      last, changed = now, true
    end
    local k = math.floor((now - last) / every)
    if k >= 1 then
      q, last, changed = amount, last + k * every, true
    end
    retry = last + every - now
  end
  if q < allowed then
    allowed, refusal = math.max(q, 0), 2
  end
  if allowed > 0 then
    q, changed = q - allowed, true
  end
  if changed then
    redis.call('HSET', KEYS[2], 'remaining', q, 'last_refill', last)
    redis.call('PEXPIRE', KEYS[2], 2592000000)
  end
end
local lease = 0
if limit > 0 then
  local want = tonumber(ARGV[11])
  if want > 0 and ARGV[3] ~= '1' and allowed == n and leaseus >= 1000 then
    lease = math.min(want, math.floor((limit - count - allowed) / 64))
    if lease < 4 then lease = 0 end
  end
  if allowed + lease > 0 then
    redis.call('ZADD', KEYS[1], nowus, (total + allowed + lease) .. ':' .. (allowed + lease) .. ':' .. ARGV[8])
    redis.call('PEXPIRE', KEYS[1], win)
    if not logged then reset = win end
  end
  if lease > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', nowus - winus - leaseus)
    redis.call('ZADD', KEYS[4], nowus, lease .. ':' .. ARGV[8])
    redis.call('PEXPIRE', KEYS[4], win + math.ceil(leaseus / 1000))
  end
  if refusal == 2 and allowed < n and count + allowed >= limit then refusal = 1 end
end
if refusal == 1 then retry = reset end
return {allowed, count, reset, q, retry, refusal, lease}
`)

// quotaScript reads a quota for the write-back: {remaining, last_refill}.
var quotaScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('HMGET', KEYS[1], 'remaining', 'last_refill')
`)

// Fallback policies when Redis cannot be reached ([redis] on_error).
const (
	OnErrorLocal = "local" // each host limits alone, to its share of the limit
	OnErrorDeny  = "deny"  // refuse limited keys until Redis answers
)

// Shared is the limiter of several hosts: the counters live in Redis, so
// that N hosts admit what one would. A key without a limit or a quota
// makes no Redis call. When Redis does not answer, OnErrorLocal falls back
// to this host's own limiter with the limit (and the stored quota) divided
// by the number of live hosts; OnErrorDeny refuses. The switch both ways is
// logged once and shown by Degraded.
type Shared struct {
	rdb     redis.UniversalClient
	local   *Limiter
	onError string
	log     *slog.Logger
	prefix  string
	member  string // this host, to make each admission's member unique
	seq     atomic.Uint64
	hosts   atomic.Int64 // live hosts, for the fallback's share

	degraded atomic.Bool
	// retryAt (unix ns) is when a degraded limiter asks Redis again: until
	// then calls fall back at once instead of each waiting for a timeout.
	retryAt atomic.Int64
	dirtyMu sync.Mutex
	dirty   map[string]int64 // key id -> quota epoch to write back
	taken   map[string]int64 // what the last TakeDirty returned
	// seen is the lowest quota this host has seen per key and epoch: after
	// a Redis restart the count starts again from it rather than from the
	// (older) value of the key's record, so the restart re-grants at most
	// what other hosts spent since this host last looked.
	seen sync.Map // "id:epoch" -> int64
	// spent is the quota this host admitted on its own while Redis was
	// unreachable, per "id:epoch": the next call that reaches Redis takes
	// it off the shared count, so the outage grants no call twice.
	spentMu  sync.Mutex
	spent    map[string]int64   // not yet sent
	unsure   map[string][]debit // sent, but the answer was lost: sent again as is
	anySpent atomic.Bool        // spent or unsure is not empty (the common case needs no lock)
	timeout  time.Duration
	calls    chan *admitCall // to the batch workers (batch.go)
	names    sync.Map        // key id -> *keyNames
	// viaRedis, viaLease and viaFallback count the calls decided each
	// way: by a round trip, from a lease, without Redis.
	viaRedis, viaLease, viaFallback atomic.Uint64
	leases                          leases
	stop                            context.CancelFunc
}

// NewShared returns a limiter on rdb. member names this host.
func NewShared(rdb redis.UniversalClient, onError, member string, log *slog.Logger) *Shared {
	s := &Shared{rdb: rdb, local: New(), onError: onError, log: log, prefix: "indigo:", member: member,
		dirty: map[string]int64{}, spent: map[string]int64{}, unsure: map[string][]debit{}, timeout: 250 * time.Millisecond}
	s.hosts.Store(1)
	var ctx context.Context
	ctx, s.stop = context.WithCancel(context.Background())
	s.startBatching(ctx)
	return s
}

// Close stops the batch workers.
func (s *Shared) Close() { s.stop() }

// SetLiveHosts is how many hosts share the limits now (at least 1); the
// local fallback admits each host's share.
func (s *Shared) SetLiveHosts(n int64) { s.hosts.Store(max(n, 1)) }

// keyNames are the strings a key's calls need, built once per key and
// quota epoch rather than on every call.
type keyNames struct {
	epoch       int64
	seen, rl, q string
	lease       string // the key's leases (KEYS[4])
	// used is when the key last had a call that was not leased, in
	// leaseClock's time, to the second (see touch), for Sweep.
	used atomic.Int64
}

// touch records a call of the key; a store at most once a second, so that
// a busy key's calls do not all write the same cache line.
func (nm *keyNames) touch() {
	if t := leaseClock() &^ (1<<30 - 1); nm.used.Load() != t {
		nm.used.Store(t)
	}
}

func (s *Shared) namesOf(id string, epoch int64) *keyNames {
	if v, ok := s.names.Load(id); ok {
		if nm := v.(*keyNames); nm.epoch == epoch {
			return nm
		}
	}
	seen := id + ":" + strconv.FormatInt(epoch, 10)
	nm := &keyNames{epoch: epoch, seen: seen, rl: s.prefix + "rlog:" + id, q: s.prefix + "q:" + seen, lease: s.prefix + "rlease:" + id}
	s.names.Store(id, nm)
	return nm
}

// Decided counts the limited calls decided by Redis and by the fallback.
func (s *Shared) Decided() (viaRedis, viaFallback uint64) {
	return s.viaRedis.Load(), s.viaFallback.Load()
}

// Leased counts the calls admitted from leases, without a round trip.
func (s *Shared) Leased() uint64 { return s.viaLease.Load() }

// Degraded reports whether the last call fell back because Redis did not
// answer.
func (s *Shared) Degraded() bool { return s.degraded.Load() }

// Admit decides one call for key id under policy p. now is used only by
// the fallback; Redis decides on its own clock.
func (s *Shared) Admit(id string, p Policy, now time.Time) Decision {
	limited := p.Limit > 0 && p.Window > 0
	if !limited && p.Remaining == nil {
		return Decision{Limit: p.Limit}
	}
	var kl *keyLease
	if limited && p.Remaining == nil {
		kl = s.leases.of(id, p)
		if d, ok := kl.use(p); ok {
			s.viaLease.Add(1)
			return d
		}
	}
	// wall clock: a retry timer, not a moment that decides a limit
	if s.degraded.Load() && time.Now().UnixNano() < s.retryAt.Load() {
		return s.fallback(id, p, now, nil)
	}
	req := admitReq{refillAmount: p.RefillAmount, refillMS: p.RefillInterval.Milliseconds()}
	if limited {
		req.limit, req.windowMS = p.Limit, p.Window.Milliseconds()
	}
	var leaseStart int64
	if kl != nil {
		if req.leaseWant = kl.want(); req.leaseWant > 0 {
			leaseStart = leaseClock()
		}
	}
	nm := s.namesOf(id, p.Epoch)
	nm.touch()
	seenKey := nm.seen
	if p.Remaining != nil {
		start := *p.Remaining
		if v, ok := s.seen.Load(seenKey); ok {
			start = min(start, v.(int64))
		}
		req.hasQuota, req.initial = true, start
		if !p.LastRefill.IsZero() {
			req.lastRefill = p.LastRefill.UnixMilli()
		}
		req.debit = s.takeSpent(seenKey)
	}
	req.rlKey, req.qKey, req.leaseKey = nm.rl, nm.q, nm.lease
	res, err := s.admit(req)
	if req.leaseWant > 0 && err != nil {
		kl.asked(leaseStart, 0, Decision{})
	}
	if err != nil {
		if req.debit.amount > 0 {
			// It may or may not have reached Redis: it goes again with
			// the same token, which Redis applies once.
			s.spentMu.Lock()
			s.unsure[seenKey] = append(s.unsure[seenKey], req.debit)
			s.anySpent.Store(true)
			s.spentMu.Unlock()
		}
		// wall clock: the retry timer
		s.retryAt.Store(time.Now().Add(time.Second).UnixNano())
		return s.fallback(id, p, now, err)
	}
	s.recovered()
	s.viaRedis.Add(1)
	d := Decision{Limit: p.Limit, Remaining: max(res.windowRemaining, 0), Reset: time.Duration(res.resetMS) * time.Millisecond,
		RetryAfter: time.Duration(res.retryMS) * time.Millisecond}
	if !limited {
		d.Remaining, d.Reset = 0, 0
	}
	if p.Remaining != nil {
		q := max(res.quota, 0)
		d.QuotaRemaining = &q
		s.seen.Store(seenKey, q)
	}
	if req.leaseWant > 0 {
		kl.asked(leaseStart, res.lease, d)
	}
	switch res.code {
	case 1:
		d.Code = RateLimited
	case 2:
		d.Code = QuotaExceeded
	default:
		if p.Remaining != nil {
			s.dirtyMu.Lock()
			s.dirty[id] = p.Epoch
			s.dirtyMu.Unlock()
		}
	}
	return d
}

// fallback decides without Redis, per the on_error policy.
func (s *Shared) fallback(id string, p Policy, now time.Time, err error) Decision {
	s.viaFallback.Add(1)
	if s.degraded.CompareAndSwap(false, true) {
		s.log.Warn("redis is unreachable: rate limits and quotas fall back", "on_error", s.onError, "err", err)
	}
	if s.onError == OnErrorDeny {
		return Decision{Code: RateLimited, Limit: p.Limit, RetryAfter: time.Second, Reset: time.Second}
	}
	// Each live host admits its share, so the hosts together stay within
	// the limit; the quota each host may spend is its share of the stored
	// remaining.
	n := s.hosts.Load()
	share := p
	if p.Limit > 0 {
		share.Limit = max(p.Limit/n, 1)
	}
	if p.Remaining != nil {
		// The key's record may be older than what Redis last said remained.
		r := *p.Remaining
		if v, ok := s.seen.Load(id + ":" + strconv.FormatInt(p.Epoch, 10)); ok {
			r = min(r, v.(int64))
		}
		r /= n
		share.Remaining = &r
		share.Epoch = -p.Epoch - 1 // never written back over the shared count
	}
	d := s.local.Admit(id, share, now)
	if d.Code == OK && p.Remaining != nil {
		s.addSpent(id+":"+strconv.FormatInt(p.Epoch, 10), 1)
	}
	return d
}

func (s *Shared) addSpent(seenKey string, n int64) {
	s.spentMu.Lock()
	s.spent[seenKey] += n
	s.anySpent.Store(true)
	s.spentMu.Unlock()
}

// debit is quota a host spent on its own, sent to Redis under a token that
// makes it count once however often it is sent.
type debit struct {
	amount int64
	token  string
}

// takeSpent returns the next debit of a quota to send: one whose answer
// was lost, as it was, or else what was spent since, under a new token.
func (s *Shared) takeSpent(seenKey string) debit {
	if !s.anySpent.Load() {
		return debit{}
	}
	s.spentMu.Lock()
	defer s.spentMu.Unlock()
	var d debit
	if u := s.unsure[seenKey]; len(u) > 0 {
		d = u[0]
		if len(u) == 1 {
			delete(s.unsure, seenKey)
		} else {
			s.unsure[seenKey] = u[1:]
		}
	} else if n := s.spent[seenKey]; n > 0 {
		d = debit{amount: n, token: s.member + ":d" + strconv.FormatUint(s.seq.Add(1), 36)}
		delete(s.spent, seenKey)
	}
	s.anySpent.Store(len(s.spent) > 0 || len(s.unsure) > 0)
	return d
}

func (s *Shared) recovered() {
	if s.degraded.CompareAndSwap(true, false) {
		s.log.Info("redis answers again: rate limits and quotas are shared across hosts")
	}
}

// TakeDirty reads from Redis the quotas this host spent since the last
// call, for the write-back to the database. A key whose Redis entry is
// gone (Redis restarted) is skipped: the database keeps its last value.
func (s *Shared) TakeDirty() []Quota {
	s.dirtyMu.Lock()
	ids := s.dirty
	s.dirty, s.taken = map[string]int64{}, ids
	s.dirtyMu.Unlock()
	var out []Quota
	for id, epoch := range ids {
		q, found, err := s.readQuota(id, epoch, time.Second)
		switch {
		case err != nil:
			s.MarkDirtyEpoch(id, epoch)
		case found:
			out = append(out, q)
		}
	}
	return out
}

// readQuota reads a key's shared quota; found is false when Redis holds
// none (it restarted, or the key never spent any).
func (s *Shared) readQuota(id string, epoch int64, timeout time.Duration) (q Quota, found bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	vals, err := quotaScript.Run(ctx, s.rdb, []string{s.prefix + "q:" + id + ":" + strconv.FormatInt(epoch, 10)}).Slice()
	if errors.Is(err, redis.Nil) {
		return Quota{}, false, nil
	}
	if err != nil || len(vals) != 2 {
		return Quota{}, false, fmt.Errorf("read quota: %v", err)
	}
	rem, _ := strconv.ParseInt(fmt.Sprint(vals[0]), 10, 64)
	last, _ := strconv.ParseInt(fmt.Sprint(vals[1]), 10, 64)
	q = Quota{KeyID: id, Epoch: epoch, Remaining: rem}
	if last > 0 {
		q.LastRefill = time.UnixMilli(last)
	}
	return q, true, nil
}

// MarkDirtyEpoch flags a key's quota for the next write-back again.
func (s *Shared) MarkDirtyEpoch(id string, epoch int64) {
	s.dirtyMu.Lock()
	s.dirty[id] = epoch
	s.dirtyMu.Unlock()
}

// MarkDirty flags a key's quota again after a failed save, at the epoch
// TakeDirty returned it with.
func (s *Shared) MarkDirty(id string) {
	s.dirtyMu.Lock()
	defer s.dirtyMu.Unlock()
	if e, ok := s.taken[id]; ok {
		s.dirty[id] = e
	}
}

// Current is the live shared quota of a key.
func (s *Shared) Current(id string, epoch int64) (Quota, bool) {
	q, found, err := s.readQuota(id, epoch, s.timeout)
	return q, found && err == nil
}

// Sweep drops what this host keeps for keys it has not called for at least
// idle: their names, an ended lease, the lowest quota seen, and the
// fallback's state (see Limiter.Sweep). Redis keeps its own counts, which
// expire there. The lowest quota seen matters only when Redis lost its
// count: then the count starts from it or from the key's record, whichever
// is lower. idle must be longer than the usage write-back's interval and
// the key cache's lifetime, so that by the next call the record is one
// read again after the write-back and the lowest count seen is no lower.
func (s *Shared) Sweep(now time.Time, idle time.Duration) int {
	cutoff := leaseClock() - int64(idle)
	pending := func(id string) bool {
		s.dirtyMu.Lock()
		defer s.dirtyMu.Unlock()
		_, dirty := s.dirty[id]
		return dirty
	}
	n := 0
	s.names.Range(func(k, v any) bool {
		id, nm := k.(string), v.(*keyNames)
		if nm.used.Load() >= cutoff || pending(id) {
			return true
		}
		if kl, ok := s.leases.m.Load(id); ok && !kl.(*keyLease).idleSince(cutoff) {
			return true
		}
		s.names.CompareAndDelete(id, nm)
		s.leases.m.Delete(id)
		n++
		return true
	})
	// A key's lease is made before its names, which a call decided
	// without Redis never makes: a lease without names goes once idle.
	// A lowest quota seen goes with its key's names, or once its epoch is
	// not the key's any more.
	s.leases.m.Range(func(k, v any) bool {
		if _, named := s.names.Load(k); !named && v.(*keyLease).idleSince(cutoff) {
			s.leases.m.CompareAndDelete(k, v)
		}
		return true
	})
	s.seen.Range(func(k, _ any) bool {
		seenKey := k.(string)
		id := seenKey[:strings.LastIndexByte(seenKey, ':')]
		if nm, named := s.names.Load(id); !named || nm.(*keyNames).seen != seenKey {
			s.seen.Delete(seenKey)
		}
		return true
	})
	s.local.Sweep(now, idle)
	return n
}

// Forget drops a key's counters.
func (s *Shared) Forget(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	_ = s.rdb.Del(ctx, s.prefix+"rlog:"+id, s.prefix+"rlease:"+id).Err()
	s.leases.Delete(id)
	s.local.Forget(id)
	s.names.Delete(id)
}
