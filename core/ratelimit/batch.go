package ratelimit

import (
	"context"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The calls that arrive while a round trip is out go together in the next
// one, as one pipeline: at a low rate a call goes at once, alone; at a high
// rate one round trip (one write, one read, on both sides) carries many.
// Each call is still its own atomic script run, so batching changes no
// decision.

const (
	batchWorkers = 2   // round trips out at once
	maxBatch     = 128 // calls per round trip
)

type admitCall struct {
	keys []string
	args []any
	res  chan admitResult
}

type admitResult struct {
	vals []int64
	err  error
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
		s.roundTrip(batch)
	}
}

// roundTrip runs the batch as one pipeline of EVALSHA; when Redis does not
// know the script (after a restart) it loads it and tries once more.
func (s *Shared) roundTrip(batch []*admitCall) {
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(batch))
		for i, c := range batch {
			cmds[i] = admitScript.EvalSha(ctx, pipe, c.keys, c.args...)
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
		for i, c := range batch {
			vals, cerr := cmds[i].Int64Slice()
			c.res <- admitResult{vals: vals, err: cerr}
		}
		return
	}
}

// admit sends one call to Redis through the batcher and waits for its
// answer, or for the timeout.
func (s *Shared) admit(keys []string, args []any) ([]int64, error) {
	c := &admitCall{keys: keys, args: args, res: make(chan admitResult, 1)}
	t := time.NewTimer(s.timeout)
	defer t.Stop()
	select {
	case s.calls <- c:
	case <-t.C:
		return nil, context.DeadlineExceeded
	}
	select {
	case r := <-c.res:
		return r.vals, r.err
	case <-t.C:
		return nil, context.DeadlineExceeded
	}
}
