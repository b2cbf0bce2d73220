package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// result is what the load generator reports on stdout.
type result struct {
	Requests int64   `json:"requests"` // completed inside the measured window
	Total    int64   `json:"total"`    // completed, warm-up included
	Seconds  float64 `json:"seconds"`  // measured window
	RPS      float64 `json:"rps"`
	P50Ms    float64 `json:"p50_ms"`
	P90Ms    float64 `json:"p90_ms"`
	P99Ms    float64 `json:"p99_ms"`
	MaxMs    float64 `json:"max_ms"`
}

// loadgen is the load generator process: it keeps lo.conns connections
// busy for the warm-up and the measured window, and prints a result.
func loadgen(args []string) error {
	lo, err := parseLoadgenOptions(args)
	if err != nil {
		return err
	}
	auth := os.Getenv(envAuth)
	want, err := base64.StdEncoding.DecodeString(os.Getenv(envBody))
	if err != nil {
		return fmt.Errorf("%s: %w", envBody, err)
	}
	newWorker, release, err := workerFactory(lo, auth, want)
	if err != nil {
		return err
	}
	defer release()

	workers := make([]worker, lo.conns)
	for i := range workers {
		if workers[i], err = newWorker(); err != nil {
			return err
		}
	}
	res, err := summarize(drive(workers, lo.warmup, lo.duration), lo.duration)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// workerFactory returns what opens one connection's worker for
// lo.client, and what to release once all are done.
func workerFactory(lo loadgenOptions, auth string, want []byte) (newWorker func() (worker, error), release func(), err error) {
	switch lo.client {
	case "raw":
		req := "GET " + lo.path + " HTTP/1.1\r\nHost: " + lo.addr + "\r\nUser-Agent: indigo-bench\r\n"
		if auth != "" {
			req += "Authorization: " + auth + "\r\n"
		}
		req += "\r\n"
		return func() (worker, error) { return newRawWorker(lo.addr, []byte(req), want) }, func() {}, nil
	case "nethttp":
		tr := &http.Transport{
			MaxIdleConns: lo.conns, MaxIdleConnsPerHost: lo.conns, MaxConnsPerHost: lo.conns,
			DisableCompression: true, ForceAttemptHTTP2: false, IdleConnTimeout: time.Minute,
		}
		hc := &http.Client{Transport: tr}
		url := "http://" + lo.addr + lo.path
		return func() (worker, error) { return newHTTPWorker(hc, url, auth, want) }, tr.CloseIdleConnections, nil
	default:
		return nil, nil, fmt.Errorf("-client %q: want raw or nethttp", lo.client)
	}
}

// workerOut is what one worker measured.
type workerOut struct {
	h        *hdrhistogram.Histogram // latencies inside the measured window, ns
	n, total int64                   // requests inside the measured window, and all
	err      error
}

// drive runs every worker on its own goroutine through the warm-up and
// the measured window that follows it.
func drive(workers []worker, warmup, duration time.Duration) []workerOut {
	// wall clock: the load generator measures real time
	start := time.Now()
	mStart := start.Add(warmup)
	mEnd := mStart.Add(duration)

	outs := make([]workerOut, len(workers))
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Go(func() { outs[i] = runWorker(w, mStart, mEnd) })
	}
	wg.Wait()
	return outs
}

// runWorker sends requests until mEnd, or until one fails, and records
// the latency of those that complete inside [mStart, mEnd).
func runWorker(w worker, mStart, mEnd time.Time) workerOut {
	defer w.close()
	o := workerOut{h: newLatencyHistogram()}
	for {
		// wall clock: latency
		t0 := time.Now()
		if !t0.Before(mEnd) {
			break
		}
		if o.err = w.do(); o.err != nil {
			break
		}
		// wall clock: latency
		t1 := time.Now()
		o.total++
		if !t1.Before(mStart) && t1.Before(mEnd) {
			o.n++
			recordLatency(o.h, t1.Sub(t0))
		}
	}
	return o
}

// summarize merges the workers' measurements into the result.
func summarize(outs []workerOut, duration time.Duration) (result, error) {
	h := newLatencyHistogram()
	var res result
	for _, o := range outs {
		if o.err != nil {
			return result{}, o.err // fail loudly: one bad response spoils the round
		}
		h.Merge(o.h) // same geometry: drops nothing
		res.Requests += o.n
		res.Total += o.total
	}
	res.Seconds = duration.Seconds()
	res.RPS = float64(res.Requests) / res.Seconds
	// ValueAtPercentile takes a percentage, not a fraction.
	res.P50Ms = nsToMs(h.ValueAtPercentile(50))
	res.P90Ms = nsToMs(h.ValueAtPercentile(90))
	res.P99Ms = nsToMs(h.ValueAtPercentile(99))
	res.MaxMs = nsToMs(h.Max())
	return res, nil
}

// Latencies are recorded in nanoseconds to 3 significant figures (values
// within 0.1%), up to a minute; a longer one, a hung request, still
// counts, as a minute.
const (
	latencyMax     = time.Minute
	latencySigFigs = 3
)

func newLatencyHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(latencyMax), latencySigFigs)
}

func recordLatency(h *hdrhistogram.Histogram, d time.Duration) {
	_ = h.RecordValue(int64(min(max(d, 0), latencyMax))) // in range, hence no error
}

func nsToMs(ns int64) float64 { return time.Duration(ns).Seconds() * 1e3 }

type worker interface {
	do() error // one request; an error for anything but a 200 with the expected body
	close()
}

// rawWorker speaks HTTP/1.1 over one keep-alive TCP connection with a
// precomputed request, so the load generator costs little CPU next to the
// servers it measures.
type rawWorker struct {
	conn net.Conn
	br   *bufio.Reader
	req  []byte
	want []byte
	buf  []byte
}

func newRawWorker(addr string, req, want []byte) (*rawWorker, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &rawWorker{conn: c, br: bufio.NewReaderSize(c, 16<<10), req: req, want: want, buf: make([]byte, len(want))}, nil
}

func (w *rawWorker) close() { _ = w.conn.Close() }

func (w *rawWorker) do() error {
	if _, err := w.conn.Write(w.req); err != nil {
		return err
	}
	line, err := w.br.ReadSlice('\n')
	if err != nil {
		return fmt.Errorf("read status line: %w", err)
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return fmt.Errorf("bad status line %q", line)
	}
	if string(line[9:12]) != "200" {
		return fmt.Errorf("status %s, want 200", bytes.TrimSpace(line[9:]))
	}
	clen, chunked := -1, false
	for {
		line, err = w.br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("read header: %w", err)
		}
		if len(line) <= 2 { // "\r\n"
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return fmt.Errorf("bad header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "Content-Length"):
			if clen, err = strconv.Atoi(string(value)); err != nil || clen < 0 {
				return fmt.Errorf("bad Content-Length %q", value)
			}
		case asciiEqualFold(name, "Transfer-Encoding"):
			// net/http chunks an answer of over 2 KiB written without a
			// Content-Length, as the host and the bare server both do.
			if !asciiEqualFold(value, "chunked") {
				return fmt.Errorf("unexpected Transfer-Encoding %q", value)
			}
			chunked = true
		case asciiEqualFold(name, "Connection") && asciiEqualFold(value, "close"):
			return errors.New("server closed the keep-alive connection")
		}
	}
	var b []byte
	switch {
	case chunked:
		if b, err = w.readChunked(); err != nil {
			return err
		}
	case clen < 0:
		return errors.New("response without Content-Length")
	default:
		if cap(w.buf) < clen {
			w.buf = make([]byte, clen)
		}
		b = w.buf[:clen]
		if _, err := io.ReadFull(w.br, b); err != nil {
			return fmt.Errorf("read body: %w", err)
		}
	}
	if !bytes.Equal(b, w.want) {
		return fmt.Errorf("unexpected body %q", b)
	}
	return nil
}

// readChunked reads a chunked body into w.buf and returns it.
func (w *rawWorker) readChunked() ([]byte, error) {
	b := w.buf[:0]
	for {
		line, err := w.br.ReadSlice('\n')
		if err != nil {
			return nil, fmt.Errorf("read chunk size: %w", err)
		}
		sz, _, _ := bytes.Cut(bytes.TrimSpace(line), []byte(";"))
		n, err := strconv.ParseUint(string(sz), 16, 31)
		if err != nil {
			return nil, fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			break
		}
		if len(b)+int(n) > 64<<20 {
			return nil, errors.New("chunked body over 64 MiB")
		}
		start := len(b)
		b = append(b, make([]byte, n)...)
		if _, err := io.ReadFull(w.br, b[start:]); err != nil {
			return nil, fmt.Errorf("read chunk: %w", err)
		}
		if crlf, err := w.br.ReadSlice('\n'); err != nil || len(crlf) > 2 {
			return nil, fmt.Errorf("bad chunk end %q: %v", crlf, err)
		}
	}
	for { // trailers, up to the empty line
		line, err := w.br.ReadSlice('\n')
		if err != nil {
			return nil, fmt.Errorf("read trailer: %w", err)
		}
		if len(line) <= 2 {
			break
		}
	}
	w.buf = b
	return b, nil
}

func asciiEqualFold(b []byte, s string) bool {
	return len(b) == len(s) && strings.EqualFold(string(b), s)
}

// httpWorker uses net/http's client, for comparison with the raw one.
type httpWorker struct {
	hc   *http.Client
	req  *http.Request
	want []byte
	buf  bytes.Buffer
}

func newHTTPWorker(hc *http.Client, url, auth string, want []byte) (*httpWorker, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "indigo-bench")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return &httpWorker{hc: hc, req: req, want: want}, nil
}

func (w *httpWorker) close() {}

func (w *httpWorker) do() error {
	resp, err := w.hc.Do(w.req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	w.buf.Reset()
	if _, err := w.buf.ReadFrom(resp.Body); err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d, want 200: %s", resp.StatusCode, w.buf.Bytes())
	}
	if !bytes.Equal(w.buf.Bytes(), w.want) {
		return fmt.Errorf("unexpected body %q", w.buf.Bytes())
	}
	return nil
}
