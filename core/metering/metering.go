// Package metering defines the deductApiCallToken hook: a provider (such as
// a subscriptions module) charges each v2 call to the calling org.
package metering

import (
	"context"
	"errors"
)

// Call is one charge. RequestID makes a retry idempotent.
type Call struct {
	OrgID     string
	KeyID     string
	Route     string
	Cost      int64
	RequestID string
}

// ErrInsufficient means the org's balance does not cover the call (402).
var ErrInsufficient = errors.New("insufficient API call balance")

// Meter is the deductApiCallToken hook.
type Meter interface {
	DeductAPICallToken(ctx context.Context, c Call) error
}

// Func adapts a function to Meter.
type Func func(ctx context.Context, c Call) error

// DeductAPICallToken calls f.
func (f Func) DeductAPICallToken(ctx context.Context, c Call) error { return f(ctx, c) }
