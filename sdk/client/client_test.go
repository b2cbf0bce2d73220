package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/sdk/client"
)

func newClient(t *testing.T, h http.HandlerFunc, opts ...client.Option) *client.Client {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	c, err := client.New(ts.URL+"/indigo", "indigo_sk_test", append([]client.Option{client.WithRetry(client.Retry{Attempts: 1})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestErrorsAreTyped(t *testing.T) {
	cases := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        client.Error
	}{
		{"Indigo's error shape", 403, "application/json", `{"error":{"code":"insufficient_scope","message":"this key lacks the scope api-keys:write"}}`,
			client.Error{Status: 403, Code: "insufficient_scope", Message: "this key lacks the scope api-keys:write", RequestID: "rid-1"}},
		{"a proxy's page", 502, "text/html", "<html>Bad Gateway</html>\nmore",
			client.Error{Status: 502, Message: "<html>Bad Gateway</html>", RequestID: "rid-1"}},
		{"no body", 404, "", "", client.Error{Status: 404, Message: "Not Found", RequestID: "rid-1"}},
		{"a 429 with its wait", 429, "application/json", `{"error":{"code":"rate_limited","message":"slow down"}}`,
			client.Error{Status: 429, Code: "rate_limited", Message: "slow down", RequestID: "rid-1", RetryAfter: 7 * time.Second}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.contentType != "" {
					w.Header().Set("Content-Type", tc.contentType)
				}
				w.Header().Set("X-Request-Id", "rid-1")
				if tc.status == 429 {
					w.Header().Set("Retry-After", "7")
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			ctx := context.Background()
			calls := map[string]func() error{
				"Keys.Get":    func() error { _, err := c.Keys.Get(ctx, "key_1"); return err },
				"Keys.Revoke": func() error { return c.Keys.Revoke(ctx, "key_1") },
				"Keys.List": func() error {
					for _, err := range c.Keys.List(ctx) {
						return err
					}
					return nil
				},
				"Do": func() error { return c.Do(ctx, "GET", "/projects", nil, nil) },
			}
			for name, call := range calls {
				err := call()
				var e *client.Error
				if !errors.As(err, &e) {
					t.Fatalf("%s: %T %v, want an *client.Error", name, err, err)
				}
				if *e != tc.want {
					t.Errorf("%s: %+v, want %+v", name, *e, tc.want)
				}
				if !strings.Contains(e.Error(), "rid-1") {
					t.Errorf("%s: the message %q does not name the request", name, e.Error())
				}
			}
		})
	}
}

// A transport failure is not an *Error: there was no answer.
func TestUnreachableIsNotAnAnswer(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	ts.Close()
	c, err := client.New(ts.URL, "indigo_sk_test")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Me(context.Background())
	var e *client.Error
	if err == nil || errors.As(err, &e) {
		t.Fatalf("err %v, want a transport error", err)
	}
}

func TestDo(t *testing.T) {
	var got struct {
		method, path, contentType string
		body                      map[string]any
	}
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		got.method, got.path, got.contentType = r.Method, r.URL.Path, r.Header.Get("Content-Type")
		got.body = nil
		_ = json.NewDecoder(r.Body).Decode(&got.body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		_, _ = io.WriteString(w, `{"project":{"id":"p1","name":"first"}}`)
	})
	ctx := context.Background()
	var out struct {
		Project struct{ ID, Name string }
	}
	if err := c.Do(ctx, "POST", "/projects", map[string]string{"name": "first"}, &out); err != nil {
		t.Fatal(err)
	}
	if got.method != "POST" || got.path != "/indigo/api/v2/projects" || got.contentType != "application/json" || got.body["name"] != "first" {
		t.Errorf("sent %+v", got)
	}
	if out.Project.ID != "p1" {
		t.Errorf("decoded %+v", out)
	}
	var raw json.RawMessage
	if err := c.Do(ctx, "GET", "/api/v1/cms/entries", nil, &raw); err != nil {
		t.Fatal(err)
	}
	if got.path != "/indigo/api/v1/cms/entries" || !strings.Contains(string(raw), `"p1"`) {
		t.Errorf("GET %s answered %s", got.path, raw)
	}
}

func TestNewRefusesABadBase(t *testing.T) {
	for _, base := range []string{"", "indigo.example.com", "ftp://x", "http://"} {
		if _, err := client.New(base, "k"); err == nil {
			t.Errorf("New(%q) accepted", base)
		}
	}
	if _, err := client.New("http://x", ""); err == nil {
		t.Error("New without a key accepted")
	}
}
