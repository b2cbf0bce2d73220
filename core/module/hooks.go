package module

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/indigo-hq/indigo/core/apikey"
	"github.com/indigo-hq/indigo/core/identity"
	"github.com/indigo-hq/indigo/core/metering"
	"github.com/indigo-hq/indigo/core/notify"
	"github.com/indigo-hq/indigo/sdk"
	"github.com/indigo-hq/indigo/sdk/rpc"
)

// ErrModuleDown is a hook call to a module that is restarting.
var ErrModuleDown = errors.New("module is unavailable")

// Find returns the loaded module called name, or nil.
func (l *Loader) Find(name string) *Instance {
	for _, m := range l.Modules() {
		if m.Name() == name {
			return m
		}
	}
	return nil
}

// Provides reports whether the module's manifest lists hook.
func (m *Instance) Provides(hook string) bool { return slices.Contains(m.manifest.Hooks, hook) }

// CallHook runs one of the module's hooks under the module's deadline. A
// module that is down, or goes down during the call, is ErrModuleDown;
// a refusal by the hook is a *rpc.HookError.
func (m *Instance) CallHook(ctx context.Context, hook string, in, out any) error {
	mod := m.current()
	if mod == nil {
		return fmt.Errorf("module %s: %w", m.cfg.Name, ErrModuleDown)
	}
	payload, err := json.Marshal(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	res, err := mod.CallHook(ctx, hook, payload)
	switch {
	case err == nil || errors.As(err, new(*rpc.HookError)):
		m.answered()
	case rpc.IsDeadline(err):
		m.failed(mod, &m.timeouts, "calls timed out")
	}
	if rpc.IsUnavailable(err) {
		m.markDown()
		return fmt.Errorf("module %s: %w", m.cfg.Name, ErrModuleDown)
	}
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(res, out); err != nil {
		return fmt.Errorf("module %s: hook %s answered %w", m.cfg.Name, hook, err)
	}
	return nil
}

// Meter is the module's deduct_api_call_token hook as the host's Meter.
func (m *Instance) Meter() metering.Meter {
	return metering.Func(func(ctx context.Context, c metering.Call) error {
		err := m.CallHook(ctx, sdk.HookDeductAPICallToken, sdk.MeterCall{
			OrgID: c.OrgID, KeyID: c.KeyID, Route: c.Route, Cost: c.Cost, RequestID: c.RequestID,
		}, nil)
		if he, ok := errors.AsType[*rpc.HookError](err); ok && he.Code == "insufficient_balance" {
			return metering.ErrInsufficient
		}
		return err
	})
}

// KeyLimiter is the module's key_limit hook as the key service's limiter.
func (m *Instance) KeyLimiter() apikey.KeyLimiter { return keyLimiter{m} }

type keyLimiter struct{ m *Instance }

func (k keyLimiter) KeyLimit(ctx context.Context, orgID string) (apikey.KeyLimit, error) {
	var l sdk.KeyLimit
	if err := k.m.CallHook(ctx, sdk.HookKeyLimit, map[string]string{"org_id": orgID}, &l); err != nil {
		return apikey.KeyLimit{}, err
	}
	return apikey.KeyLimit{Plan: l.Plan, MaxKeys: l.MaxKeys, Limited: l.Limited}, nil
}

// Resolver is the module's resolve_org_id hook as an identity resolver.
// The module sees the request's method, path and headers, no body.
func (m *Instance) Resolver() identity.Resolver {
	return identity.ResolverFunc(func(r *http.Request) (*identity.Identity, error) {
		var id *sdk.Identity
		in, err := sdk.EncodeHookRequest(r)
		if err != nil {
			return nil, err
		}
		if err := m.CallHook(r.Context(), sdk.HookResolveOrgID, json.RawMessage(in), &id); err != nil {
			return nil, err
		}
		if id == nil {
			return nil, nil
		}
		return &identity.Identity{UserID: id.UserID, Email: id.Email, OrgID: id.OrgID, Role: id.Role, Operator: id.Operator, CSRFToken: id.CSRFToken}, nil
	})
}

// Hooked returns the one loaded module that provides hook, or nil; two
// such modules are an error, since the host could not tell which to ask.
func (l *Loader) Hooked(hook string) (*Instance, error) {
	var found *Instance
	for _, m := range l.Modules() {
		if !m.Provides(hook) {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("modules %s and %s both provide %s; keep one", found.Name(), m.Name(), hook)
		}
		found = m
	}
	return found, nil
}

// Notifier is the module's key_events hook as a notifier: the dispatcher
// delivers each event to it at least once, retrying while the module is
// down or refuses.
func (m *Instance) Notifier() notify.Notifier { return moduleNotifier{m} }

type moduleNotifier struct{ m *Instance }

func (n moduleNotifier) Name() string { return "module:" + n.m.Name() }

func (n moduleNotifier) Notify(ctx context.Context, ev notify.Event) error {
	return n.m.CallHook(ctx, sdk.HookKeyEvents, ev, nil)
}
