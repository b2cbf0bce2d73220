// Package coreapi runs core-api inside a host application's own Go
// program (library mode). The host wires its two hooks as Go functions:
//
//	coreapi.SetDeps(coreapi.Deps{
//		ResolveOrgID:       myApp.WhoIsThis,   // required
//		DeductAPICallToken: myBilling.Charge,  // optional
//	})
//	host, err := coreapi.Start(ctx, cfg)
//
// ResolveOrgID answers who a management request (the dashboard, the key
// routes) is from; DeductAPICallToken charges each v2 call.
package coreapi

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/core/identity"
	"github.com/indigo-hq/indigo/core/metering"
)

// Identity is who a request is from; Role is owner, admin or member.
type Identity = identity.Identity

// Call is one charge; RequestID makes a retry idempotent.
type Call = metering.Call

// ErrInsufficientBalance is what DeductAPICallToken returns to refuse a
// call (the client gets 402).
var ErrInsufficientBalance = metering.ErrInsufficient

// Deps are the DI hooks.
type Deps struct {
	// ResolveOrgID returns the signed-in identity of r, nil when nobody is
	// signed in. Required.
	ResolveOrgID func(r *http.Request) (*Identity, error)
	// DeductAPICallToken charges one v2 call. Optional: without it calls
	// are not metered. An error other than ErrInsufficientBalance follows
	// [api] metering_fail_open (503 by default).
	DeductAPICallToken func(ctx context.Context, c Call) error
}

var (
	mu   sync.Mutex
	deps Deps
)

// SetDeps sets the hooks that Start wires. Call it before Start.
func SetDeps(d Deps) {
	mu.Lock()
	deps = d
	mu.Unlock()
}

// ErrNoResolver is Start without a ResolveOrgID.
var ErrNoResolver = errors.New("coreapi: Deps.ResolveOrgID is required (call SetDeps first)")

// Options builds the core.Options for the hooks SetDeps was given, for
// hosts that assemble core themselves.
func Options() (core.Options, error) {
	mu.Lock()
	d := deps
	mu.Unlock()
	if d.ResolveOrgID == nil {
		return core.Options{}, ErrNoResolver
	}
	o := core.Options{Resolver: identity.ResolverFunc(d.ResolveOrgID)}
	if d.DeductAPICallToken != nil {
		o.Meter = metering.Func(d.DeductAPICallToken)
	}
	return o, nil
}

// Start opens the database (migrating it), loads the configured modules
// and serves on cfg.Server.Addr. Stop it with Host.Shutdown.
func Start(ctx context.Context, cfg *config.Config) (*core.Host, error) {
	o, err := Options()
	if err != nil {
		return nil, err
	}
	svc, err := core.Open(ctx, cfg, o)
	if err != nil {
		return nil, err
	}
	h := core.New(svc, o)
	if err := h.Start(ctx); err != nil {
		_ = svc.Close()
		return nil, err
	}
	return h, nil
}
