package client

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Error is an answer of Indigo that is not a success: the HTTP status,
// the stable code and the message of the body {"error": {"code",
// "message"}}, and the request id (X-Request-Id) to quote when asking
// about it. Every call of this package returns one as its error for such
// an answer; find it with errors.As.
type Error struct {
	Status    int
	Code      string // e.g. unauthorized, insufficient_scope, rate_limited, not_found
	Message   string
	RequestID string
	// RetryAfter is the wait the answer asked for (Retry-After on a 429
	// or 503), 0 when none.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "indigo: %d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (request " + e.RequestID + ")")
	}
	return b.String()
}

// errorFrom reads an error answer. A body that is not Indigo's error
// shape (a proxy's page, say) keeps its first line as the message.
func errorFrom(resp *http.Response, body []byte, now func() time.Time) *Error {
	e := &Error{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	e.RetryAfter, _ = retryAfter(resp.Header, now)
	var shape struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &shape) == nil && shape.Error.Code != "" {
		e.Code, e.Message = shape.Error.Code, shape.Error.Message
		return e
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	if len(line) > 200 {
		line = line[:200]
	}
	e.Message = line
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}
