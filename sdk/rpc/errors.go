package rpc

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrRequestTooLarge is returned by the host-side Handle, without sending
// anything, when a request body exceeds MaxRequestBody. The host answers 413.
var ErrRequestTooLarge = errors.New("rpc: request body exceeds the module request limit")

// IsUnavailable reports whether err means the module could not be reached:
// its process crashed or exited, the connection was closed under the call,
// or the module is shutting down. The host may restart the module. Unless
// IsOutcomeUnknown is also true, the request was never sent, and the host
// answers 503.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if ce, ok := errors.AsType[*callError](err); ok {
		return ce.kind == kindUnavailable
	}
	return status.Code(err) == codes.Unavailable
}

// IsOutcomeUnknown reports whether err is an unavailable module (see
// IsUnavailable) that went away after the request had been sent to it: the
// module may have run it, so the host answers 502, not "try again", which
// could apply a write twice.
func IsOutcomeUnknown(err error) bool {
	ce, ok := errors.AsType[*callError](err)
	return ok && ce.kind == kindUnavailable && ce.sent
}

// IsDeadline reports whether err means the call's deadline passed before the
// module answered. The host answers 504.
func IsDeadline(err error) bool {
	if err == nil {
		return false
	}
	return errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded
}

// IsFailedPrecondition reports whether err means the module cannot run as
// it is (its database migration failed): restarting it will not help.
func IsFailedPrecondition(err error) bool {
	if ce, ok := errors.AsType[*callError](err); ok {
		err = ce.err
	}
	return status.Code(err) == codes.FailedPrecondition
}

type errKind int

const (
	kindOther errKind = iota
	kindUnavailable
	kindDeadline
	kindCanceled
)

// callError classifies a failed call where the context is still at hand:
// gRPC reports both "the caller cancelled" and "the connection is closing"
// as Canceled, and only the caller's context tells them apart.
type callError struct {
	op   string
	kind errKind
	err  error
	sent bool // the request had been handed to the connection
}

func (e *callError) Error() string { return "module " + e.op + ": " + e.err.Error() }

func (e *callError) Unwrap() error { return e.err }

// Is lets callers use errors.Is with the context errors they already know,
// whichever form gRPC gave them in.
func (e *callError) Is(target error) bool {
	switch e.kind {
	case kindDeadline:
		return target == context.DeadlineExceeded
	case kindCanceled:
		return target == context.Canceled
	}
	return false
}

func wrapCall(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	kind := kindOther
	switch status.Code(err) {
	case codes.Unavailable:
		kind = kindUnavailable
	case codes.DeadlineExceeded:
		kind = kindDeadline
	case codes.Canceled:
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			kind = kindDeadline
		case ctx.Err() != nil:
			kind = kindCanceled
		default:
			// Nobody cancelled the call: the client connection closed
			// under it, which is what a killed module looks like.
			kind = kindUnavailable
		}
	}
	return &callError{op: op, kind: kind, err: err}
}

// wrapSent is wrapCall for a call whose request had been handed to the
// connection when it failed.
func wrapSent(ctx context.Context, op string, err error) error {
	err = wrapCall(ctx, op, err)
	if ce, ok := err.(*callError); ok {
		ce.sent = true
	}
	return err
}
