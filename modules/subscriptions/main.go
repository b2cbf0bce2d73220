// Command subscriptions is core-subscriptions, the first-party module that
// meters the API: plans per org with a monthly allowance of API-call tokens
// and a maximum number of API keys, a deductApiCallToken hook the host
// calls for every v2 call (point [api.deps] deduct_api_call_token at it),
// and the plan's key limit, which core-api enforces at key creation.
//
// Its routes show an org its balance and usage (subscriptions:read). An
// operator sets plans and tops up balances with the binary's admin mode,
// which `indigo subscriptions` runs:
//
//	subscriptions admin --data-dir DIR set-plan ORG PLAN
//	subscriptions admin --data-dir DIR top-up ORG TOKENS
//	subscriptions admin --data-dir DIR show ORG
package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/indigo-hq/indigo/sdk"
)

//go:embed migrations
var migrations embed.FS

func main() {
	if len(os.Args) > 1 && os.Args[1] == "admin" {
		os.Exit(admin(time.Now, os.Args[2:], os.Stdout, os.Stderr))
	}
	sdk.Serve(newModule(time.Now))
}

// config is the module's section of indigo.toml ([[modules]] config).
type config struct {
	DefaultPlan string          `json:"default_plan"`
	Plans       map[string]Plan `json:"plans"`
}

func (c config) plans() (map[string]Plan, string) {
	plans := make(map[string]Plan, len(defaultPlans))
	for n, p := range defaultPlans {
		plans[n] = p
	}
	for n, p := range c.Plans {
		p.Name = n
		plans[n] = p
	}
	def := c.DefaultPlan
	if def == "" {
		def = "trial"
	}
	return plans, def
}

type app struct {
	now func() time.Time
	st  atomic.Pointer[store]
}

func newModule(now func() time.Time) sdk.Module {
	a := &app{now: now}
	sub, _ := fs.Sub(migrations, "migrations")
	return sdk.Module{
		Name:    "subscriptions",
		Version: "1.0.0",
		Scopes:  []sdk.Scope{{ID: "subscriptions:read", Label: "Read the plan, balance and usage"}},
		Routes: []sdk.Route{
			// Reading the balance is free, so that an org out of tokens can
			// still see why.
			{Method: "GET", Path: "/subscriptions/balance", Scopes: []string{"subscriptions:read"}, Cost: 0, Handler: http.HandlerFunc(a.balance)},
			{Method: "GET", Path: "/subscriptions/usage", Scopes: []string{"subscriptions:read"}, Cost: 0, Handler: http.HandlerFunc(a.usage)},
		},
		Database:   true,
		Migrations: sub,
		// The month's allowance starts afresh on the first of each UTC
		// month; reads refill lazily, and this keeps the stored state current.
		Tasks: []sdk.Task{{Name: "roll-over", Every: time.Hour, Run: func(ctx context.Context, _ sdk.Host) error {
			st, err := a.store()
			if err != nil {
				return err
			}
			_, err = st.RollOver(ctx)
			return err
		}}},
		ServerInit:         a.init,
		DeductAPICallToken: a.deduct,
		KeyLimit:           a.keyLimit,
	}
}

func (a *app) init(_ context.Context, host sdk.Host) error {
	var c config
	if err := host.DecodeConfig(&c); err != nil {
		return err
	}
	plans, def := c.plans()
	st, err := openStore(host.DB(), host.Engine(), plans, def, a.now)
	if err != nil {
		return err
	}
	a.st.Store(st)
	return nil
}

func (a *app) store() (*store, error) {
	st := a.st.Load()
	if st == nil {
		return nil, errors.New("subscriptions: not initialised")
	}
	return st, nil
}

// deduct is the deductApiCallToken hook.
func (a *app) deduct(ctx context.Context, c sdk.MeterCall) error {
	st, err := a.store()
	if err != nil {
		return err
	}
	_, err = st.Deduct(ctx, c.OrgID, c.KeyID, c.Route, c.RequestID, c.Cost)
	if errors.Is(err, errInsufficient) {
		return sdk.ErrInsufficientBalance
	}
	return err
}

// keyLimit is the plan's limit on active keys.
func (a *app) keyLimit(ctx context.Context, orgID string) (sdk.KeyLimit, error) {
	st, err := a.store()
	if err != nil {
		return sdk.KeyLimit{}, err
	}
	acc, err := st.Account(ctx, orgID)
	if err != nil {
		return sdk.KeyLimit{}, err
	}
	if acc.MaxKeys == nil {
		return sdk.KeyLimit{Plan: acc.Plan}, nil
	}
	return sdk.KeyLimit{Plan: acc.Plan, MaxKeys: *acc.MaxKeys, Limited: true}, nil
}

func (a *app) balance(w http.ResponseWriter, r *http.Request) {
	c, _ := sdk.CallerFrom(r.Context())
	st, err := a.store()
	if err != nil {
		sdk.Error(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	acc, err := st.Account(r.Context(), c.OrgID)
	if err != nil {
		sdk.Error(w, http.StatusInternalServerError, "internal", "the balance could not be read")
		return
	}
	sdk.JSON(w, http.StatusOK, acc)
}

// usage answers ?days=N (default 30, at most 366) of the org's metered calls.
func (a *app) usage(w http.ResponseWriter, r *http.Request) {
	c, _ := sdk.CallerFrom(r.Context())
	days := 30
	if v := r.URL.Query().Get("days"); v != "" {
		if _, err := fmt.Sscanf(v, "%d", &days); err != nil || days < 1 || days > 366 {
			sdk.Error(w, http.StatusBadRequest, "bad_request", "days must be a whole number from 1 to 366")
			return
		}
	}
	st, err := a.store()
	if err != nil {
		sdk.Error(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	since := a.now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 1-days)
	u, err := st.Usage(r.Context(), c.OrgID, since)
	if err != nil {
		sdk.Error(w, http.StatusInternalServerError, "internal", "usage could not be read")
		return
	}
	sdk.JSON(w, http.StatusOK, u)
}
