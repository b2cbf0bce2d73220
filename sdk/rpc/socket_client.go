package rpc

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/indigo-hq/indigo/sdk/internal/proto"
)

// SocketOptions is how the host opens a module's data socket.
type SocketOptions struct {
	// Path is where the module listens. Its directory must be one that
	// only the host's user can open (mode 0700): that, not the token, is
	// what keeps other local users out.
	Path string
	// TLS runs every connection on the socket over mutual TLS, with
	// certificates made for the process and exchanged over the control
	// connection.
	TLS bool
}

// ErrNoDataSocket is OpenSocket's answer for a module built with an SDK
// that serves no data socket: its calls stay on gRPC.
var ErrNoDataSocket = errors.New("rpc: the module serves no data socket")

// OpenSocket moves m's calls from gRPC to a data socket, once m's manifest
// has been read (Describe) and says the module serves one. m is the Module
// dispensed by a go-plugin client.
func OpenSocket(ctx context.Context, m Module, o SocketOptions) error {
	c, ok := m.(*moduleClient)
	if !ok || !c.dataSocket.Load() {
		return ErrNoDataSocket
	}
	p := &socketPool{path: o.Path, client: c}
	if _, err := rand.Read(p.token[:]); err != nil {
		return err
	}
	req := &pb.OpenDataRequest{Path: o.Path, Token: p.token[:]}
	var hostCert tls.Certificate
	if o.TLS {
		var err error
		if hostCert, err = newCert(); err != nil {
			return err
		}
		req.HostCert = hostCert.Certificate[0]
	}
	resp, err := c.client.OpenData(ctx, req)
	if err != nil {
		return wrapCall(ctx, "open data socket", err)
	}
	if o.TLS {
		if len(resp.GetModuleCert()) == 0 {
			return errors.New("rpc: the module opened its data socket without TLS")
		}
		p.tls = clientTLS(hostCert, resp.GetModuleCert())
	}
	// One connection now: a socket that cannot be reached fails the start,
	// not the first call.
	dc, err := p.dial(ctx)
	if err != nil {
		return fmt.Errorf("rpc: dial the module's data socket: %w", err)
	}
	p.put(dc)
	if old := c.sock.Swap(p); old != nil {
		old.close()
	}
	return nil
}

// CloseSocket closes the connections to m's data socket, if it has one;
// calls after it fail as on a module that went away.
func CloseSocket(m Module) {
	if c, ok := m.(*moduleClient); ok {
		if p := c.sock.Load(); p != nil {
			p.close()
		}
	}
}

// maxIdleConns bounds the idle connections a pool keeps: one per call in
// flight at the busiest moment, up to this.
const maxIdleConns = 256

// socketPool is the host's connections to one module process's data
// socket: one call at a time on each, as many as there are calls at once.
type socketPool struct {
	path   string
	tls    *tls.Config
	token  [tokenLen]byte
	client *moduleClient

	nextConn, nextCall atomic.Uint64

	mu     sync.Mutex
	idle   []*dataConn
	closed bool
}

// dataConn is one connection to the data socket, used by one call at a time.
type dataConn struct {
	frameConn
	id uint64
	// interrupt ends a write or read in progress; built once, since
	// context.AfterFunc takes a func and a method value would be
	// allocated on every call.
	interrupt func()
}

// aLongTimeAgo is a deadline that has passed.
var aLongTimeAgo = time.Unix(1, 0)

func (p *socketPool) dial(ctx context.Context) (*dataConn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", p.path)
	if err != nil {
		return nil, err
	}
	if p.tls != nil {
		tc := tls.Client(nc, p.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return nil, err
		}
		nc = tc
	}
	dc := &dataConn{frameConn: frameConn{nc: nc}, id: p.nextConn.Add(1)}
	dc.interrupt = func() { _ = nc.SetDeadline(aLongTimeAgo) }
	if err := dc.hello(ctx, p.token[:]); err != nil {
		dc.close()
		return nil, err
	}
	return dc, nil
}

// hello opens the connection: the token and the connection's id, and the
// module's ack, which a hung module never sends: it waits until ctx ends,
// or helloTimeout.
func (dc *dataConn) hello(ctx context.Context, token []byte) error {
	// wall clock: connection deadlines are on the real clock
	dl := time.Now().Add(helloTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	_ = dc.nc.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = dc.nc.SetDeadline(aLongTimeAgo) })
	defer func() {
		if stop() {
			_ = dc.nc.SetDeadline(time.Time{})
		}
	}()
	dc.startFrame(frameHello)
	dc.wbuf = append(dc.wbuf, token...)
	dc.wbuf = binary.AppendUvarint(dc.wbuf, dc.id)
	if err := dc.writeFrame(nil); err != nil {
		return err
	}
	p, err := dc.readFrame()
	if err != nil {
		return err
	}
	if len(p) != 1 || p[0] != frameAck {
		return errBadFrame
	}
	return nil
}

func (dc *dataConn) close() {
	_ = dc.nc.Close()
	dc.release()
}

// get returns an idle connection, the one used last, or dials one.
func (p *socketPool) get(ctx context.Context) (*dataConn, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, net.ErrClosed
	}
	if n := len(p.idle); n > 0 {
		dc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return dc, nil
	}
	p.mu.Unlock()
	return p.dial(ctx)
}

func (p *socketPool) put(dc *dataConn) {
	p.mu.Lock()
	if p.closed || len(p.idle) >= maxIdleConns {
		p.mu.Unlock()
		dc.close()
		return
	}
	p.idle = append(p.idle, dc)
	p.mu.Unlock()
}

// close closes the idle connections and every one put back later.
func (p *socketPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, dc := range idle {
		dc.close()
	}
}

// broken drops the idle connections after one broke: they lead to the
// same process, which is likely gone, and a call on one would fail after
// sending; a fresh dial fails before.
func (p *socketPool) broken() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, dc := range idle {
		dc.close()
	}
}

func unavailable(what string, err error) error {
	return status.Error(codes.Unavailable, "module data socket: "+what+": "+err.Error())
}

// handle is Handle over the data socket.
func (p *socketPool) handle(ctx context.Context, req *Request) (Response, error) {
	if err := ctx.Err(); err != nil {
		return Response{}, wrapCall(ctx, "handle", status.FromContextError(err).Err())
	}
	dc, err := p.get(ctx)
	if err != nil {
		// A module that does not answer the hello in time hangs, as one
		// that does not answer a call does: the same deadline error.
		// wall clock: context deadlines are on the real clock
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			return Response{}, wrapCall(ctx, "handle", status.Error(codes.DeadlineExceeded, "module data socket: connect: "+err.Error()))
		}
		if ctx.Err() != nil {
			return Response{}, wrapCall(ctx, "handle", status.FromContextError(ctx.Err()).Err())
		}
		return Response{}, wrapCall(ctx, "handle", unavailable("connect", err))
	}
	id := p.nextCall.Add(1)
	var timeout int64
	if dl, ok := ctx.Deadline(); ok {
		// wall clock: context deadlines are on the real clock
		timeout = max(1, time.Until(dl).Microseconds())
	}
	dc.appendCall(id, timeout, req)
	// When ctx ends, the write (of a body a hung module never takes) or
	// the read is cut short.
	stop := context.AfterFunc(ctx, dc.interrupt)
	werr := dc.writeFrame(req.Body)
	var frame []byte
	if werr == nil {
		// From here the module may have the request.
		frame, err = dc.readFrame()
	}
	if !stop() {
		// ctx ended: the connection is, or is about to be, cut short (its
		// deadline set under it), so it is not reused; an answer that
		// raced the deadline counts as late.
		dc.close()
		if werr == nil && errors.Is(ctx.Err(), context.Canceled) {
			// Past a deadline the module's own, sent with the call, ends it.
			go p.cancel(dc.id, id)
		}
		return Response{}, wrapCall(ctx, "handle", status.FromContextError(ctx.Err()).Err())
	}
	if werr != nil {
		// The module runs only a whole frame, and this one did not get
		// there whole: the call was never made.
		dc.close()
		p.broken()
		return Response{}, wrapCall(ctx, "handle", unavailable("send", werr))
	}
	if err != nil {
		dc.close()
		p.broken()
		return Response{}, wrapSent(ctx, "handle", unavailable("receive", err))
	}
	gotID, code, msg, resp, err := decodeAnswer(frame)
	if err == nil && gotID != id {
		err = errBadFrame
	}
	if err != nil {
		dc.close()
		return Response{}, wrapSent(ctx, "handle", status.Error(codes.Internal, err.Error()))
	}
	if code != 0 {
		p.put(dc)
		return Response{}, wrapCall(ctx, "handle", status.Error(codes.Code(code), msg))
	}
	// The answer lies in the connection's buffer: it goes with the
	// response, and the connection reads the next one into another.
	if fb := dc.detach(); fb != nil {
		resp.Owner = fb
	} else {
		resp.Body = append([]byte(nil), resp.Body...)
	}
	p.put(dc)
	// wall clock: context deadlines are on the real clock
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		resp.Release()
		return Response{}, wrapCall(ctx, "handle", status.Error(codes.DeadlineExceeded, context.DeadlineExceeded.Error()))
	}
	return resp, nil
}

// cancel tells the module that the call's caller went away, so that its
// handler's context ends.
func (p *socketPool) cancel(conn, call uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = p.client.client.CancelCall(ctx, &pb.CancelCallRequest{Conn: conn, Call: call})
}
