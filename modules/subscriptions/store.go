package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Plan is what an org pays for: a monthly allowance of API-call tokens and
// a maximum number of active API keys (MaxKeys < 0: unlimited).
type Plan struct {
	Name          string `json:"name"`
	MonthlyTokens int64  `json:"monthly_tokens"`
	MaxKeys       int64  `json:"max_keys"`
}

// defaultPlans is the ladder the module ships with; the module's config
// ([[modules]] config.plans) overrides any of it.
var defaultPlans = map[string]Plan{
	"personal":     {Name: "personal", MonthlyTokens: 0, MaxKeys: 0},
	"trial":        {Name: "trial", MonthlyTokens: 1_000, MaxKeys: 1},
	"pro":          {Name: "pro", MonthlyTokens: 10_000, MaxKeys: 1},
	"starter":      {Name: "starter", MonthlyTokens: 50_000, MaxKeys: 3},
	"education":    {Name: "education", MonthlyTokens: 100_000, MaxKeys: 5},
	"professional": {Name: "professional", MonthlyTokens: 250_000, MaxKeys: 10},
	"enterprise":   {Name: "enterprise", MonthlyTokens: 1_000_000, MaxKeys: -1},
}

// Account is an org's subscription state. The balance is what is left of
// this month's allowance plus any top-up; the allowance is spent first and
// refills at the start of each UTC month, top-ups never expire.
type Account struct {
	OrgID         string `json:"org_id"`
	Plan          string `json:"plan"`
	MonthlyTokens int64  `json:"monthly_tokens"`
	MaxKeys       *int64 `json:"max_keys"` // null: unlimited
	Monthly       int64  `json:"monthly_remaining"`
	TopUp         int64  `json:"top_up_remaining"`
	Balance       int64  `json:"balance"`
	Period        string `json:"period"` // the month the allowance belongs to, "2026-11"
}

var (
	errInsufficient = errors.New("insufficient balance")
	errUnknownPlan  = errors.New("unknown plan")
)

// store keeps accounts and charges in the module's database. A deduction
// locks its org's account row (SQLite: the write lock taken at BEGIN;
// PostgreSQL: SELECT … FOR UPDATE), so hosts sharing the database never
// spend one balance twice.
type store struct {
	db          *sql.DB
	engine      string
	plans       map[string]Plan
	defaultPlan string
	now         func() time.Time
}

func openStore(db *sql.DB, engine string, plans map[string]Plan, defaultPlan string, now func() time.Time) (*store, error) {
	if _, ok := plans[defaultPlan]; !ok {
		return nil, fmt.Errorf("default_plan %q: %w", defaultPlan, errUnknownPlan)
	}
	return &store{db: db, engine: engine, plans: plans, defaultPlan: defaultPlan, now: now}, nil
}

// forUpdate locks the rows a read returns until the transaction ends, where
// the engine needs to be told.
func (s *store) forUpdate() string {
	if s.engine == "postgres" {
		return " FOR UPDATE"
	}
	return ""
}

func period(t time.Time) string { return t.UTC().Format("2006-01") }

// account loads (creating on first sight with the default plan) an org's
// account inside tx, refilling the monthly allowance when a new month began.
func (s *store) account(ctx context.Context, tx *sql.Tx, orgID string) (Account, error) {
	now := s.now()
	a := Account{OrgID: orgID}
	// A first sight makes the account; ON CONFLICT lets two hosts race to it.
	p := s.plans[s.defaultPlan]
	if _, err := tx.ExecContext(ctx, `INSERT INTO accounts (org_id, plan, monthly, top_up, period, updated_at)
		VALUES ($1, $2, $3, 0, $4, $5) ON CONFLICT (org_id) DO NOTHING`,
		orgID, p.Name, p.MonthlyTokens, period(now), now.UnixMilli()); err != nil {
		return a, err
	}
	err := tx.QueryRowContext(ctx, `SELECT plan, monthly, top_up, period FROM accounts WHERE org_id = $1`+s.forUpdate(), orgID).
		Scan(&a.Plan, &a.Monthly, &a.TopUp, &a.Period)
	switch {
	case err != nil:
		return a, err
	case a.Period != period(now):
		a.Monthly, a.Period = s.plan(a.Plan).MonthlyTokens, period(now)
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET monthly = $1, period = $2, updated_at = $3 WHERE org_id = $4`,
			a.Monthly, a.Period, now.UnixMilli(), orgID); err != nil {
			return a, err
		}
	}
	s.fill(&a)
	return a, nil
}

// plan returns a plan by name; a plan removed from the config since an org
// chose it keeps working as an empty one rather than failing every call.
func (s *store) plan(name string) Plan {
	if p, ok := s.plans[name]; ok {
		return p
	}
	return Plan{Name: name}
}

func (s *store) fill(a *Account) {
	p := s.plan(a.Plan)
	a.MonthlyTokens = p.MonthlyTokens
	if p.MaxKeys >= 0 {
		n := p.MaxKeys
		a.MaxKeys = &n
	}
	a.Balance = a.Monthly + a.TopUp
}

func (s *store) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Deduct charges cost tokens for one call. The charge and the balance move
// in one transaction, the balance never goes below zero, and a request id
// already charged is not charged again.
func (s *store) Deduct(ctx context.Context, orgID, keyID, route, requestID string, cost int64) (charged bool, err error) {
	if cost <= 0 {
		return false, nil
	}
	if requestID == "" {
		return false, errors.New("a charge needs a request id")
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		// The account's lock first: a retry racing its original then sees
		// the original's charge.
		a, err := s.account(ctx, tx, orgID)
		if err != nil {
			return err
		}
		var seen int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM charges WHERE request_id = $1`, requestID).Scan(&seen); err != nil {
			return err
		}
		if seen > 0 {
			return nil // a retry of a call already paid for
		}
		if a.Balance < cost {
			return errInsufficient
		}
		fromMonthly := min(cost, a.Monthly)
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET monthly = monthly - $1, top_up = top_up - $2, updated_at = $3 WHERE org_id = $4`,
			fromMonthly, cost-fromMonthly, s.now().UnixMilli(), orgID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO charges (request_id, org_id, key_id, route, cost, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			requestID, orgID, keyID, route, cost, s.now().UnixMilli()); err != nil {
			return err
		}
		charged = true
		return nil
	})
	return charged, err
}

// Account returns an org's account.
func (s *store) Account(ctx context.Context, orgID string) (Account, error) {
	var a Account
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		a, err = s.account(ctx, tx, orgID)
		return err
	})
	return a, err
}

// SetPlan moves an org to a plan, starting the month's allowance afresh.
func (s *store) SetPlan(ctx context.Context, orgID, plan string) (Account, error) {
	p, ok := s.plans[plan]
	if !ok {
		return Account{}, fmt.Errorf("%w %q (known: %v)", errUnknownPlan, plan, s.planNames())
	}
	var a Account
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.account(ctx, tx, orgID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET plan = $1, monthly = $2, period = $3, updated_at = $4 WHERE org_id = $5`,
			p.Name, p.MonthlyTokens, period(s.now()), s.now().UnixMilli(), orgID); err != nil {
			return err
		}
		var err error
		a, err = s.account(ctx, tx, orgID)
		return err
	})
	return a, err
}

// TopUp adds tokens that do not expire with the month.
func (s *store) TopUp(ctx context.Context, orgID string, tokens int64, note string) (Account, error) {
	if tokens <= 0 {
		return Account{}, errors.New("a top-up must add at least one token")
	}
	var a Account
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.account(ctx, tx, orgID); err != nil {
			return err
		}
		now := s.now().UnixMilli()
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET top_up = top_up + $1, updated_at = $2 WHERE org_id = $3`, tokens, now, orgID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO top_ups (org_id, tokens, note, created_at) VALUES ($1, $2, $3, $4)`, orgID, tokens, note, now); err != nil {
			return err
		}
		var err error
		a, err = s.account(ctx, tx, orgID)
		return err
	})
	return a, err
}

// SetBalance sets the balance outright (top-up part; the month's allowance
// goes to zero), for operators correcting an account and for tests.
func (s *store) SetBalance(ctx context.Context, orgID string, tokens int64) (Account, error) {
	if tokens < 0 {
		return Account{}, errors.New("a balance cannot be negative")
	}
	var a Account
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.account(ctx, tx, orgID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET monthly = 0, top_up = $1, updated_at = $2 WHERE org_id = $3`, tokens, s.now().UnixMilli(), orgID); err != nil {
			return err
		}
		var err error
		a, err = s.account(ctx, tx, orgID)
		return err
	})
	return a, err
}

func (s *store) planNames() []string {
	out := make([]string, 0, len(s.plans))
	for n := range s.plans {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Usage is an org's metered calls in a time range.
type Usage struct {
	OrgID   string       `json:"org_id"`
	Since   string       `json:"since"`
	Calls   int64        `json:"calls"`
	Tokens  int64        `json:"tokens"`
	ByDay   []UsageDay   `json:"by_day"`
	ByRoute []UsageRoute `json:"by_route"`
}

// UsageDay is one UTC day's calls and tokens.
type UsageDay struct {
	Day    string `json:"day"`
	Calls  int64  `json:"calls"`
	Tokens int64  `json:"tokens"`
}

// UsageRoute is one route's calls and tokens.
type UsageRoute struct {
	Route  string `json:"route"`
	Calls  int64  `json:"calls"`
	Tokens int64  `json:"tokens"`
}

// Usage sums the org's charges since a time.
func (s *store) Usage(ctx context.Context, orgID string, since time.Time) (Usage, error) {
	u := Usage{OrgID: orgID, Since: since.UTC().Format(time.RFC3339), ByDay: []UsageDay{}, ByRoute: []UsageRoute{}}
	day := `strftime('%Y-%m-%d', created_at / 1000, 'unixepoch')`
	if s.engine == "postgres" {
		day = `to_char(to_timestamp(created_at / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')`
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+day+` AS day, COUNT(*), SUM(cost)
		FROM charges WHERE org_id = $1 AND created_at >= $2 GROUP BY day ORDER BY day`, orgID, since.UnixMilli())
	if err != nil {
		return u, err
	}
	for rows.Next() {
		var d UsageDay
		if err := rows.Scan(&d.Day, &d.Calls, &d.Tokens); err != nil {
			rows.Close()
			return u, err
		}
		u.ByDay = append(u.ByDay, d)
		u.Calls += d.Calls
		u.Tokens += d.Tokens
	}
	rows.Close()
	rows, err = s.db.QueryContext(ctx, `SELECT route, COUNT(*), SUM(cost) FROM charges WHERE org_id = $1 AND created_at >= $2
		GROUP BY route ORDER BY SUM(cost) DESC, route LIMIT 20`, orgID, since.UnixMilli())
	if err != nil {
		return u, err
	}
	defer rows.Close()
	for rows.Next() {
		var r UsageRoute
		if err := rows.Scan(&r.Route, &r.Calls, &r.Tokens); err != nil {
			return u, err
		}
		u.ByRoute = append(u.ByRoute, r)
	}
	return u, rows.Err()
}

// RollOver starts the new month's allowance for every account still on an
// earlier month, as a task: reads refill lazily too, so this only keeps
// the stored state (and reports on it) current.
func (s *store) RollOver(ctx context.Context) (int64, error) {
	now := s.now()
	var total int64
	for _, name := range s.planNames() {
		res, err := s.db.ExecContext(ctx, `UPDATE accounts SET monthly = $1, period = $2, updated_at = $3 WHERE plan = $4 AND period <> $2`,
			s.plans[name].MonthlyTokens, period(now), now.UnixMilli(), name)
		if err != nil {
			return total, err
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}
