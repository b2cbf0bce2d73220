package rpc

import (
	"context"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/indigo-hq/indigo/sdk/internal/proto"
)

// streamBodyMax is the largest request body sent on the shared stream; a
// larger one goes as its own unary call, so that it cannot hold up the
// small calls queued behind it in the stream's flow-control window.
const streamBodyMax = 64 << 10

// callStream is one HandleStream stream and the calls waiting on it.
type callStream struct {
	stream pb.Module_HandleStreamClient
	cancel context.CancelFunc
	sendMu sync.Mutex // a gRPC stream allows one sender at a time

	mu      sync.Mutex
	pending map[uint64]chan *pb.StreamResponse
	done    chan struct{} // closed when the stream broke; err says why
	err     error
}

// callStream returns the open stream, opening one if there is none or the
// last one broke.
func (c *moduleClient) callStream() (*callStream, error) {
	c.csMu.Lock()
	defer c.csMu.Unlock()
	if cs := c.cs; cs != nil {
		select {
		case <-cs.done:
		default:
			return cs, nil
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := c.client.HandleStream(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	cs := &callStream{stream: st, cancel: cancel, pending: map[uint64]chan *pb.StreamResponse{}, done: make(chan struct{})}
	go cs.receive()
	c.cs = cs
	return cs, nil
}

func (cs *callStream) receive() {
	for {
		r, err := cs.stream.Recv()
		if err != nil {
			cs.mu.Lock()
			cs.err = err
			close(cs.done)
			cs.mu.Unlock()
			cs.cancel()
			return
		}
		cs.mu.Lock()
		ch := cs.pending[r.GetId()]
		delete(cs.pending, r.GetId())
		cs.mu.Unlock()
		if ch != nil {
			ch <- r // buffered: never blocks
		}
	}
}

func (cs *callStream) send(m *pb.StreamRequest) error {
	cs.sendMu.Lock()
	defer cs.sendMu.Unlock()
	return cs.stream.Send(m)
}

func (cs *callStream) forget(id uint64) {
	cs.mu.Lock()
	delete(cs.pending, id)
	cs.mu.Unlock()
}

// brokenErr is why a stream broke, as the status the call reports: a
// killed module makes it Unavailable, whatever gRPC said.
func (cs *callStream) brokenErr() error {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	msg := "module call stream closed"
	if cs.err != nil {
		msg += ": " + cs.err.Error()
	}
	return status.Error(codes.Unavailable, msg)
}

// handleOnStream is Handle over the shared stream.
func (c *moduleClient) handleOnStream(ctx context.Context, req Request) (Response, error) {
	cs, err := c.callStream()
	if err != nil {
		return Response{}, wrapCall(ctx, "handle", err)
	}
	id := c.nextID.Add(1)
	ch := make(chan *pb.StreamResponse, 1)
	cs.mu.Lock()
	if cs.err != nil {
		cs.mu.Unlock()
		return Response{}, wrapCall(ctx, "handle", cs.brokenErr())
	}
	cs.pending[id] = ch
	cs.mu.Unlock()

	var timeout int64
	if dl, ok := ctx.Deadline(); ok {
		// wall clock: context deadlines are on the real clock
		timeout = max(1, time.Until(dl).Microseconds())
	}
	if err := cs.send(&pb.StreamRequest{Id: id, Request: toProtoRequest(req), TimeoutMicros: timeout}); err != nil {
		cs.forget(id)
		// Send reports a broken stream as io.EOF, having sent nothing;
		// Recv has the reason.
		<-cs.done
		return Response{}, wrapCall(ctx, "handle", cs.brokenErr())
	}
	// From here the module may have the request.
	select {
	case r := <-ch:
		// An answer that raced the deadline counts as late, as on a unary
		// call. The deadline is read from the clock: the context's own
		// timer may not have fired yet although the module's has.
		// wall clock: context deadlines are on the real clock
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			return Response{}, wrapCall(ctx, "handle", status.Error(codes.DeadlineExceeded, context.DeadlineExceeded.Error()))
		}
		if err := ctx.Err(); err != nil {
			return Response{}, wrapCall(ctx, "handle", status.FromContextError(err).Err())
		}
		if code := codes.Code(r.GetCode()); code != codes.OK {
			return Response{}, wrapCall(ctx, "handle", status.Error(code, r.GetMessage()))
		}
		return fromProtoResponse(r.GetResponse()), nil
	case <-ctx.Done():
		cs.forget(id)
		_ = cs.send(&pb.StreamRequest{Id: id, Cancel: true})
		return Response{}, wrapCall(ctx, "handle", status.FromContextError(ctx.Err()).Err())
	case <-cs.done:
		return Response{}, wrapSent(ctx, "handle", cs.brokenErr())
	}
}

// noStreams turns the shared stream off in this process (INDIGO_MODULE_STREAMS=0),
// to compare the two wires.
var noStreams = os.Getenv("INDIGO_MODULE_STREAMS") == "0"
