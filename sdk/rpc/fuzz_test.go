package rpc

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	pb "github.com/indigo-hq/indigo/sdk/internal/proto"
	"github.com/indigo-hq/indigo/sdk/internal/spec"
)

// splitHeader reads "name: value" lines into a header, keeping every byte:
// HTTP lets header values carry any byte but controls (obs-text), and a
// module's handler may set any name.
func splitHeader(blob []byte) http.Header {
	if len(blob) == 0 {
		return nil
	}
	h := http.Header{}
	for line := range strings.SplitSeq(string(blob), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			h[name] = nil
			continue
		}
		h[name] = append(h[name], value)
	}
	return h
}

// sameHeader compares headers as the wire may give them back: a name with
// no values comes back with a nil slice, and an empty header as an empty map.
func sameHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok || len(va) != len(vb) {
			return false
		}
		for i := range va {
			if va[i] != vb[i] {
				return false
			}
		}
	}
	return true
}

func emptyIsNil[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

// FuzzRequestWire sends a request the host may build across the wire's
// encoding and back. The host hands the module only valid text in the
// method, path, path parameters, query and caller (it refuses a request
// whose path or query is not, 400 invalid_text); headers and the body are
// any bytes. Whatever they hold, the request must encode, and arrive equal
// to what was sent: one that does not encode fails the call, and on the
// shared call stream takes every call in flight with it.
func FuzzRequestWire(f *testing.F) {
	f.Add("GET", "/projects/p1", "x=1&x=2", []byte("Accept:application/json\nAccept:text/plain\nX-Empty:"), []byte(nil), "org_1\nkey_1\nreq-1\nprojects:read", uint8(0))
	f.Add("POST", "/cms/entries", "", []byte("Content-Type:application/json\nIdempotency-Key:k1"), []byte(`{"title":"t"}`), "org_1\nkey_1\nreq-2", uint8(1))
	f.Add("GET", "/projects", "", []byte("X-Note:caf\xe9\nUser-Agent:\xff\xfe"), []byte("\x00\xff"), "org\nkey\nreq", uint8(2))
	f.Add("GET", "/files/a b", "q=%ff", []byte("x-lower:kept as sent\nNoValues"), []byte{}, "", uint8(3))
	f.Fuzz(func(t *testing.T, method, path, query string, header, body []byte, caller string, flags uint8) {
		c := strings.Split(caller, "\n")
		for len(c) < 3 {
			c = append(c, "")
		}
		params := map[string]string{}
		for i, seg := range strings.Split(strings.Trim(path, "/"), "/") {
			params[string(rune('a'+i%26))+strings.Repeat("x", i/26)] = seg
		}
		req := Request{
			Method: method, Path: path, PathParams: params, Query: query,
			Header: splitHeader(header), Body: body,
			Caller: spec.Caller{OrgID: c[0], KeyID: c[1], RequestID: c[2], Scopes: c[3:], Superkey: flags&1 != 0, V1: flags&2 != 0},
		}
		for _, s := range []string{method, path, query, caller} {
			if !utf8.ValidString(s) {
				return // the host refuses such a request before any module sees it
			}
		}
		b, err := proto.Marshal(toProtoRequest(req))
		if err != nil {
			t.Fatalf("a request the host may send does not encode: %v\n%+v", err, req)
		}
		var back pb.Request
		if err := proto.Unmarshal(b, &back); err != nil {
			t.Fatalf("an encoded request does not decode: %v", err)
		}
		got := fromProtoRequest(&back)
		if got.Method != req.Method || got.Path != req.Path || got.Query != req.Query ||
			!reflect.DeepEqual(got.PathParams, req.PathParams) || !sameHeader(got.Header, req.Header) ||
			string(got.Body) != string(req.Body) || got.Header == nil ||
			got.Caller.OrgID != req.Caller.OrgID || got.Caller.KeyID != req.Caller.KeyID || got.Caller.RequestID != req.Caller.RequestID ||
			got.Caller.Superkey != req.Caller.Superkey || got.Caller.V1 != req.Caller.V1 ||
			!reflect.DeepEqual(emptyIsNil(got.Caller.Scopes), emptyIsNil(req.Caller.Scopes)) {
			t.Fatalf("request changed on the wire:\n got %+v\nwant %+v", got, req)
		}
	})
}

// FuzzResponseWire does the same for what a module's handler answers: the
// SDK bounds the status (WriteHeader panics outside 100-999), and the
// handler may set any header name and value and any body.
func FuzzResponseWire(f *testing.F) {
	f.Add(int32(200), []byte("Content-Type:application/json\nSet-Cookie:a=1\nSet-Cookie:b=2"), []byte(`{"ok":true}`))
	f.Add(int32(418), []byte("Content-Disposition:attachment; filename=\"caf\xe9.txt\""), []byte("\x00\xff"))
	f.Add(int32(204), []byte("X-\xff:v\nEmpty"), []byte(nil))
	f.Fuzz(func(t *testing.T, status int32, header, body []byte) {
		resp := Response{Status: int(status), Header: splitHeader(header), Body: body}
		b, err := proto.Marshal(toProtoResponse(resp))
		if err != nil {
			t.Fatalf("a handler's response does not encode: %v\n%+v", err, resp)
		}
		var back pb.Response
		if err := proto.Unmarshal(b, &back); err != nil {
			t.Fatalf("an encoded response does not decode: %v", err)
		}
		got := fromProtoResponse(&back)
		if got.Status != resp.Status || !sameHeader(got.Header, resp.Header) || got.Header == nil || string(got.Body) != string(resp.Body) {
			t.Fatalf("response changed on the wire:\n got %+v\nwant %+v", got, resp)
		}
	})
}

// FuzzManifestWire: a manifest (as a module's describe prints it) crosses
// the wire unchanged, or, when a string in it is not UTF-8, fails to
// encode; it is never altered on the way.
func FuzzManifestWire(f *testing.F) {
	f.Add([]byte(`{"name":"projects","version":"1.1.0","scopes":[{"id":"projects:read","label":"Read projects"}],"routes":[{"method":"GET","path":"/projects/{id}","scopes":["projects:read"],"cost":1,"v1":true}],"protocol":1,"hooks":["key_events"],"stream_calls":true,"database":true,"tasks":[{"name":"t","interval_seconds":60}]}`))
	f.Add([]byte(`{"name":"x","routes":[{"method":"GET","path":"/x"}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m spec.Manifest
		if json.Unmarshal(data, &m) != nil || int(int32(m.Protocol)) != m.Protocol {
			return
		}
		b, err := proto.Marshal(toProtoManifest(m))
		if err != nil {
			return // a string that is not UTF-8: the module fails to describe itself
		}
		var back pb.Manifest
		if err := proto.Unmarshal(b, &back); err != nil {
			t.Fatalf("an encoded manifest does not decode: %v", err)
		}
		got := fromProtoManifest(&back)
		norm := func(m spec.Manifest) spec.Manifest {
			m.Hooks, m.Scopes, m.Routes, m.Tasks = emptyIsNil(m.Hooks), emptyIsNil(m.Scopes), emptyIsNil(m.Routes), emptyIsNil(m.Tasks)
			for i := range m.Routes {
				m.Routes[i].Scopes = emptyIsNil(m.Routes[i].Scopes)
			}
			return m
		}
		if !reflect.DeepEqual(norm(got), norm(m)) {
			t.Fatalf("manifest changed on the wire:\n got %+v\nwant %+v", got, m)
		}
	})
}

// FuzzSocketRequest is FuzzRequestWire for the data socket's framing: any
// request the host may send arrives equal to what was sent. Unlike
// protobuf's strings, the framing takes any bytes anywhere.
func FuzzSocketRequest(f *testing.F) {
	f.Add("GET", "/projects/p1", "x=1&x=2", []byte("Accept:application/json\nAccept:text/plain\nX-Empty:"), []byte(nil), "org_1\nkey_1\nreq-1\nprojects:read", uint8(0), int64(5000000))
	f.Add("POST", "/cms/entries", "", []byte("Content-Type:application/json\nIdempotency-Key:k1"), []byte(`{"title":"t"}`), "org_1\nkey_1\nreq-2", uint8(1), int64(0))
	f.Add("GET", "/projects", "q=\xff", []byte("X-Note:caf\xe9\nUser-Agent:\xff\xfe"), []byte("\x00\xff"), "o\xffrg\nkey\nreq", uint8(2), int64(1))
	f.Fuzz(func(t *testing.T, method, path, query string, header, body []byte, caller string, flags uint8, timeout int64) {
		c := strings.Split(caller, "\n")
		for len(c) < 3 {
			c = append(c, "")
		}
		params := map[string]string{}
		for i, seg := range strings.Split(strings.Trim(path, "/"), "/") {
			params[string(rune('a'+i%26))+strings.Repeat("x", i/26)] = seg
		}
		req := Request{
			Method: method, Path: path, PathParams: params, Query: query,
			Header: splitHeader(header), Body: body,
			Caller: spec.Caller{OrgID: c[0], KeyID: c[1], RequestID: c[2], Scopes: c[3:], Superkey: flags&1 != 0, V1: flags&2 != 0},
		}
		if len(req.Body) == 0 {
			req.Body = nil
		}
		timeout = max(timeout, 0)
		var fc frameConn
		fc.appendCall(42, timeout, &req)
		id, gotTimeout, got, err := decodeCall(append(fc.wbuf[4:], req.Body...))
		if err != nil || id != 42 || gotTimeout != min(timeout, 1<<62) {
			t.Fatalf("decode: id %d timeout %d (%v)", id, gotTimeout, err)
		}
		if got.Method != req.Method || got.Path != req.Path || got.Query != req.Query ||
			!reflect.DeepEqual(got.PathParams, req.PathParams) || !sameHeader(got.Header, req.Header) ||
			string(got.Body) != string(req.Body) || got.Header == nil || !reflect.DeepEqual(got.Caller, req.Caller) {
			t.Fatalf("request changed on the socket:\n got %+v\nwant %+v", got, req)
		}
	})
}

// FuzzSocketFrame feeds any bytes to the module's and the host's frame
// decoders: they refuse what is malformed, never panic or read past the
// frame, and what they accept encodes back to a frame that decodes to the
// same value.
func FuzzSocketFrame(f *testing.F) {
	var fc frameConn
	fc.appendCall(7, 100, &Request{Method: "GET", Path: "/p", Header: http.Header{"A": {"1", "2"}}})
	f.Add(append(fc.wbuf[4:], 'b'))
	fc.appendAnswer(9, &Response{Status: 201, Header: http.Header{"X": {"y"}}})
	f.Add(append(fc.wbuf[4:], "body"...))
	fc.appendFailure(3, 14, "module is shutting down")
	f.Add(fc.wbuf[4:])
	f.Add([]byte{'C', 0x80})
	f.Fuzz(func(t *testing.T, p []byte) {
		if id, timeout, r, err := decodeCall(p); err == nil {
			var fc frameConn
			fc.appendCall(id, timeout, &r)
			id2, timeout2, r2, err := decodeCall(append(fc.wbuf[4:], r.Body...))
			if err != nil || id2 != id || timeout2 != timeout || !reflect.DeepEqual(r2, r) {
				t.Fatalf("a call does not survive a second trip: %+v then %+v (%v)", r, r2, err)
			}
		}
		if id, code, msg, r, err := decodeAnswer(p); err == nil {
			var fc frameConn
			if code != 0 {
				fc.appendFailure(id, code, msg)
			} else {
				fc.appendAnswer(id, &r)
				fc.wbuf = append(fc.wbuf, r.Body...)
			}
			id2, code2, msg2, r2, err := decodeAnswer(fc.wbuf[4:])
			if err != nil || id2 != id || code2 != code || msg2 != msg || !reflect.DeepEqual(r2, r) {
				t.Fatalf("an answer does not survive a second trip: %+v then %+v (%v)", r, r2, err)
			}
		}
	})
}
