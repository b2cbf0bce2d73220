package apikey

import "fmt"

// Kind says what sort of failure an Error is. The HTTP layer maps each kind
// to one status (core/api), so this package knows nothing of HTTP.
type Kind uint8

// The kinds of refusal.
const (
	Malformed   Kind = iota + 1 // the request's shape is wrong
	Invalid                     // a value breaks a rule (an unknown scope, a name too long)
	NotFound                    // no such key in the organization
	Conflict                    // the key's state or a limit forbids the change
	Unavailable                 // a provider the change depends on did not answer
)

// Error is a refusal with a stable code for clients and a message for
// people. Match it with errors.As.
type Error struct {
	Kind    Kind
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func refuse(kind Kind, code, format string, a ...any) error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, a...)}
}

func unprocessable(code, format string, a ...any) error {
	return refuse(Invalid, code, format, a...)
}

func conflict(code, format string, a ...any) error {
	return refuse(Conflict, code, format, a...)
}

func notFound(what string) error {
	return refuse(NotFound, "not_found", "%s not found", what)
}
