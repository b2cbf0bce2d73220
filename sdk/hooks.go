package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/indigo-hq/indigo/sdk/rpc"
)

// hookRequest is resolve_org_id's payload: the request's headers only.
type hookRequest struct {
	Method string      `json:"method"`
	Path   string      `json:"path"`
	Header http.Header `json:"header"`
}

// CallHook runs the hook the host asked for. A hook the module does not
// provide is a failed call (Unimplemented), never a silent success.
func (s *server) CallHook(ctx context.Context, hook string, payload []byte) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.logPanic("hook "+hook, p)
			out, err = nil, status.Errorf(codes.Internal, "module %s: hook %s panicked", s.m.Name, hook)
		}
	}()
	switch {
	case hook == HookDeductAPICallToken && s.m.DeductAPICallToken != nil:
		var c MeterCall
		if err := json.Unmarshal(payload, &c); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		return hookResult(struct{}{}, s.m.DeductAPICallToken(ctx, c))
	case hook == HookKeyLimit && s.m.KeyLimit != nil:
		var in struct {
			OrgID string `json:"org_id"`
		}
		if err := json.Unmarshal(payload, &in); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		l, err := s.m.KeyLimit(ctx, in.OrgID)
		return hookResult(l, err)
	case hook == HookResolveOrgID && s.m.ResolveOrgID != nil:
		var in hookRequest
		if err := json.Unmarshal(payload, &in); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		r, err := http.NewRequestWithContext(ctx, in.Method, in.Path, nil)
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		r.Header = in.Header
		id, err := s.m.ResolveOrgID(ctx, r)
		return hookResult(id, err)
	case hook == HookKeyEvents && s.m.OnKeyEvent != nil:
		var ev KeyEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		return hookResult(struct{}{}, s.m.OnKeyEvent(ctx, ev))
	case hook == HookRunTask && len(s.m.Tasks) > 0:
		var in struct {
			Task string `json:"task"`
		}
		if err := json.Unmarshal(payload, &in); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		for _, t := range s.m.Tasks {
			if t.Name == in.Task {
				var h Host
				if hp := s.host.Load(); hp != nil {
					h = hp
				}
				return hookResult(struct{}{}, t.Run(ctx, h))
			}
		}
		return nil, status.Errorf(codes.NotFound, "module %s has no task %q", s.m.Name, in.Task)
	default:
		return nil, status.Errorf(codes.Unimplemented, "module %s does not provide hook %q", s.m.Name, hook)
	}
}

// hookResult encodes a hook's answer. A *rpc.HookError is a refusal the
// host acts on; other errors fail the call.
func hookResult(v any, err error) ([]byte, error) {
	if he, ok := errors.AsType[*rpc.HookError](err); ok {
		return nil, he
	}
	if err != nil {
		return nil, status.Error(codes.Unknown, err.Error())
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode hook result: %w", err)
	}
	return b, nil
}

// EncodeHookRequest is the resolve_org_id payload for r; the host uses it.
func EncodeHookRequest(r *http.Request) ([]byte, error) {
	return json.Marshal(hookRequest{Method: r.Method, Path: r.URL.Path, Header: r.Header})
}
