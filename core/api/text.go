package api

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/indigo-hq/indigo/core/httpapi"
	"github.com/indigo-hq/indigo/core/internal/text"
)

// dataHeaders are the request headers whose values the host keeps or hands
// on as data (Idempotency-Key becomes the metering call's request id).
var dataHeaders = []string{"Idempotency-Key"}

// checkText refuses, before any route runs, a request whose path (and so
// its {id}s: the URL parser has already decoded %ff and %00 into bytes),
// query or data headers are not valid text. Bodies are checked where they
// are read: httpapi.DecodeStrict, and the module proxy.
func checkText(r *http.Request) *httpapi.Error {
	if !text.Valid(r.URL.Path) {
		return httpapi.InvalidText("the path")
	}
	if r.URL.RawQuery != "" {
		// The raw query too: a pair that does not decode (a=%zz) is dropped
		// by ParseQuery unchecked, and a module gets the raw query.
		if !text.Valid(r.URL.RawQuery) {
			return httpapi.InvalidText("the query")
		}
		if err := checkQuery(r.URL.RawQuery, "query parameter"); err != nil {
			return err
		}
	}
	for _, h := range dataHeaders {
		for _, v := range r.Header[h] {
			if !text.Valid(v) {
				return httpapi.InvalidText("header " + h)
			}
		}
	}
	return nil
}

// checkQuery checks the names and values of a URL-encoded query or form.
func checkQuery(raw, what string) *httpapi.Error {
	// ParseQuery keeps the pairs it could read, which are what the
	// handlers see.
	q, _ := url.ParseQuery(raw)
	for k, vs := range q {
		if !text.Valid(k) {
			return httpapi.InvalidText("a " + what + "'s name")
		}
		for _, v := range vs {
			if !text.Valid(v) {
				return httpapi.InvalidText(what + " " + k)
			}
		}
	}
	return nil
}

// CheckBodyText checks a body that the host passes on without decoding it
// (a module route's): a JSON body as httpapi.DecodeStrict checks one, and a
// form's fields as a query's. A JSON body is one declared so or, whatever
// its declared type, one that parses as JSON: curl -d and fetch with a
// string body send JSON as a form or as text/plain. Other bodies (binary
// uploads) are the module's to read.
func CheckBodyText(contentType string, body []byte) *httpapi.Error {
	if len(body) == 0 {
		return nil
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/json" || strings.HasSuffix(mt, "+json") || json.Valid(body) {
		if err := text.CheckJSON(body); err != nil {
			return httpapi.InvalidText("the request body (" + err.Error() + ")")
		}
		return nil
	}
	if mt == "application/x-www-form-urlencoded" {
		return checkQuery(string(body), "form field")
	}
	return nil
}
