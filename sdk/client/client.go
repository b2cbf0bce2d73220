// Package client is the Go client of Indigo's API. Its calls are those of
// the OpenAPI document a host serves (api/openapi.json), generated into
// package openapi; this package adds what a program expects on top: one
// client with the key, plain Go types, errors as *Error, List as an
// iterator over every page, retries of 429 and 503 answers that honour
// Retry-After, an Idempotency-Key on metered calls, and Do for module
// routes. Middleware protects a net/http service with Indigo's keys.
//
//	c, err := client.New("https://indigo.example.com", os.Getenv("INDIGO_KEY"))
//	k, err := c.Keys.Create(ctx, client.CreateKey{Name: "reports", Scopes: []string{"api-keys:read"}})
//	for key, err := range c.Keys.List(ctx) { ... }
//
// The package imports nothing of the host: a program that calls Indigo
// pulls in no server code.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/indigo-hq/indigo/sdk/client/openapi"
)

// Client calls one Indigo host with one API key. It is safe for
// concurrent use.
type Client struct {
	// Keys manages the org's keys (scopes api-keys:read, api-keys:write,
	// api-keys:verify).
	Keys *Keys

	base *url.URL
	raw  *openapi.ClientWithResponses
	t    *transport
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends the requests through hc (its transport, proxy and
// TLS settings). The default has a 30 s timeout per attempt.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.t.hc = hc }
}

// WithRetry sets how 429 and 503 answers are retried; Retry{Attempts: 1}
// turns retries off.
func WithRetry(r Retry) Option {
	return func(c *Client) { c.t.retry = r.withDefaults() }
}

// WithClock sets the clock the client reads: Retry-After dates, context
// deadlines and Middleware's cache. Tests move it; the default is the
// wall clock.
func WithClock(now func() time.Time) Option {
	return func(c *Client) { c.t.now = now }
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.t.userAgent = ua }
}

// New returns a client of the host at baseURL (scheme and host, and a
// path prefix if Indigo is mounted below one) that authenticates with key.
func New(baseURL, key string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("indigo: base URL %q: want http(s)://host[/prefix]", baseURL)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	if key == "" {
		return nil, errors.New("indigo: no API key")
	}
	c := &Client{base: u, t: &transport{
		hc: &http.Client{Timeout: 30 * time.Second}, key: key, userAgent: "indigo-go-client",
		retry: Retry{}.withDefaults(), sleep: sleep,
	}}
	for _, o := range opts {
		o(c)
	}
	if c.t.now == nil {
		c.t.now = time.Now
	}
	c.raw, err = openapi.NewClientWithResponses(u.String(), openapi.WithHTTPClient(c.t))
	if err != nil {
		return nil, err
	}
	c.Keys = &Keys{c: c}
	return c, nil
}

// Raw is the generated client of every operation of the document (the
// operators' views and the session too), sending through this client's
// key and retries. Its answers are the generated types; a call that
// Indigo refuses is not an error there: read StatusCode and the JSON4xx
// fields.
func (c *Client) Raw() *openapi.ClientWithResponses { return c.raw }

// withIdempotencyKey marks a metered call: all its attempts carry one key.
func withIdempotencyKey(_ context.Context, req *http.Request) error {
	if req.Header.Get(idempotencyHeader) == "" {
		req.Header.Set(idempotencyHeader, newIdempotencyKey())
	}
	return nil
}

// answer turns a generated call's outcome into (value, error): ok is the
// success body, nil for any other answer.
func answer[T any](c *Client, resp *http.Response, body []byte, ok *T) (*T, error) {
	if ok != nil {
		return ok, nil
	}
	return nil, errorFrom(resp, body, c.t.now)
}

// Do calls a route that the generated client does not know: a module's
// (POST /projects) or any other. A path that does not start with /api/
// is below /api/v2. body is sent as JSON (a []byte or json.RawMessage as
// it is; nil sends none), and a success answer is decoded into out (nil
// discards it; a *[]byte or *json.RawMessage gets the raw body). Every
// call carries an Idempotency-Key, so that a retry is charged once and a
// module's kept answer is replayed.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	if !strings.HasPrefix(path, "/api/") {
		path = "/api/v2/" + strings.TrimPrefix(path, "/")
	}
	u, err := c.base.Parse("." + path)
	if err != nil {
		return fmt.Errorf("indigo: path %q: %w", path, err)
	}
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case json.RawMessage:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			return fmt.Errorf("indigo: encode the body: %w", err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	_ = withIdempotencyKey(ctx, req)
	resp, err := c.t.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return errorFrom(resp, b, c.t.now)
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*o = b
	case *json.RawMessage:
		*o = b
	default:
		if len(b) == 0 {
			return nil
		}
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("indigo: decode the answer of %s %s: %w", method, path, err)
		}
	}
	return nil
}

// Me is the calling key, as GET /me answers (any valid key; metered).
type Me struct {
	OrgID     string
	KeyID     string
	Name      string
	Scopes    []string // nil for a superkey
	Superkey  bool
	Status    string
	ExpiresAt *time.Time
}

// Me returns the key the client calls with.
func (c *Client) Me(ctx context.Context) (*Me, error) {
	r, err := c.raw.GetMeWithResponse(ctx, withIdempotencyKey)
	if err != nil {
		return nil, err
	}
	m, err := answer(c, r.HTTPResponse, r.Body, r.JSON200)
	if err != nil {
		return nil, err
	}
	scopes, super := scopesOf(m.Scopes)
	return &Me{OrgID: m.OrgID, KeyID: m.KeyID, Name: m.Name, Scopes: scopes, Superkey: super,
		Status: m.Status, ExpiresAt: timeOf(m.ExpiresAt)}, nil
}

// Scope is a permission a key may hold.
type Scope struct {
	ID     string // e.g. projects:read
	Label  string
	Module string // core for api-keys:*
}

// Scopes lists every scope the host knows (api-keys:read).
func (c *Client) Scopes(ctx context.Context) ([]Scope, error) {
	r, err := c.raw.GetScopesWithResponse(ctx)
	if err != nil {
		return nil, err
	}
	l, err := answer(c, r.HTTPResponse, r.Body, r.JSON200)
	if err != nil {
		return nil, err
	}
	out := make([]Scope, len(l.Scopes))
	for i, s := range l.Scopes {
		out[i] = Scope{ID: s.ID, Label: s.Label, Module: s.Module}
	}
	return out, nil
}
