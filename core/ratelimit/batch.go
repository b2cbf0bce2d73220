package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The calls that arrive while a round trip is out go together in the next
// one, as one pipeline: at a low rate a call goes at once, alone; at a high
// rate one round trip (one write, one read, on both sides) carries many,
// and the concurrent calls of one key are one script run (group). Batching
// changes no decision: a run decides its calls as if they came one by one.
// At a high rate of one key, leases (lease.go) save most round trips.
//
// One round trip is out at a time. With two, the second left while the
// first was out and carried the few calls that had come meanwhile: 0.20
// round trips per call instead of 0.13 (BenchmarkSharedAdmit, 16 callers),
// and a quarter more CPU on both sides for no shorter wait.

const (
	batchWorkers = 1   // round trips out at once
	maxBatch     = 128 // calls per round trip
)

// admitReq is one call's question to Redis: its key's limit and quota.
type admitReq struct {
	rlKey, qKey, leaseKey  string
	limit, windowMS        int64
	hasQuota               bool
	initial, lastRefill    int64
	refillAmount, refillMS int64
	debit                  debit // a call with one goes alone
	leaseWant              int64 // a lease asked for (lease.go)
}

// admitRes is Redis's answer for one call.
type admitRes struct {
	code                     int64 // 0 admitted, 1 limited, 2 quota
	windowRemaining, resetMS int64
	quota, retryMS           int64 // quota is -1 without one
	lease                    int64 // calls leased, to the group's first call
}

type admitCall struct {
	req   admitReq
	res   chan admitResult
	timer *time.Timer
}

type admitResult struct {
	res admitRes
	err error
}

// startBatching starts the workers that carry calls to Redis; they stop
// with ctx.
func (s *Shared) startBatching(ctx context.Context) {
	s.calls = make(chan *admitCall, 4096)
	for range batchWorkers {
		go s.batchWorker(ctx)
	}
}

func (s *Shared) batchWorker(ctx context.Context) {
	batch := make([]*admitCall, 0, maxBatch)
	var groups []group
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-s.calls:
			batch = append(batch[:0], c)
		}
	more:
		for len(batch) < maxBatch {
			select {
			case c := <-s.calls:
				batch = append(batch, c)
			default:
				break more
			}
		}
		groups = s.roundTrip(batch, groups[:0])
	}
}

// group is the calls of one batch that ask the same question (one key,
// one policy): one script run decides them all.
type group struct {
	q     admitReq
	calls []*admitCall
}

func groupCalls(batch []*admitCall, groups []group) []group {
next:
	for _, c := range batch {
		if c.req.debit.amount == 0 {
			for i := range groups {
				if groups[i].q == c.req {
					groups[i].calls = append(groups[i].calls, c)
					continue next
				}
			}
		}
		groups = append(groups, group{q: c.req, calls: []*admitCall{c}})
	}
	return groups
}

// roundTrip runs the batch as one pipeline of EVALSHA, one per group; when
// Redis does not know the script (after a restart) it loads it and tries
// once more.
func (s *Shared) roundTrip(batch []*admitCall, groups []group) []group {
	groups = groupCalls(batch, groups)
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(groups))
		for i, g := range groups {
			q := g.q
			hasQuota := 0
			if q.hasQuota {
				hasQuota = 1
			}
			member := s.member + ":" + strconv.FormatUint(s.seq.Add(1), 36)
			keys := []string{q.rlKey, q.qKey, s.prefix + "debit:" + q.debit.token, q.leaseKey}
			cmds[i] = admitScript.EvalSha(ctx, pipe, keys,
				q.limit, q.windowMS, hasQuota, q.initial, q.lastRefill, q.refillAmount, q.refillMS, member, q.debit.amount, len(g.calls), q.leaseWant)
		}
		_, err := pipe.Exec(ctx)
		if err != nil && attempt == 0 && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			lerr := admitScript.Load(ctx, s.rdb).Err()
			cancel()
			if lerr == nil {
				continue
			}
		} else {
			cancel()
		}
		for i, g := range groups {
			vals, cerr := cmds[i].Int64Slice()
			if cerr == nil && len(vals) != 7 {
				cerr = fmt.Errorf("redis admit script: %d values", len(vals))
			}
			for j, c := range g.calls {
				if cerr != nil {
					c.res <- admitResult{err: cerr}
					continue
				}
				c.res <- admitResult{res: answerOf(g.q, vals, int64(j))}
			}
		}
		return groups
	}
}

// answerOf is the answer of the j-th call of a group from the script's
// {admitted, window_count_before, reset_ms, quota_after, retry_ms,
// refusal, leased}: the first admitted calls pass, each seeing the count
// as if the calls had come one by one; the rest get the refusal. The
// lease goes to the first call.
func answerOf(q admitReq, v []int64, j int64) admitRes {
	admitted, before, reset, quota, retry, refusal := v[0], v[1], v[2], v[3], v[4], v[5]
	if j < admitted {
		r := admitRes{windowRemaining: q.limit - (before + j + 1), resetMS: reset, quota: -1}
		if j == 0 {
			r.lease = v[6]
		}
		if quota >= 0 {
			r.quota = quota + (admitted - 1 - j)
		}
		return r
	}
	r := admitRes{code: refusal, windowRemaining: max(q.limit-(before+admitted), 0), resetMS: reset, quota: quota, retryMS: retry}
	if refusal == 2 && quota > 0 {
		r.quota = 0
	}
	return r
}

// callPool keeps calls, with their channel and timer, for reuse: a call
// goes back only once its answer was read, so no late answer can reach
// the next user.
var callPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &admitCall{res: make(chan admitResult, 1), timer: t}
}}

// admit sends one call to Redis through the batcher and waits for its
// answer, or for the timeout.
func (s *Shared) admit(req admitReq) (admitRes, error) {
	c := callPool.Get().(*admitCall)
	c.req = req
	c.timer.Reset(s.timeout)
	select {
	case s.calls <- c:
	case <-c.timer.C:
		callPool.Put(c) // never sent: nobody answers it
		return admitRes{}, context.DeadlineExceeded
	}
	select {
	case r := <-c.res:
		c.timer.Stop()
		callPool.Put(c)
		return r.res, r.err
	case <-c.timer.C:
		// The worker still answers into c.res: c is not reused.
		return admitRes{}, context.DeadlineExceeded
	}
}
