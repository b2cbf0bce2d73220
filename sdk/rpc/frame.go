package rpc

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
)

// The data socket's framing. A frame is a 4-byte big-endian length and
// that many bytes of payload, whose first byte says what it is:
//
//	hello   'H' token[32] conn                              host → module, first on a connection
//	ack     'A'                                             module → host, its answer to the hello
//	call    'C' n call timeout_us method path query params header caller | body
//	answer  'R' n call code status header | body             code 0
//	        'R' n call code message |                        any other code
//
// n is the length of the fields after it up to the bar; the body (or
// nothing) is the rest of the frame, so that it can be written from the
// caller's own slice, and read by the host without a copy. Numbers are uvarints, a
// string is its length and its bytes, params are a count and that many
// name and value strings, a header is its count of names, its count of
// values, then each name, its count of values and the values; the caller
// is the org, the key, the scopes (count + 1, 0 for none at all), a flags
// byte (1 superkey, 2 v1) and the request id. code is a gRPC status code.
//
// One call at a time is in flight on a connection, so an answer is for
// the call just sent; the call id lets CancelCall name it.

const (
	frameHello  = 'H'
	frameAck    = 'A'
	frameCall   = 'C'
	frameAnswer = 'R'

	tokenLen = 32
	// frameBufSize is a connection's read buffer to start with: a 16 KiB
	// answer and its header arrive in one read.
	frameBufSize = 32 << 10
	// inlineBody is the largest body copied into the frame's own buffer;
	// a larger one is written from the caller's slice (writev).
	inlineBody = 8 << 10
)

var errBadFrame = errors.New("malformed frame on the module data socket")

// frameBufs recycles read buffers of frameBufSize, each in the frameBuf
// that lends it to a response, so that neither costs an allocation.
var frameBufs = sync.Pool{New: func() any { return &frameBuf{b: make([]byte, frameBufSize)} }}

// frameBuf owns a read buffer: a connection's, then a response's whose
// body lies in it (see detach).
type frameBuf struct{ b []byte }

// Release gives the buffer back to the pool, if it has the pool's size.
func (f *frameBuf) Release() {
	if cap(f.b) == frameBufSize {
		f.b = f.b[:frameBufSize]
		frameBufs.Put(f)
	}
}

// frameConn reads frames from one connection into a buffer it owns.
type frameConn struct {
	nc   net.Conn
	fb   *frameBuf // buf's, when it came from the pool
	buf  []byte
	r, w int // buf[r:w] is read and not yet returned
	vec  net.Buffers
	wbuf []byte // the frame being written, without a large body
}

// readFrame returns the next frame's payload, a slice of c's buffer valid
// until the next read. A frame larger than MaxMessageSize is refused.
func (c *frameConn) readFrame() ([]byte, error) {
	if err := c.fill(4); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(c.buf[c.r:]))
	if n < 1 || n > MaxMessageSize {
		return nil, errBadFrame
	}
	if err := c.fill(4 + n); err != nil {
		return nil, err
	}
	p := c.buf[c.r+4 : c.r+4+n : c.r+4+n]
	c.r += 4 + n
	return p, nil
}

// fill reads until buf[r:w] holds at least n bytes.
func (c *frameConn) fill(n int) error {
	if c.r == c.w {
		c.r, c.w = 0, 0
		if c.fb == nil {
			c.buf = nil // a buffer grown for one large frame goes with it
		}
	}
	if c.buf == nil {
		c.fb = frameBufs.Get().(*frameBuf)
		c.buf = c.fb.b
	}
	if len(c.buf)-c.r < n {
		// Make room: move what is unread to the front, in a larger
		// buffer if the frame needs one.
		size := len(c.buf)
		for size < n {
			size *= 2
		}
		nb := c.buf
		if size > len(c.buf) {
			nb = make([]byte, size)
		}
		c.w = copy(nb, c.buf[c.r:c.w])
		c.r = 0
		if size > len(c.buf) {
			c.release()
		}
		c.buf = nb
	}
	for c.w-c.r < n {
		m, err := c.nc.Read(c.buf[c.w:])
		c.w += m
		if err != nil {
			if c.w-c.r >= n {
				return nil
			}
			if errors.Is(err, io.EOF) && c.w > c.r {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// detach hands over the buffer that the last frame read lies in, for the
// caller to keep, and starts the next read in a fresh one. It is nil when
// more than that frame was read (which one call at a time rules out).
func (c *frameConn) detach() *frameBuf {
	if c.r != c.w || c.buf == nil {
		return nil
	}
	fb := c.fb
	if fb == nil {
		fb = &frameBuf{b: c.buf} // a buffer grown for a large frame
	}
	c.fb, c.buf, c.r, c.w = nil, nil, 0, 0
	return fb
}

// release gives c's read buffer back to the pool, when c closes.
func (c *frameConn) release() {
	if c.fb != nil {
		c.fb.Release()
	}
	c.fb, c.buf = nil, nil
}

// writeFrame writes c.wbuf, whose first 4 bytes are left for the length,
// then body: one write, or one writev when the body is large.
func (c *frameConn) writeFrame(body []byte) error {
	n := len(c.wbuf) - 4 + len(body)
	if n > MaxMessageSize {
		return errBadFrame
	}
	if len(body) <= inlineBody {
		c.wbuf = append(c.wbuf, body...)
		body = nil
	}
	binary.BigEndian.PutUint32(c.wbuf, uint32(n))
	if body == nil {
		_, err := c.nc.Write(c.wbuf)
		return err
	}
	c.vec = append(c.vec[:0], c.wbuf, body)
	_, err := c.vec.WriteTo(c.nc)
	return err
}

// startFrame begins a frame in c.wbuf: room for the length, and the kind.
func (c *frameConn) startFrame(kind byte) {
	if cap(c.wbuf) > 64<<10 {
		c.wbuf = nil // a huge header once is no reason to keep its buffer
	}
	c.wbuf = append(c.wbuf[:0], 0, 0, 0, 0, kind)
}

// fieldsStart reserves room for the length of the fields that follow (a
// uvarint, up to 5 bytes for a frame's size) and returns where they begin.
func (c *frameConn) fieldsStart() int {
	c.wbuf = append(c.wbuf, 0, 0, 0, 0, 0)
	return len(c.wbuf)
}

// fieldsEnd writes the fields' length before them, in the room
// fieldsStart kept, moving them back over the room it did not need.
func (c *frameConn) fieldsEnd(start int) {
	n := len(c.wbuf) - start
	var tmp [binary.MaxVarintLen32]byte
	k := binary.PutUvarint(tmp[:], uint64(n))
	at := start - 5
	copy(c.wbuf[at:], tmp[:k])
	if k < 5 {
		copy(c.wbuf[at+k:], c.wbuf[start:])
		c.wbuf = c.wbuf[:len(c.wbuf)-(5-k)]
	}
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendHeader(b []byte, h http.Header) []byte {
	n := 0
	for _, vs := range h {
		n += len(vs)
	}
	b = binary.AppendUvarint(b, uint64(len(h)))
	b = binary.AppendUvarint(b, uint64(n))
	for name, vs := range h {
		b = appendString(b, name)
		b = binary.AppendUvarint(b, uint64(len(vs)))
		for _, v := range vs {
			b = appendString(b, v)
		}
	}
	return b
}

// appendCall encodes r, all but its body, as a call frame's fields.
func (c *frameConn) appendCall(id uint64, timeoutMicros int64, r *Request) {
	c.startFrame(frameCall)
	start := c.fieldsStart()
	b := c.wbuf
	b = binary.AppendUvarint(b, id)
	b = binary.AppendUvarint(b, uint64(max(timeoutMicros, 0)))
	b = appendString(b, r.Method)
	b = appendString(b, r.Path)
	b = appendString(b, r.Query)
	b = binary.AppendUvarint(b, uint64(len(r.PathParams)))
	for k, v := range r.PathParams {
		b = appendString(b, k)
		b = appendString(b, v)
	}
	b = appendHeader(b, r.Header)
	cl := &r.Caller
	b = appendString(b, cl.OrgID)
	b = appendString(b, cl.KeyID)
	if cl.Scopes == nil {
		b = append(b, 0)
	} else {
		b = binary.AppendUvarint(b, uint64(len(cl.Scopes))+1)
		for _, s := range cl.Scopes {
			b = appendString(b, s)
		}
	}
	var flags byte
	if cl.Superkey {
		flags |= 1
	}
	if cl.V1 {
		flags |= 2
	}
	b = append(b, flags)
	b = appendString(b, cl.RequestID)
	c.wbuf = b
	c.fieldsEnd(start)
}

// appendAnswer encodes a response, all but its body, as an answer frame.
func (c *frameConn) appendAnswer(id uint64, r *Response) {
	c.startFrame(frameAnswer)
	start := c.fieldsStart()
	b := binary.AppendUvarint(c.wbuf, id)
	b = append(b, 0)
	b = binary.AppendUvarint(b, uint64(max(r.Status, 0)))
	c.wbuf = appendHeader(b, r.Header)
	c.fieldsEnd(start)
}

// appendFailure encodes a failed call's status as an answer frame.
func (c *frameConn) appendFailure(id uint64, code uint32, msg string) {
	c.startFrame(frameAnswer)
	start := c.fieldsStart()
	b := binary.AppendUvarint(c.wbuf, id)
	c.wbuf = binary.AppendUvarint(b, uint64(code))
	c.fieldsEnd(start)
	c.wbuf = append(c.wbuf, msg...)
}

// fields reads the fields of a frame, from one string that every string
// field is a slice of: one allocation for them all.
type fields struct {
	s   string
	i   int
	bad bool
}

// splitFrame returns a frame's fields and the rest (its body).
func splitFrame(p []byte, kind byte) (fields, []byte, error) {
	if len(p) < 2 || p[0] != kind {
		return fields{}, nil, errBadFrame
	}
	n, k := binary.Uvarint(p[1:])
	if k <= 0 || n > uint64(len(p)-1-k) {
		return fields{}, nil, errBadFrame
	}
	start := 1 + k
	end := start + int(n)
	return fields{s: string(p[start:end])}, p[end:], nil
}

func (f *fields) uvarint() uint64 {
	var x uint64
	var s uint
	for j := 0; j < binary.MaxVarintLen64; j++ {
		if f.i >= len(f.s) {
			f.bad = true
			return 0
		}
		b := f.s[f.i]
		f.i++
		if b < 0x80 {
			return x | uint64(b)<<s
		}
		x |= uint64(b&0x7f) << s
		s += 7
	}
	f.bad = true
	return 0
}

// count reads a count of items that take at least one byte each.
func (f *fields) count() int {
	n := f.uvarint()
	if n > uint64(len(f.s)-f.i) {
		f.bad = true
		return 0
	}
	return int(n)
}

func (f *fields) str() string {
	n := f.count()
	if f.bad {
		return ""
	}
	s := f.s[f.i : f.i+n]
	f.i += n
	return s
}

func (f *fields) byte() byte {
	if f.i >= len(f.s) {
		f.bad = true
		return 0
	}
	b := f.s[f.i]
	f.i++
	return b
}

// header always returns a non-nil map, as fromProtoHeader does, with every
// value list a capped slice of one array.
func (f *fields) header() http.Header {
	names := f.count()
	values := f.count()
	h := make(http.Header, names)
	if f.bad {
		return h
	}
	all := make([]string, values)
	for range names {
		name := f.str()
		k := f.count()
		if f.bad || k > len(all) {
			f.bad = true
			return h
		}
		var vs []string
		if k > 0 {
			vs = all[:k:k]
			all = all[k:]
			for j := range vs {
				vs[j] = f.str()
			}
		}
		if prev, ok := h[name]; ok {
			h[name] = append(prev, vs...)
			continue
		}
		h[name] = vs
	}
	return h
}

// decodeCall reads a call frame. The body is the module's own copy.
func decodeCall(p []byte) (id uint64, timeoutMicros int64, r Request, err error) {
	f, body, err := splitFrame(p, frameCall)
	if err != nil {
		return 0, 0, r, err
	}
	id = f.uvarint()
	timeoutMicros = int64(min(f.uvarint(), 1<<62))
	r.Method, r.Path, r.Query = f.str(), f.str(), f.str()
	if n := f.count(); n > 0 {
		r.PathParams = make(map[string]string, n)
		for range n {
			k := f.str()
			r.PathParams[k] = f.str()
		}
	}
	r.Header = f.header()
	cl := &r.Caller
	cl.OrgID, cl.KeyID = f.str(), f.str()
	if n := f.count(); n > 0 {
		cl.Scopes = make([]string, n-1)
		for j := range cl.Scopes {
			cl.Scopes[j] = f.str()
		}
	}
	flags := f.byte()
	cl.Superkey, cl.V1 = flags&1 != 0, flags&2 != 0
	cl.RequestID = f.str()
	if f.bad || f.i != len(f.s) {
		return 0, 0, Request{}, errBadFrame
	}
	if len(body) > 0 {
		r.Body = append([]byte(nil), body...)
	}
	return id, timeoutMicros, r, nil
}

// decodeAnswer reads an answer frame: a response whose body is a slice of
// p, or a failure's code and message.
func decodeAnswer(p []byte) (id uint64, code uint32, msg string, r Response, err error) {
	f, rest, err := splitFrame(p, frameAnswer)
	if err != nil {
		return 0, 0, "", r, err
	}
	id = f.uvarint()
	c := f.uvarint()
	if c > 1<<16 {
		f.bad = true
	}
	code = uint32(c)
	if code != 0 {
		if f.bad || f.i != len(f.s) {
			return 0, 0, "", r, errBadFrame
		}
		return id, code, string(rest), r, nil
	}
	r.Status = int(min(f.uvarint(), 1<<16))
	r.Header = f.header()
	if f.bad || f.i != len(f.s) {
		return 0, 0, "", Response{}, errBadFrame
	}
	if len(rest) > 0 {
		r.Body = rest
	}
	return id, 0, "", r, nil
}
