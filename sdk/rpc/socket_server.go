package rpc

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/indigo-hq/indigo/sdk/internal/proto"
)

// helloTimeout bounds how long a new connection may take to say hello.
const helloTimeout = 10 * time.Second

// dataServer is the module's end of the data socket: a goroutine per
// connection reads a call, runs it and writes the answer, then reads the
// next; the host opens as many connections as it has calls at once.
type dataServer struct {
	impl  Module
	ln    net.Listener
	token []byte
	tls   *tls.Config

	// ctx is every call's parent: it ends when the server closes.
	ctx  context.Context
	stop context.CancelFunc

	conns sync.Map // conn id (uint64) → *serverConn
}

// serverConn is one connection as the module serves it.
type serverConn struct {
	frameConn

	// The call running now and its cancel, for CancelCall; cancelled is
	// a call cancelled before it started here.
	mu        sync.Mutex
	call      uint64
	cancel    context.CancelFunc
	cancelled uint64
}

// OpenData starts the data socket at the path the host gives.
func (s *moduleServer) OpenData(_ context.Context, req *pb.OpenDataRequest) (*pb.OpenDataResponse, error) {
	if len(req.GetToken()) != tokenLen || req.GetPath() == "" {
		return nil, status.Error(codes.InvalidArgument, "open data socket: a path and a token of 32 bytes")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data != nil {
		return nil, status.Error(codes.AlreadyExists, "the data socket is open")
	}
	ds := &dataServer{impl: s.impl, token: append([]byte(nil), req.GetToken()...)}
	resp := &pb.OpenDataResponse{}
	if peer := req.GetHostCert(); len(peer) > 0 {
		own, err := newCert()
		if err != nil {
			return nil, status.Errorf(codes.Internal, "data socket certificate: %v", err)
		}
		ds.tls = serverTLS(own, peer)
		resp.ModuleCert = own.Certificate[0]
	}
	ln, err := net.Listen("unix", req.GetPath())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "listen on the data socket: %v", err)
	}
	// The directory keeps others out; the socket's own mode is a second
	// lock, for a directory opened up by mistake.
	if err := os.Chmod(req.GetPath(), 0o600); err != nil {
		_ = ln.Close()
		return nil, status.Errorf(codes.Internal, "data socket mode: %v", err)
	}
	ds.ln = ln
	ds.ctx, ds.stop = context.WithCancel(context.Background())
	go ds.serve()
	s.data = ds
	return resp, nil
}

// CancelCall ends the context of a call whose caller went away.
func (s *moduleServer) CancelCall(_ context.Context, req *pb.CancelCallRequest) (*pb.CancelCallResponse, error) {
	s.mu.Lock()
	ds := s.data
	s.mu.Unlock()
	if ds != nil {
		if v, ok := ds.conns.Load(req.GetConn()); ok {
			v.(*serverConn).cancelCall(req.GetCall())
		}
	}
	return &pb.CancelCallResponse{}, nil
}

func (sc *serverConn) cancelCall(id uint64) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.call == id && sc.cancel != nil {
		sc.cancel()
		return
	}
	// The cancel overtook its call (it came on another connection).
	sc.cancelled = id
}

// begin records the call now running on sc, and says whether it was
// cancelled already.
func (sc *serverConn) begin(id uint64, cancel context.CancelFunc) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.call, sc.cancel = id, cancel
	return sc.cancelled == id
}

func (sc *serverConn) end() {
	sc.mu.Lock()
	sc.call, sc.cancel = 0, nil
	sc.mu.Unlock()
}

// close stops accepting connections and ends the calls still running; the
// connections end as their calls do.
func (ds *dataServer) close() {
	_ = ds.ln.Close()
	ds.stop()
}

func (ds *dataServer) serve() {
	for {
		nc, err := ds.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// A passing failure (out of file descriptors): the host
			// retries its dial.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go ds.serveConn(nc)
	}
}

func (ds *dataServer) serveConn(raw net.Conn) {
	defer raw.Close()
	nc, id, ok := ds.hello(raw)
	if !ok {
		return
	}
	sc := &serverConn{frameConn: frameConn{nc: nc}}
	if _, dup := ds.conns.LoadOrStore(id, sc); dup {
		return
	}
	defer ds.conns.Delete(id)
	defer sc.release()
	sc.startFrame(frameAck)
	if err := sc.writeFrame(nil); err != nil {
		return
	}
	for {
		p, err := sc.readFrame()
		if err != nil {
			return
		}
		if !ds.call(sc, p) {
			return
		}
	}
}

// hello runs TLS, when configured, and reads the host's hello: the
// token and the connection's id.
// It returns the connection to serve (the TLS one, with TLS).
func (ds *dataServer) hello(nc net.Conn) (net.Conn, uint64, bool) {
	// wall clock: connection deadlines are on the real clock
	_ = nc.SetDeadline(time.Now().Add(helloTimeout))
	if ds.tls != nil {
		tc := tls.Server(nc, ds.tls)
		if err := tc.Handshake(); err != nil {
			return nil, 0, false
		}
		nc = tc
	}
	fc := frameConn{nc: nc}
	defer fc.release()
	p, err := fc.readFrame()
	if err != nil || len(p) < 1+tokenLen+1 || p[0] != frameHello {
		return nil, 0, false
	}
	if subtle.ConstantTimeCompare(p[1:1+tokenLen], ds.token) != 1 {
		return nil, 0, false
	}
	id, k := binary.Uvarint(p[1+tokenLen:])
	if k <= 0 || 1+tokenLen+k != len(p) {
		return nil, 0, false
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, id, true
}

// call runs one call frame and writes its answer; false ends the
// connection.
func (ds *dataServer) call(sc *serverConn, p []byte) bool {
	id, timeout, req, err := decodeCall(p)
	if err != nil {
		return false
	}
	var ctx context.Context
	var cancel context.CancelFunc
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(ds.ctx, time.Duration(timeout)*time.Microsecond)
	} else {
		ctx, cancel = context.WithCancel(ds.ctx)
	}
	if sc.begin(id, cancel) {
		cancel()
	}
	resp, err := ds.impl.Handle(ctx, req)
	sc.end()
	cancel()
	if err != nil {
		st, ok := status.FromError(err)
		if !ok {
			st = status.FromContextError(err)
		}
		sc.appendFailure(id, uint32(st.Code()), st.Message())
		err = sc.writeFrame(nil)
	} else {
		sc.appendAnswer(id, &resp)
		err = sc.writeFrame(resp.Body)
		resp.Release()
	}
	return err == nil
}
