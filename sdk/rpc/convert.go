package rpc

import (
	"bytes"
	"net/http"
	"slices"
	"strings"

	pb "github.com/indigo-hq/indigo/sdk/internal/proto"
	"github.com/indigo-hq/indigo/sdk/internal/spec"
)

// The conversions between plain values and generated messages live here and
// nowhere else, so a change to module.proto touches one file.

func toProtoManifest(m spec.Manifest) *pb.Manifest {
	out := &pb.Manifest{
		Name:        m.Name,
		Version:     m.Version,
		Protocol:    int32(m.Protocol),
		Hooks:       m.Hooks,
		StreamCalls: m.StreamCalls,
		DataSocket:  m.DataSocket,
		Database:    m.Database,
		Scopes:      make([]*pb.Scope, len(m.Scopes)),
		Routes:      make([]*pb.Route, len(m.Routes)),
	}
	for _, t := range m.Tasks {
		out.Tasks = append(out.Tasks, &pb.Task{Name: t.Name, IntervalSeconds: t.IntervalSeconds})
	}
	for i, s := range m.Scopes {
		out.Scopes[i] = &pb.Scope{Id: s.ID, Label: s.Label}
	}
	for i, r := range m.Routes {
		out.Routes[i] = &pb.Route{Method: r.Method, Path: r.Path, Scopes: r.Scopes, Cost: r.Cost, V1: r.V1}
	}
	return out
}

// fromProtoManifest never returns nil slices, matching sdk.Module.Manifest,
// so that a manifest compares equal after a trip over the wire.
func fromProtoManifest(m *pb.Manifest) spec.Manifest {
	out := spec.Manifest{
		Name:        m.GetName(),
		Version:     m.GetVersion(),
		Protocol:    int(m.GetProtocol()),
		Hooks:       append([]string{}, m.GetHooks()...),
		StreamCalls: m.GetStreamCalls(),
		DataSocket:  m.GetDataSocket(),
		Database:    m.GetDatabase(),
		Scopes:      make([]spec.Scope, len(m.GetScopes())),
		Routes:      make([]spec.Route, len(m.GetRoutes())),
	}
	for _, t := range m.GetTasks() {
		out.Tasks = append(out.Tasks, spec.Task{Name: t.GetName(), IntervalSeconds: t.GetIntervalSeconds()})
	}
	for i, s := range m.GetScopes() {
		out.Scopes[i] = spec.Scope{ID: s.GetId(), Label: s.GetLabel()}
	}
	for i, r := range m.GetRoutes() {
		scopes := r.GetScopes()
		if scopes == nil {
			scopes = []string{}
		}
		out.Routes[i] = spec.Route{Method: r.GetMethod(), Path: r.GetPath(), Scopes: scopes, Cost: r.GetCost(), V1: r.GetV1()}
	}
	return out
}

// toProtoHeader sorts by name so that the same header always encodes to the
// same bytes; the order of values within a name is kept, it is meaningful.
// Names and values travel as bytes (any byte, not only UTF-8).
func toProtoHeader(h http.Header) []*pb.Header {
	if len(h) == 0 {
		return nil
	}
	// Four allocations whatever the number of headers: the messages, their
	// pointers, the value slices and one buffer that every name and value
	// is a slice of (its capacity is exact, so appends never move it).
	size, n := 0, 0
	for name, values := range h {
		size += len(name)
		n += len(values)
		for _, v := range values {
			size += len(v)
		}
	}
	buf := make([]byte, 0, size)
	vals := make([][]byte, n)
	msgs := make([]pb.Header, len(h))
	out := make([]*pb.Header, len(h))
	i := 0
	for name, values := range h {
		buf = append(buf, name...)
		msgs[i].Name = buf[len(buf)-len(name):]
		vs := vals[:len(values):len(values)]
		vals = vals[len(values):]
		for j, v := range values {
			buf = append(buf, v...)
			vs[j] = buf[len(buf)-len(v):]
		}
		msgs[i].Values = vs
		out[i] = &msgs[i]
		i++
	}
	slices.SortFunc(out, func(a, b *pb.Header) int { return bytes.Compare(a.Name, b.Name) })
	return out
}

// fromProtoHeader always returns a non-nil map so that either side can call
// Set on what it received.
func fromProtoHeader(hs []*pb.Header) http.Header {
	out := make(http.Header, len(hs))
	if len(hs) == 0 {
		return out
	}
	// Every name and value is a substring of one string, and every value
	// list a slice of one array, capped so that appending to one (Add)
	// copies it rather than overwrite the next.
	size, n := 0, 0
	for _, h := range hs {
		size += len(h.GetName())
		n += len(h.GetValues())
		for _, v := range h.GetValues() {
			size += len(v)
		}
	}
	var sb strings.Builder
	sb.Grow(size)
	for _, h := range hs {
		sb.Write(h.GetName())
		for _, v := range h.GetValues() {
			sb.Write(v)
		}
	}
	all, off := sb.String(), 0
	next := func(k int) string {
		s := all[off : off+k]
		off += k
		return s
	}
	strs := make([]string, n)
	for _, h := range hs {
		// Names are kept as sent, not canonicalised: the wire must not
		// change what the handler wrote.
		name := next(len(h.GetName()))
		var vs []string
		if k := len(h.GetValues()); k > 0 {
			vs = strs[:k:k]
			strs = strs[k:]
			for j, v := range h.GetValues() {
				vs[j] = next(len(v))
			}
		}
		if prev, ok := out[name]; ok {
			out[name] = append(prev, vs...)
			continue
		}
		out[name] = vs
	}
	return out
}

func toProtoCaller(c spec.Caller) *pb.Caller {
	return &pb.Caller{
		OrgId:     c.OrgID,
		KeyId:     c.KeyID,
		Scopes:    c.Scopes,
		Superkey:  c.Superkey,
		RequestId: c.RequestID,
		V1:        c.V1,
	}
}

func fromProtoCaller(c *pb.Caller) spec.Caller {
	return spec.Caller{
		OrgID:     c.GetOrgId(),
		KeyID:     c.GetKeyId(),
		Scopes:    c.GetScopes(),
		Superkey:  c.GetSuperkey(),
		RequestID: c.GetRequestId(),
		V1:        c.GetV1(),
	}
}

func toProtoRequest(r Request) *pb.Request {
	return &pb.Request{
		Method:     r.Method,
		Path:       r.Path,
		PathParams: r.PathParams,
		Query:      r.Query,
		Headers:    toProtoHeader(r.Header),
		Body:       r.Body,
		Caller:     toProtoCaller(r.Caller),
	}
}

func fromProtoRequest(r *pb.Request) Request {
	return Request{
		Method:     r.GetMethod(),
		Path:       r.GetPath(),
		PathParams: r.GetPathParams(),
		Query:      r.GetQuery(),
		Header:     fromProtoHeader(r.GetHeaders()),
		Body:       r.GetBody(),
		Caller:     fromProtoCaller(r.GetCaller()),
	}
}

func toProtoResponse(r Response) *pb.Response {
	return &pb.Response{Status: int32(r.Status), Headers: toProtoHeader(r.Header), Body: r.Body}
}

func fromProtoResponse(r *pb.Response) Response {
	return Response{Status: int(r.GetStatus()), Header: fromProtoHeader(r.GetHeaders()), Body: r.GetBody()}
}

func toProtoScopes(scopes []spec.RegisteredScope) *pb.ScopesResponse {
	out := &pb.ScopesResponse{Scopes: make([]*pb.RegisteredScope, len(scopes))}
	for i, s := range scopes {
		out.Scopes[i] = &pb.RegisteredScope{Id: s.ID, Label: s.Label, Module: s.Module}
	}
	return out
}

func fromProtoScopes(r *pb.ScopesResponse) []spec.RegisteredScope {
	out := make([]spec.RegisteredScope, len(r.GetScopes()))
	for i, s := range r.GetScopes() {
		out[i] = spec.RegisteredScope{ID: s.GetId(), Label: s.GetLabel(), Module: s.GetModule()}
	}
	return out
}
