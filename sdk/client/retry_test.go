package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// scripted is a server that answers each request with the next status of
// its script (the last one repeats) and records what it got.
type scripted struct {
	mu       sync.Mutex
	statuses []int
	header   http.Header // sent with every error answer
	got      []*http.Request
	bodies   []string
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	n := len(s.got)
	s.got = append(s.got, r.Clone(context.Background()))
	s.bodies = append(s.bodies, string(b))
	st := s.statuses[min(n, len(s.statuses)-1)]
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Request-Id", "req-"+string(rune('a'+n)))
	if st >= 300 {
		for k, v := range s.header {
			w.Header()[k] = v
		}
		w.WriteHeader(st)
		_, _ = io.WriteString(w, `{"error":{"code":"c`+http.StatusText(st)[:1]+`","message":"m"}}`)
		return
	}
	w.WriteHeader(st)
	_, _ = io.WriteString(w, `{"org_id":"org_1","key_id":"key_1","name":"n","scopes":null,"status":"active","expires_at":null,`+
		`"valid":true,"code":"valid","remaining":null,"rate_limit":null}`)
}

// testClient is a client of srv whose waits are recorded, not slept.
func testClient(t *testing.T, srv http.Handler, opts ...Option) (*Client, *[]time.Duration) {
	t.Helper()
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	c, err := New(ts.URL, "indigo_sk_test", opts...)
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	c.t.sleep = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		return ctx.Err()
	}
	return c, &waits
}

func TestRetries(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return base }
	cases := []struct {
		name      string
		statuses  []int
		header    http.Header
		call      func(ctx context.Context, c *Client) error
		opts      []Option
		ctx       func() (context.Context, context.CancelFunc)
		sent      int
		waits     []time.Duration // nil: only checked to be within backoff
		wantError int             // the final status, 0 for success
	}{
		{name: "429 waits Retry-After then succeeds", statuses: []int{429, 200}, header: http.Header{"Retry-After": {"2"}},
			call: me, sent: 2, waits: []time.Duration{2 * time.Second}},
		{name: "429 as an HTTP date", statuses: []int{429, 200}, header: http.Header{"Retry-After": {base.Add(3 * time.Second).Format(http.TimeFormat)}},
			call: me, sent: 2, waits: []time.Duration{3 * time.Second}},
		{name: "429 is retried on a POST that creates", statuses: []int{429, 201}, header: http.Header{"Retry-After": {"1"}},
			call: create, sent: 2, waits: []time.Duration{time.Second}},
		{name: "503 on a POST that creates is not retried", statuses: []int{503, 201}, header: http.Header{"Retry-After": {"1"}},
			call: create, sent: 1, waits: []time.Duration{}, wantError: 503},
		{name: "503 on verify (Idempotency-Key) is retried", statuses: []int{503, 200}, header: http.Header{"Retry-After": {"1"}},
			call: verify, sent: 2, waits: []time.Duration{time.Second}},
		{name: "503 on a GET is retried", statuses: []int{503, 503, 200}, call: me, sent: 3},
		{name: "attempts are bounded", statuses: []int{429}, header: http.Header{"Retry-After": {"1"}},
			call: me, sent: 3, waits: []time.Duration{time.Second, time.Second}, wantError: 429},
		{name: "Attempts: 1 turns retries off", statuses: []int{429, 200}, header: http.Header{"Retry-After": {"1"}},
			opts: []Option{WithRetry(Retry{Attempts: 1})}, call: me, sent: 1, waits: []time.Duration{}, wantError: 429},
		{name: "a wait beyond MaxWait is not waited", statuses: []int{429, 200}, header: http.Header{"Retry-After": {"120"}},
			call: me, sent: 1, waits: []time.Duration{}, wantError: 429},
		{name: "a wait beyond the context's deadline is not waited", statuses: []int{429, 200}, header: http.Header{"Retry-After": {"5"}},
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 4*time.Second)
			},
			opts: []Option{WithClock(time.Now)}, call: me, sent: 1, waits: []time.Duration{}, wantError: 429},
		{name: "a replayed answer is not retried", statuses: []int{503, 200}, header: http.Header{"Retry-After": {"1"}, "Idempotent-Replayed": {"true"}},
			call: doPost, sent: 1, waits: []time.Duration{}, wantError: 503},
		{name: "other errors are not retried", statuses: []int{500, 200}, call: me, sent: 1, waits: []time.Duration{}, wantError: 500},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := &scripted{statuses: tc.statuses, header: tc.header}
			c, waits := testClient(t, srv, append([]Option{WithClock(clock)}, tc.opts...)...)
			ctx, cancel := context.Background(), func() {}
			if tc.ctx != nil {
				ctx, cancel = tc.ctx()
			}
			defer cancel()
			err := tc.call(ctx, c)
			var e *Error
			switch {
			case tc.wantError >= 300 && !errors.As(err, &e):
				t.Fatalf("err %v, want an *Error %d", err, tc.wantError)
			case tc.wantError >= 300 && e.Status != tc.wantError:
				t.Errorf("status %d, want %d", e.Status, tc.wantError)
			case tc.wantError < 300 && err != nil:
				t.Fatalf("err %v", err)
			}
			if len(srv.got) != tc.sent {
				t.Errorf("sent %d requests, want %d", len(srv.got), tc.sent)
			}
			if tc.waits != nil && !slices.Equal(*waits, tc.waits) {
				t.Errorf("waited %v, want %v", *waits, tc.waits)
			}
			// Every attempt is the same request: body and Idempotency-Key.
			for i := 1; i < len(srv.got); i++ {
				if srv.bodies[i] != srv.bodies[0] {
					t.Errorf("attempt %d sent %q, the first %q", i+1, srv.bodies[i], srv.bodies[0])
				}
				if a, b := srv.got[i].Header.Get("Idempotency-Key"), srv.got[0].Header.Get("Idempotency-Key"); a != b {
					t.Errorf("attempt %d Idempotency-Key %q, the first %q", i+1, a, b)
				}
			}
		})
	}
}

func me(ctx context.Context, c *Client) error { _, err := c.Me(ctx); return err }

func create(ctx context.Context, c *Client) error {
	_, err := c.Keys.Create(ctx, CreateKey{Name: "n"})
	return err
}

func verify(ctx context.Context, c *Client) error {
	_, err := c.Keys.Verify(ctx, "indigo_sk_other")
	return err
}

func doPost(ctx context.Context, c *Client) error {
	return c.Do(ctx, "POST", "/projects", map[string]string{"name": "p"}, nil)
}

// Without Retry-After, the waits double from Backoff, each with jitter
// in [half, whole].
func TestBackoffWithoutRetryAfter(t *testing.T) {
	srv := &scripted{statuses: []int{503}}
	c, waits := testClient(t, srv, WithRetry(Retry{Attempts: 4, Backoff: 100 * time.Millisecond}))
	if err := me(context.Background(), c); err == nil {
		t.Fatal("no error after the last 503")
	}
	if len(*waits) != 3 {
		t.Fatalf("waits %v, want 3", *waits)
	}
	for i, w := range *waits {
		full := 100 * time.Millisecond << i
		if w < full/2 || w > full {
			t.Errorf("wait %d is %v, want within [%v, %v]", i+1, w, full/2, full)
		}
	}
}

// Metered calls carry an Idempotency-Key; key management does not.
func TestIdempotencyKeyOnMeteredCalls(t *testing.T) {
	srv := &scripted{statuses: []int{200}}
	c, _ := testClient(t, srv)
	ctx := context.Background()
	_ = me(ctx, c)
	_ = verify(ctx, c)
	_ = doPost(ctx, c)
	_ = c.Do(ctx, "GET", "/projects", nil, nil)
	_, _ = c.Keys.Get(ctx, "key_1")
	want := []bool{true, true, true, true, false}
	seen := map[string]bool{}
	for i, r := range srv.got {
		k := r.Header.Get("Idempotency-Key")
		if (k != "") != want[i] {
			t.Errorf("%s %s: Idempotency-Key %q", r.Method, r.URL.Path, k)
		}
		if k != "" && seen[k] {
			t.Errorf("%s %s reuses the key %q of another call", r.Method, r.URL.Path, k)
		}
		seen[k] = true
		if got := r.Header.Get("Authorization"); got != "Bearer indigo_sk_test" {
			t.Errorf("%s %s: Authorization %q", r.Method, r.URL.Path, got)
		}
	}
}
