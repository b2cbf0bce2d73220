package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/sdk"
	"github.com/indigo-hq/indigo/sdk/rpc"
	"github.com/indigo-hq/indigo/sdk/sdktest"
)

// clock is a settable time for the month boundary tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func harness(t *testing.T, c *clock, cfg map[string]any) *sdktest.Harness {
	return sdktest.New(t, newModule(c.now), sdktest.WithConfig(cfg))
}

func deduct(t *testing.T, h *sdktest.Harness, org, req string, cost int64) error {
	t.Helper()
	payload, _ := json.Marshal(sdk.MeterCall{OrgID: org, KeyID: "key_1", Route: "/api/v2/x", Cost: cost, RequestID: req})
	_, err := h.Module().CallHook(context.Background(), sdk.HookDeductAPICallToken, payload)
	return err
}

func admin1(t *testing.T, c *clock, dir string, args ...string) (Account, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := admin(c.now, append([]string{"--data-dir", dir}, args...), &out, &errb)
	var a Account
	if code == 0 {
		if err := json.Unmarshal(out.Bytes(), &a); err != nil {
			t.Fatalf("admin output: %v\n%s", err, out.String())
		}
	}
	return a, errb.String(), code
}

// 100 concurrent calls against a balance of 60: exactly 60 are charged,
// 40 are refused as insufficient, and the balance ends at 0.
func TestConcurrentDeductionsNeverOverspend(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)}
	h := harness(t, c, nil)
	dir := h.DataDir()
	if a, stderr, code := admin1(t, c, dir, "set-balance", "org_a", "60"); code != 0 || a.Balance != 60 {
		t.Fatalf("set-balance: %d %s %+v", code, stderr, a)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	for i := range 100 {
		wg.Go(func() {
			err := deduct(t, h, "org_a", fmt.Sprintf("req-%d", i), 1)
			mu.Lock()
			defer mu.Unlock()
			he, isHook := errors.AsType[*rpc.HookError](err)
			switch {
			case err == nil:
				ok++
			case isHook && he.Code == "insufficient_balance":
				refused++
			default:
				t.Errorf("deduct: %v", err)
			}
		})
	}
	wg.Wait()
	if ok != 60 || refused != 40 {
		t.Fatalf("%d charged, %d refused; want 60 and 40", ok, refused)
	}
	r := h.Do("GET", "/subscriptions/balance", sdk.Caller{OrgID: "org_a", Scopes: []string{"subscriptions:read"}}, nil)
	var acc Account
	if err := r.Decode(&acc); err != nil || r.Status != 200 || acc.Balance != 0 || acc.Monthly != 0 || acc.TopUp != 0 {
		t.Fatalf("balance after: %d %s", r.Status, r.Body)
	}
}

// A retried request id is charged once; a refused one may be retried
// after a top-up.
func TestDeductionIsIdempotentByRequestID(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)}
	h := harness(t, c, nil)
	dir := h.DataDir()
	admin1(t, c, dir, "set-balance", "org_a", "10")
	for range 3 {
		if err := deduct(t, h, "org_a", "req-same", 4); err != nil {
			t.Fatal(err)
		}
	}
	if a, _, _ := admin1(t, c, dir, "show", "org_a"); a.Balance != 6 {
		t.Fatalf("balance after three tries of one request: %d, want 6", a.Balance)
	}
	if err := deduct(t, h, "org_a", "req-big", 7); err == nil {
		t.Fatal("a charge above the balance went through")
	}
	if a, _, _ := admin1(t, c, dir, "top-up", "org_a", "5"); a.Balance != 11 {
		t.Fatalf("after top-up: %+v", a)
	}
	if err := deduct(t, h, "org_a", "req-big", 7); err != nil {
		t.Fatalf("the refused request after a top-up: %v", err)
	}
	if err := deduct(t, h, "org_a", "", 1); err == nil {
		t.Fatal("a charge without a request id went through")
	}
	u := h.Do("GET", "/subscriptions/usage?days=7", sdk.Caller{OrgID: "org_a", Scopes: []string{"subscriptions:read"}}, nil)
	var usage Usage
	if err := u.Decode(&usage); err != nil || usage.Calls != 2 || usage.Tokens != 11 || len(usage.ByDay) != 1 || usage.ByRoute[0].Route != "/api/v2/x" {
		t.Fatalf("usage: %d %s", u.Status, u.Body)
	}
	// Another org sees none of it.
	u = h.Do("GET", "/subscriptions/usage", sdk.Caller{OrgID: "org_b", Scopes: []string{"subscriptions:read"}}, nil)
	if err := u.Decode(&usage); err != nil || usage.Calls != 0 {
		t.Fatalf("org b's usage: %s", u.Body)
	}
	if r := h.Do("GET", "/subscriptions/usage?days=0", sdk.Caller{OrgID: "org_a"}, nil); r.Status != 400 {
		t.Fatalf("days=0: %d", r.Status)
	}
}

// The monthly allowance is spent first and refills with the month; a
// top-up carries over.
func TestMonthlyAllowanceRefills(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)}
	h := harness(t, c, map[string]any{"plans": map[string]any{"tiny": map[string]any{"monthly_tokens": 3, "max_keys": 2}}})
	dir := h.DataDir()
	cfg := `{"plans":{"tiny":{"monthly_tokens":3,"max_keys":2}}}`
	if a, stderr, code := admin1(t, c, dir, "--config", cfg, "set-plan", "org_a", "tiny"); code != 0 || a.Monthly != 3 {
		t.Fatalf("set-plan: %d %s %+v", code, stderr, a)
	}
	admin1(t, c, dir, "--config", cfg, "top-up", "org_a", "2")
	for i := range 4 {
		if err := deduct(t, h, "org_a", fmt.Sprint("n", i), 1); err != nil {
			t.Fatal(err)
		}
	}
	if a, _, _ := admin1(t, c, dir, "--config", cfg, "show", "org_a"); a.Monthly != 0 || a.TopUp != 1 {
		t.Fatalf("allowance spent before the top-up: %+v", a)
	}
	c.set(time.Date(2026, 12, 1, 0, 0, 1, 0, time.UTC))
	r := h.Do("GET", "/subscriptions/balance", sdk.Caller{OrgID: "org_a"}, nil)
	var acc Account
	if err := r.Decode(&acc); err != nil || acc.Monthly != 3 || acc.TopUp != 1 || acc.Period != "2026-12" || acc.Plan != "tiny" || *acc.MaxKeys != 2 {
		t.Fatalf("in the new month: %s", r.Body)
	}
}

// Each plan's key limit comes through the key_limit hook; enterprise has
// none, and an unknown plan is refused.
func TestPlanKeyLimits(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)}
	h := harness(t, c, nil)
	dir := h.DataDir()
	want := map[string]string{
		"personal":     `{"plan":"personal","max_keys":0,"limited":true}`,
		"trial":        `{"plan":"trial","max_keys":1,"limited":true}`,
		"pro":          `{"plan":"pro","max_keys":1,"limited":true}`,
		"starter":      `{"plan":"starter","max_keys":3,"limited":true}`,
		"education":    `{"plan":"education","max_keys":5,"limited":true}`,
		"professional": `{"plan":"professional","max_keys":10,"limited":true}`,
		"enterprise":   `{"plan":"enterprise","max_keys":0,"limited":false}`,
	}
	for plan, limit := range want {
		org := "org_" + plan
		if _, stderr, code := admin1(t, c, dir, "set-plan", org, plan); code != 0 {
			t.Fatalf("set-plan %s: %s", plan, stderr)
		}
		out, err := h.Module().CallHook(context.Background(), sdk.HookKeyLimit, []byte(`{"org_id":"`+org+`"}`))
		if err != nil || string(out) != limit {
			t.Errorf("%s: %s, %v; want %s", plan, out, err, limit)
		}
	}
	if _, stderr, code := admin1(t, c, dir, "set-plan", "org_x", "platinum"); code == 0 || !strings.Contains(stderr, "unknown plan") || !strings.Contains(stderr, "starter") {
		t.Fatalf("unknown plan: %d %s", code, stderr)
	}
	// A new org starts on the default plan (trial).
	out, _ := h.Module().CallHook(context.Background(), sdk.HookKeyLimit, []byte(`{"org_id":"org_new"}`))
	if string(out) != want["trial"] {
		t.Fatalf("a new org: %s", out)
	}
}
