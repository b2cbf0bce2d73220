package requestlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The spool is the request log's overflow on disk: the rows that memory
// cannot hold while the database is unreachable or behind. It is a folder
// of append-only segment files, NNNNNNNNNNNN.jsonl, replayed oldest first
// and deleted once all their rows are stored. Each line is one row as JSON,
// naming the batch it belongs to; a batch's lines are contiguous and within
// one segment, so that a replay writes the same batch under the same id and
// the database skips one already stored. A segment is fsynced when it is
// closed; a line torn by a crash is skipped (and counted as dropped).
type spool struct {
	dir    string
	max    int64 // the disk budget, in bytes
	segMax int64 // a segment is closed at this size
	log    *slog.Logger
	unlock func() // releases the folder's lock

	mu      sync.Mutex
	sealed  []segment // closed, oldest first
	cur     *os.File  // the segment being appended, or nil
	curPath string
	curSize int64
	buf     *bufio.Writer
	seq     uint64 // the last segment number used
	size    atomic.Int64
}

type segment struct {
	path string
	size int64
}

// record is one row on disk.
type record struct {
	Batch     string `json:"batch"`
	RequestID string `json:"request_id"`
	OrgID     string `json:"org_id"`
	KeyID     string `json:"key_id"`
	Method    string `json:"method"`
	Route     string `json:"route"`
	Status    int    `json:"status"`
	LatencyUs int64  `json:"latency_us"`
	TimeMs    int64  `json:"time_ms"`
}

const segExt = ".jsonl"

// openSpool takes the folder (creating it) and lists the segments a
// previous run left there.
func openSpool(dir string, budget int64, log *slog.Logger) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &spool{dir: dir, max: budget, segMax: min(max(budget/8, 64<<10), 4<<20), log: log, unlock: unlock}
	entries, err := os.ReadDir(dir)
	if err != nil {
		unlock()
		return nil, err
	}
	var size int64
	for _, e := range entries { // ReadDir sorts by name: oldest first
		n, ok := strings.CutSuffix(e.Name(), segExt)
		seq, err := strconv.ParseUint(n, 10, 64)
		if !ok || err != nil || !e.Type().IsRegular() {
			continue
		}
		s.seq = max(s.seq, seq)
		info, err := e.Info()
		if err != nil {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if info.Size() == 0 {
			_ = os.Remove(p)
			continue
		}
		s.sealed = append(s.sealed, segment{p, info.Size()})
		size += info.Size()
	}
	s.size.Store(size)
	return s, nil
}

// bytes is what the segments take on disk.
func (s *spool) bytes() int64 { return s.size.Load() }

// append writes the batches in order until the disk budget is reached, and
// returns the ones it did not write. A write error also stops it.
func (s *spool) append(batches []batch) (rest []batch, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b bytes.Buffer
	for i, bt := range batches {
		b.Reset()
		for _, e := range bt.entries {
			if err := s.encode(&b, bt.id, e); err != nil {
				return batches[i:], err
			}
		}
		n := int64(b.Len())
		if s.size.Load()+n > s.max {
			return batches[i:], s.flush()
		}
		if s.cur != nil && s.curSize > 0 && s.curSize+n > s.segMax {
			if err := s.sealLocked(); err != nil {
				return batches[i:], err
			}
		}
		if s.cur == nil {
			if err := s.create(); err != nil {
				return batches[i:], err
			}
		}
		if _, err := s.buf.Write(b.Bytes()); err != nil {
			return batches[i:], err
		}
		s.curSize += n
		s.size.Add(n)
	}
	return nil, s.flush()
}

func (s *spool) encode(b *bytes.Buffer, id string, e Entry) error {
	line, err := json.Marshal(record{
		Batch: id, RequestID: e.RequestID, OrgID: e.OrgID, KeyID: e.KeyID, Method: e.Method, Route: e.Route,
		Status: e.Status, LatencyUs: e.Latency.Microseconds(), TimeMs: e.Time.UnixMilli(),
	})
	if err != nil {
		return err
	}
	b.Write(line)
	b.WriteByte('\n')
	return nil
}

// flush hands what is buffered to the operating system: a crash of the
// process then loses nothing; a crash of the machine may lose what the
// segment's fsync at its close has not covered yet.
func (s *spool) flush() error {
	if s.buf == nil {
		return nil
	}
	return s.buf.Flush()
}

func (s *spool) create() error {
	s.seq++
	p := filepath.Join(s.dir, fmt.Sprintf("%012d%s", s.seq, segExt))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	s.cur, s.curPath, s.curSize = f, p, 0
	if s.buf == nil {
		s.buf = bufio.NewWriterSize(f, 64<<10)
	} else {
		s.buf.Reset(f)
	}
	return nil
}

// sealLocked closes the current segment, durably, and queues it for replay.
func (s *spool) sealLocked() error {
	if s.cur == nil {
		return nil
	}
	err := errors.Join(s.buf.Flush(), s.cur.Sync(), s.cur.Close(), syncDir(s.dir))
	if s.curSize > 0 {
		s.sealed = append(s.sealed, segment{s.curPath, s.curSize})
	} else {
		_ = os.Remove(s.curPath)
	}
	s.cur, s.curPath, s.curSize = nil, "", 0
	return err
}

// oldest returns the segment to replay next, closing the current one when
// no other is left, or false when the spool is empty.
func (s *spool) oldest() (segment, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sealed) == 0 && s.curSize > 0 {
		if err := s.sealLocked(); err != nil {
			s.log.Error("request log spool: close segment", "err", err)
		}
	}
	if len(s.sealed) == 0 {
		return segment{}, false
	}
	return s.sealed[0], true
}

// remove deletes a replayed segment (the one oldest returned).
func (s *spool) remove(seg segment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(seg.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Error("request log spool: delete replayed segment", "path", seg.path, "err", err)
	}
	s.sealed = slices.DeleteFunc(s.sealed, func(x segment) bool { return x.path == seg.path })
	s.size.Add(-seg.size)
}

// close makes what is spooled durable and releases the folder.
func (s *spool) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.sealLocked()
	s.unlock()
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// segReader reads a segment one batch at a time.
type segReader struct {
	seg  segment
	f    *os.File
	r    *bufio.Reader
	next *record // read ahead: the first row of the next batch
	bad  int     // lines that did not decode
}

func openSegment(seg segment) (*segReader, error) {
	f, err := os.Open(seg.path)
	if err != nil {
		return nil, err
	}
	return &segReader{seg: seg, f: f, r: bufio.NewReaderSize(f, 64<<10)}, nil
}

// batch returns the next batch, or io.EOF after the last.
func (sr *segReader) batch() (batch, error) {
	var b batch
	for {
		rec := sr.next
		sr.next = nil
		if rec == nil {
			var err error
			if rec, err = sr.read(); err != nil {
				if err == io.EOF && len(b.entries) > 0 {
					return b, nil
				}
				return b, err
			}
		}
		if len(b.entries) > 0 && rec.Batch != b.id {
			sr.next = rec
			return b, nil
		}
		b.id = rec.Batch
		b.entries = append(b.entries, Entry{
			RequestID: rec.RequestID, OrgID: rec.OrgID, KeyID: rec.KeyID, Method: rec.Method, Route: rec.Route,
			Status: rec.Status, Latency: time.Duration(rec.LatencyUs) * time.Microsecond, Time: time.UnixMilli(rec.TimeMs).UTC(),
		})
	}
}

// read decodes the next line, skipping (and counting) those that do not
// decode, such as one torn by a crash.
func (sr *segReader) read() (*record, error) {
	for {
		line, err := sr.r.ReadBytes('\n')
		if len(line) == 0 && err != nil {
			return nil, err
		}
		var rec record
		if json.Unmarshal(line, &rec) == nil && rec.Batch != "" {
			return &rec, nil
		}
		sr.bad++
		if err != nil {
			return nil, err
		}
	}
}

func (sr *segReader) close() { _ = sr.f.Close() }
