package rpc

import (
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
func toProtoHeader(h http.Header) []*pb.Header {
	if len(h) == 0 {
		return nil
	}
	// Two allocations whatever the number of headers, where one message
	// each added up on every call.
	msgs := make([]pb.Header, len(h))
	out := make([]*pb.Header, len(h))
	i := 0
	for name, values := range h {
		msgs[i].Name, msgs[i].Values = name, values
		out[i] = &msgs[i]
		i++
	}
	slices.SortFunc(out, func(a, b *pb.Header) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// fromProtoHeader always returns a non-nil map so that either side can call
// Set on what it received.
func fromProtoHeader(hs []*pb.Header) http.Header {
	out := make(http.Header, len(hs))
	for _, h := range hs {
		// Names are kept as sent, not canonicalised: the wire must not
		// change what the handler wrote.
		name := h.GetName()
		if prev, ok := out[name]; ok {
			out[name] = append(prev, h.GetValues()...)
			continue
		}
		// The message was decoded for this call alone and is dropped
		// after it, so its slice can be the header's without a copy.
		out[name] = h.GetValues()
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
