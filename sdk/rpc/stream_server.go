package rpc

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc/status"

	pb "github.com/indigo-hq/indigo/sdk/internal/proto"
)

// streamWorkers keep their goroutines (and grown stacks) between calls, as
// NewServer's stream workers do for unary calls.
const streamWorkers = 64

// HandleStream serves the calls the host frames on one stream. Each call
// runs concurrently, under its own deadline, and may be cancelled by a
// cancel frame; answers go back in the order they finish.
func (s *moduleServer) HandleStream(stream pb.Module_HandleStreamServer) error {
	ctx, cancelAll := context.WithCancel(stream.Context())
	defer cancelAll()
	var (
		sendMu  sync.Mutex
		mu      sync.Mutex
		cancels = map[uint64]context.CancelFunc{}
		wg      sync.WaitGroup
	)
	serve := func(req *pb.StreamRequest, cctx context.Context) {
		out := &pb.StreamResponse{Id: req.GetId()}
		resp, err := s.impl.Handle(cctx, fromProtoRequest(req.GetRequest()))
		if err != nil {
			st := status.Convert(err)
			out.Code, out.Message = int32(st.Code()), st.Message()
		} else {
			out.Response = toProtoResponse(resp)
			resp.Release()
		}
		mu.Lock()
		if c, ok := cancels[req.GetId()]; ok {
			c()
			delete(cancels, req.GetId())
		}
		mu.Unlock()
		sendMu.Lock()
		_ = stream.Send(out) // a broken stream ends Recv below too
		sendMu.Unlock()
	}
	type job struct {
		req *pb.StreamRequest
		ctx context.Context
	}
	jobs := make(chan job)
	for range streamWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				serve(j.req, j.ctx)
			}
		}()
	}
	defer func() {
		cancelAll() // the calls still running end with the stream
		close(jobs)
		wg.Wait()
	}()
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil // the host closed the stream, or went away
		}
		id := req.GetId()
		if req.GetCancel() {
			mu.Lock()
			if c, ok := cancels[id]; ok {
				c()
				delete(cancels, id)
			}
			mu.Unlock()
			continue
		}
		var cctx context.Context
		var cancel context.CancelFunc
		if us := req.GetTimeoutMicros(); us > 0 {
			cctx, cancel = context.WithTimeout(ctx, time.Duration(us)*time.Microsecond)
		} else {
			cctx, cancel = context.WithCancel(ctx)
		}
		mu.Lock()
		cancels[id] = cancel
		mu.Unlock()
		select {
		case jobs <- job{req, cctx}:
		default:
			// Every worker is busy: this call gets its own goroutine.
			wg.Add(1)
			go func() {
				defer wg.Done()
				serve(req, cctx)
			}()
		}
	}
}
