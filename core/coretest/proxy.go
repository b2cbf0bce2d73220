package coretest

import (
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP proxy on loopback in front of a real server (PostgreSQL,
// say) that a test can break on purpose: Refuse drops every connection and
// refuses new ones, as a database that went away; Hang keeps connections
// open but passes no byte, as a server that stopped answering; Forward
// passes traffic again.
type Proxy struct {
	Addr   string
	target string
	ln     net.Listener

	mu     sync.Mutex
	mode   int
	resume chan struct{} // closed when a hang ends
	conns  map[net.Conn]struct{}
}

const (
	proxyForward = iota
	proxyRefuse
	proxyHang
)

// NewProxy starts a proxy to target (host:port); it stops at cleanup.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, resume: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	close(p.resume)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.Forward()
		p.dropAll()
	})
	return p
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.mode == proxyRefuse
		p.mu.Unlock()
		if refuse {
			_ = c.Close()
			continue
		}
		go p.serve(c)
	}
}

func (p *Proxy) serve(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	go p.pipe(up, c)
	p.pipe(c, up)
}

// pipe copies from src to dst, holding each chunk while the proxy hangs.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer func() {
		_ = dst.Close()
		_ = src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			resume := p.resume
			p.mu.Unlock()
			<-resume
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

// Refuse closes every connection and refuses new ones until Forward.
func (p *Proxy) Refuse() {
	p.Forward()
	p.mu.Lock()
	p.mode = proxyRefuse
	p.mu.Unlock()
	p.dropAll()
}

// Hang stops passing bytes, both ways, on every connection (new ones are
// accepted and hang too) until Forward.
func (p *Proxy) Hang() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode != proxyHang {
		p.mode = proxyHang
		p.resume = make(chan struct{})
	}
}

// Forward passes traffic again.
func (p *Proxy) Forward() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == proxyHang {
		close(p.resume)
	}
	p.mode = proxyForward
}
