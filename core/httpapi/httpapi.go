// Package httpapi is the one JSON reader and writer that every Indigo
// handler uses, and the error type whose code, message and status reach the
// client as {"error":{"code","message"}}.
package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/indigo-hq/indigo/core/internal/text"
)

// Error is an API error with a stable code.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf builds an Error.
func Errorf(status int, code, format string, a ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, a...)}
}

// Common errors.
var (
	ErrUnauthorized = &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "missing or invalid credentials"}
	ErrInternal     = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
	ErrUnavailable  = &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "service temporarily unavailable"}
)

// StatusClientClosed is the status recorded for a request whose caller
// went away before it was answered (nginx's "client closed request"):
// the request log and the metrics show it, nobody reads it, and it is not
// the server's failure.
const StatusClientClosed = 499

// CodeInvalidText is the code of a 400 for text that is not valid UTF-8 or
// holds a NUL character, wherever it came in: a JSON string at any depth,
// a path segment, a query parameter or a header the host keeps.
const CodeInvalidText = "invalid_text"

// InvalidText builds the 400 for text that cannot be stored; what says
// where, and must itself be valid text.
func InvalidText(what string) *Error {
	return Errorf(http.StatusBadRequest, CodeInvalidText, "%s is not valid UTF-8 text or holds a NUL character", what)
}

// UnauthorizedBody is the one 401 body, byte for byte, whatever the cause,
// so that a caller learns nothing about why a key was refused.
var UnauthorizedBody = []byte(`{"error":{"code":"unauthorized","message":"missing or invalid API key"}}` + "\n")

// Shared header values: net/http only reads them, so one slice serves
// every response and saves an allocation each.
var (
	jsonContentType = []string{"application/json"}
	bearerChallenge = []string{`Bearer realm="indigo"`}
)

// WriteUnauthorized writes the uniform 401.
func WriteUnauthorized(w http.ResponseWriter) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Www-Authenticate"] = bearerChallenge
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write(UnauthorizedBody)
}

type encoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var encoders = sync.Pool{New: func() any {
	e := &encoder{}
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}}

// Marshal encodes v as WriteJSON does.
func Marshal(v any) ([]byte, error) {
	e := encoders.Get().(*encoder)
	defer encoders.Put(e)
	e.buf.Reset()
	if err := e.enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.Clone(e.buf.Bytes()), nil
}

// WriteJSON writes v with the status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	e := encoders.Get().(*encoder)
	defer func() {
		if e.buf.Cap() <= 64<<10 {
			encoders.Put(e)
		}
	}()
	e.buf.Reset()
	if err := e.enc.Encode(v); err != nil {
		WriteError(w, ErrInternal)
		return
	}
	WriteRaw(w, status, e.buf.Bytes())
}

// WriteRaw writes an already encoded JSON body.
func WriteRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// WriteError writes err as an API error; anything that is not an *Error is
// a 500 whose detail stays in the server log.
func WriteError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = ErrInternal
	}
	if e.Status == http.StatusUnauthorized {
		WriteUnauthorized(w)
		return
	}
	WriteJSON(w, e.Status, map[string]*Error{"error": e})
}

// MaxBody caps request bodies.
const MaxBody = 1 << 20

// ReadJSON decodes one JSON value from the body into v, refusing unknown
// fields, trailing data and oversized bodies with a 400. The Content-Type is
// not checked: cookie sessions are protected by the CSRF token instead.
func ReadJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, MaxBody)
	return DecodeStrict(body, v)
}

// DecodeStrict decodes exactly one JSON value with no unknown fields. The
// raw body is checked first (text.CheckJSON): the decoder would quietly
// turn invalid UTF-8 into U+FFFD, and keep it as it is in a RawMessage.
func DecodeStrict(rd io.Reader, v any) error {
	b, err := io.ReadAll(rd)
	if err != nil {
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return Errorf(http.StatusRequestEntityTooLarge, "body_too_large", "request body is larger than %d bytes", mbe.Limit)
		}
		return Errorf(http.StatusBadRequest, "bad_request", "could not read the request body")
	}
	if err := text.CheckJSON(b); err != nil {
		return InvalidText("the request body (" + err.Error() + ")")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.Is(err, io.EOF):
			return Errorf(http.StatusBadRequest, "bad_request", "request body is empty")
		case errors.As(err, &ute):
			return Errorf(http.StatusBadRequest, "bad_request", "field %q must be %s", ute.Field, ute.Type)
		case errors.As(err, &se):
			return Errorf(http.StatusBadRequest, "bad_request", "malformed JSON at byte %d", se.Offset)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return Errorf(http.StatusBadRequest, "bad_request", "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		default:
			var e *Error
			if errors.As(err, &e) {
				return e
			}
			return Errorf(http.StatusBadRequest, "bad_request", "invalid JSON: %s", err.Error())
		}
	}
	if dec.More() {
		return Errorf(http.StatusBadRequest, "bad_request", "request body must hold one JSON value")
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		return Errorf(http.StatusBadRequest, "bad_request", "request body must hold one JSON value")
	}
	return nil
}
