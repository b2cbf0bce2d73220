package db_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/db"
	"github.com/indigo-hq/indigo/db/dbtest"
	"github.com/indigo-hq/indigo/db/sqlitedb"
)

// t0 is the base of every timestamp in the suite (Unix milliseconds). Rows
// that global queries (ExpireDueKeys, Prune*, DeleteExpiredSessions) must not
// touch are kept at or after t0, or far in the future.
const t0 = int64(1_750_000_000_000)

// far is an expiry that no subtest ever reaches.
const far = t0 + 1_000_000_000

// ---------------------------------------------------------------------------
// Store constructors shared by store_test.go and migrate_test.go.

// openStore opens an unmigrated store on a fresh database of the engine
// (a temporary SQLite file, or a new PostgreSQL schema).
func openStore(t *testing.T, engine string) *db.Store {
	t.Helper()
	s, err := db.Open(context.Background(), engine, dbtest.URL(t, engine))
	if err != nil {
		t.Fatalf("open %s: %v", engine, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close %s: %v", engine, err)
		}
	})
	if s.Engine != engine {
		t.Fatalf("Engine = %q, want %q", s.Engine, engine)
	}
	return s
}

func newSQLiteStore(t *testing.T) *db.Store   { return openStore(t, db.SQLite) }
func newPostgresStore(t *testing.T) *db.Store { return openStore(t, db.Postgres) }

func migrated(t *testing.T, s *db.Store) *db.Store {
	t.Helper()
	if err := db.MigrateUp(context.Background(), s); err != nil {
		t.Fatalf("MigrateUp: %v", err)
	}
	return s
}

func TestStoreSQLite(t *testing.T) {
	runConformance(t, migrated(t, newSQLiteStore(t)))
}

func TestStorePostgres(t *testing.T) {
	runConformance(t, migrated(t, newPostgresStore(t)))
}

// ---------------------------------------------------------------------------
// Small helpers.

// rebind turns ? placeholders into $n for PostgreSQL.
func rebind(s *db.Store, query string) string {
	if s.Engine != db.Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func rawExec(t *testing.T, s *db.Store, query string, args ...any) {
	t.Helper()
	if _, err := s.DB.ExecContext(context.Background(), rebind(s, query), args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func rawInt(t *testing.T, s *db.Store, query string, args ...any) sql.NullInt64 {
	t.Helper()
	var v sql.NullInt64
	if err := s.DB.QueryRowContext(context.Background(), rebind(s, query), args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantRows(t *testing.T, what string, got int64, err error, want int64) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if got != want {
		t.Fatalf("%s affected %d rows, want %d", what, got, want)
	}
}

func wantNoRows(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("%s: err = %v, want sql.ErrNoRows", what, err)
	}
	if !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("%s: err = %v, want db.ErrNotFound", what, err)
	}
}

func i64(v int64) sql.NullInt64   { return sql.NullInt64{Int64: v, Valid: true} }
func str(v string) sql.NullString { return sql.NullString{String: v, Valid: true} }

var (
	nullInt = sql.NullInt64{}
	nullStr = sql.NullString{}
)

func insOrg(q db.Querier, id string) error {
	return q.InsertOrg(context.Background(), sqlitedb.InsertOrgParams{ID: id, Name: "Org " + id, CreatedAt: t0})
}

func mkOrg(t *testing.T, q db.Querier, id string) {
	t.Helper()
	ok(t, q.InsertOrg(context.Background(), sqlitedb.InsertOrgParams{ID: id, Name: "Org " + id, CreatedAt: t0}))
}

func mkUser(t *testing.T, q db.Querier, id string, operator bool) {
	t.Helper()
	ok(t, q.InsertUser(context.Background(), sqlitedb.InsertUserParams{ID: id, Email: id + "@example.com", Operator: operator, CreatedAt: t0}))
}

func mkMember(t *testing.T, q db.Querier, org, user, role string) {
	t.Helper()
	ok(t, q.UpsertMember(context.Background(), sqlitedb.UpsertMemberParams{OrgID: org, UserID: user, Role: role, CreatedAt: t0}))
}

func keyParams(org, id string) sqlitedb.InsertKeyParams {
	return sqlitedb.InsertKeyParams{
		ID:        id,
		OrgID:     org,
		KeyHash:   "sha256:" + id,
		Name:      "key " + id,
		Prefix:    "ind_live_",
		Last4:     id[len(id)-4:],
		Metadata:  `{"env":"test"}`,
		CreatedBy: "user_test",
		CreatedAt: t0,
	}
}

func mkKey(t *testing.T, q db.Querier, org, id string) sqlitedb.SaasApiKey {
	t.Helper()
	ctx := context.Background()
	ok(t, q.InsertKey(ctx, keyParams(org, id)))
	k, err := q.GetOrgKey(ctx, sqlitedb.GetOrgKeyParams{OrgID: org, ID: id})
	ok(t, err)
	return k
}

func getKey(t *testing.T, q db.Querier, id string) sqlitedb.SaasApiKey {
	t.Helper()
	k, err := q.GetKeyByID(context.Background(), id)
	if err != nil {
		t.Fatalf("GetKeyByID(%s): %v", id, err)
	}
	return k
}

func setStatus(t *testing.T, s *db.Store, id, status string) {
	t.Helper()
	rawExec(t, s, "UPDATE saas_api_keys SET status = ? WHERE id = ?", status, id)
}

// updateFrom builds UpdateKey parameters that keep every field of k.
func updateFrom(k sqlitedb.SaasApiKey) sqlitedb.UpdateKeyParams {
	return sqlitedb.UpdateKeyParams{
		Name:                  k.Name,
		Enabled:               k.Enabled,
		Metadata:              k.Metadata,
		RateLimit:             k.RateLimit,
		RateWindowSeconds:     k.RateWindowSeconds,
		Remaining:             k.Remaining,
		RefillAmount:          k.RefillAmount,
		RefillIntervalSeconds: k.RefillIntervalSeconds,
		LastRefillAt:          k.LastRefillAt,
		QuotaEpoch:            k.QuotaEpoch,
		ExpiresAt:             k.ExpiresAt,
		UpdatedAt:             k.UpdatedAt,
		OrgID:                 k.OrgID,
		ID:                    k.ID,
	}
}

func keyIDs(keys []sqlitedb.SaasApiKey) []string {
	out := []string{}
	for _, k := range keys {
		out = append(out, k.ID)
	}
	return out
}

func eqStrings(a, b []string) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

// ---------------------------------------------------------------------------
// The conformance suite.

// runConformance checks every query of the store against the behaviour the
// rest of Indigo relies on. The subtests share one database and run in
// order; each works on its own orgs and keys.
func runConformance(t *testing.T, s *db.Store) {
	t.Run("Orgs", func(t *testing.T) { testOrgs(t, s) })
	t.Run("UsersAndMembers", func(t *testing.T) { testUsersAndMembers(t, s) })
	t.Run("LoginTokens", func(t *testing.T) { testLoginTokens(t, s) })
	t.Run("Sessions", func(t *testing.T) { testSessions(t, s) })
	t.Run("KeyInsertAndLookup", func(t *testing.T) { testKeyInsertAndLookup(t, s) })
	t.Run("ListOrgKeys", func(t *testing.T) { testListOrgKeys(t, s) })
	t.Run("AdminListKeys", func(t *testing.T) { testAdminListKeys(t, s) })
	t.Run("UpdateKey", func(t *testing.T) { testUpdateKey(t, s) })
	t.Run("Scopes", func(t *testing.T) { testScopes(t, s) })
	t.Run("MarkKeyExpiring", func(t *testing.T) { testMarkKeyExpiring(t, s) })
	t.Run("RevokeKey", func(t *testing.T) { testRevokeKey(t, s) })
	t.Run("ExpireDueKeys", func(t *testing.T) { testExpireDueKeys(t, s) })
	t.Run("TouchKeyLastUsed", func(t *testing.T) { testTouchKeyLastUsed(t, s) })
	t.Run("SaveKeyQuota", func(t *testing.T) { testSaveKeyQuota(t, s) })
	t.Run("ChangeFeed", func(t *testing.T) { testChangeFeed(t, s) })
	t.Run("Listen", func(t *testing.T) { testListen(t, s) })
	t.Run("RequestLogs", func(t *testing.T) { testRequestLogs(t, s) })
	t.Run("PruneRequestLogs", func(t *testing.T) { testPruneRequestLogs(t, s) })
	t.Run("WriteRequestLogs", func(t *testing.T) { testWriteRequestLogs(t, s) })
	t.Run("WriteRequestLogBatch", func(t *testing.T) { testWriteRequestLogBatch(t, s) })
	t.Run("KeyStats", func(t *testing.T) { testKeyStats(t, s) })
	t.Run("Audit", func(t *testing.T) { testAudit(t, s) })
	t.Run("Tx", func(t *testing.T) { testTx(t, s) })
	t.Run("ConcurrentReadModifyWrite", func(t *testing.T) { testConcurrentReadModifyWrite(t, s) })
}

func testOrgs(t *testing.T, s *db.Store) {
	ctx := context.Background()
	q := s.Q()
	ok(t, q.InsertOrg(ctx, sqlitedb.InsertOrgParams{ID: "org_lo_b", Name: "B", CreatedAt: t0 + 1}))
	ok(t, q.InsertOrg(ctx, sqlitedb.InsertOrgParams{ID: "org_lo_a", Name: "A", CreatedAt: t0 + 2}))
	ok(t, q.InsertOrg(ctx, sqlitedb.InsertOrgParams{ID: "org_lo_c", Name: "C", CreatedAt: t0 + 1}))

	got, err := q.GetOrg(ctx, "org_lo_a")
	ok(t, err)
	if want := (sqlitedb.SaasOrg{ID: "org_lo_a", Name: "A", CreatedAt: t0 + 2}); got != want {
		t.Fatalf("GetOrg = %+v, want %+v", got, want)
	}
	_, err = q.GetOrg(ctx, "org_missing")
	wantNoRows(t, "GetOrg(missing)", err)

	if err := q.InsertOrg(ctx, sqlitedb.InsertOrgParams{ID: "org_lo_a", Name: "dup", CreatedAt: t0}); err == nil {
		t.Fatal("InsertOrg with a duplicate id succeeded")
	}
	if got, _ := q.GetOrg(ctx, "org_lo_a"); got.Name != "A" {
		t.Fatalf("duplicate insert changed the org: %+v", got)
	}

	orgs, err := q.ListOrgs(ctx)
	ok(t, err)
	var ids []string
	for _, o := range orgs {
		if strings.HasPrefix(o.ID, "org_lo_") {
			ids = append(ids, o.ID)
		}
	}
	// ORDER BY created_at, id.
	if want := []string{"org_lo_b", "org_lo_c", "org_lo_a"}; !eqStrings(ids, want) {
		t.Fatalf("ListOrgs order = %v, want %v", ids, want)
	}
}

func testUsersAndMembers(t *testing.T, s *db.Store) {
	ctx := context.Background()
	q := s.Q()
	mkOrg(t, q, "org_um")
	ok(t, q.InsertUser(ctx, sqlitedb.InsertUserParams{ID: "usr_um", Email: "Um@Example.com", Operator: false, CreatedAt: t0 + 5}))

	u, err := q.GetUserByEmail(ctx, "Um@Example.com")
	ok(t, err)
	if want := (sqlitedb.SaasUser{ID: "usr_um", Email: "Um@Example.com", Operator: false, CreatedAt: t0 + 5}); u != want {
		t.Fatalf("GetUserByEmail = %+v, want %+v", u, want)
	}
	_, err = q.GetUserByEmail(ctx, "nobody@example.com")
	wantNoRows(t, "GetUserByEmail(missing)", err)

	if err := q.InsertUser(ctx, sqlitedb.InsertUserParams{ID: "usr_um2", Email: "Um@Example.com", CreatedAt: t0}); err == nil {
		t.Fatal("InsertUser with a duplicate email succeeded")
	}

	for _, op := range []bool{true, false, true} {
		ok(t, q.SetUserOperator(ctx, sqlitedb.SetUserOperatorParams{Operator: op, ID: "usr_um"}))
		u, err := q.GetUserByEmail(ctx, "Um@Example.com")
		ok(t, err)
		if u.Operator != op {
			t.Fatalf("after SetUserOperator(%v) Operator = %v", op, u.Operator)
		}
	}

	// Membership: insert, then upserts change only the role.
	ok(t, q.InsertSession(ctx, sqlitedb.InsertSessionParams{
		TokenHash: "sess_um", OrgID: "org_um", UserID: "usr_um", CsrfToken: "csrf", ExpiresAt: far, CreatedAt: t0,
	}))
	steps := []struct {
		role      string
		createdAt int64
	}{
		{"member", t0 + 10},
		{"admin", t0 + 20},
		{"owner", t0 + 30},
		{"member", t0 + 40},
	}
	for _, st := range steps {
		ok(t, q.UpsertMember(ctx, sqlitedb.UpsertMemberParams{OrgID: "org_um", UserID: "usr_um", Role: st.role, CreatedAt: st.createdAt}))
		sess, err := q.GetSession(ctx, sqlitedb.GetSessionParams{TokenHash: "sess_um", Now: t0})
		ok(t, err)
		if sess.Role != st.role {
			t.Fatalf("after UpsertMember(%s) session role = %q", st.role, sess.Role)
		}
		if n := rawInt(t, s, "SELECT COUNT(*) FROM saas_members WHERE org_id = ? AND user_id = ?", "org_um", "usr_um"); n.Int64 != 1 {
			t.Fatalf("%d membership rows, want 1", n.Int64)
		}
		if c := rawInt(t, s, "SELECT created_at FROM saas_members WHERE org_id = ? AND user_id = ?", "org_um", "usr_um"); c.Int64 != t0+10 {
			t.Fatalf("upsert changed created_at to %d, want %d", c.Int64, t0+10)
		}
	}

	bad := []struct {
		name string
		p    sqlitedb.UpsertMemberParams
	}{
		{"unknown role", sqlitedb.UpsertMemberParams{OrgID: "org_um", UserID: "usr_um", Role: "superuser", CreatedAt: t0}},
		{"missing org", sqlitedb.UpsertMemberParams{OrgID: "org_nope", UserID: "usr_um", Role: "member", CreatedAt: t0}},
		{"missing user", sqlitedb.UpsertMemberParams{OrgID: "org_um", UserID: "usr_nope", Role: "member", CreatedAt: t0}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if err := q.UpsertMember(ctx, tc.p); err == nil {
				t.Fatalf("UpsertMember(%+v) succeeded, want a constraint error", tc.p)
			}
		})
	}
	sess, err := q.GetSession(ctx, sqlitedb.GetSessionParams{TokenHash: "sess_um", Now: t0})
	ok(t, err)
	if sess.Role != "member" {
		t.Fatalf("a rejected upsert changed the role to %q", sess.Role)
	}
}

func testLoginTokens(t *testing.T, s *db.Store) {
	ctx := context.Background()
	q := s.Q()
	mkOrg(t, q, "org_lt")
	mkUser(t, q, "usr_lt", false)
	now := t0 + 1000
	for _, tok := range []struct {
		hash    string
		expires int64
	}{
		{"lt_valid", now + 60_000},
		{"lt_expired", now - 1},
		{"lt_boundary", now}, // expires_at > now is required
	} {
		ok(t, q.InsertLoginToken(ctx, sqlitedb.InsertLoginTokenParams{
			TokenHash: tok.hash, OrgID: "org_lt", UserID: "usr_lt", ExpiresAt: tok.expires, CreatedAt: t0,
		}))
	}

	cases := []struct {
		name     string
		hash     string
		now      int64
		wantOK   bool
		wantUsed bool // used_at afterwards
	}{
		{"valid token", "lt_valid", now, true, true},
		{"second use", "lt_valid", now + 1, false, true},
		{"expired", "lt_expired", now, false, false},
		{"expires exactly now", "lt_boundary", now, false, false},
		{"unknown", "lt_unknown", now, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			row, err := q.ConsumeLoginToken(ctx, sqlitedb.ConsumeLoginTokenParams{Now: i64(tc.now), TokenHash: tc.hash})
			if tc.wantOK {
				ok(t, err)
				if want := (sqlitedb.ConsumeLoginTokenRow{OrgID: "org_lt", UserID: "usr_lt"}); row != want {
					t.Fatalf("ConsumeLoginToken = %+v, want %+v", row, want)
				}
			} else {
				wantNoRows(t, "ConsumeLoginToken", err)
			}
			if tc.hash == "lt_unknown" {
				return
			}
			used := rawInt(t, s, "SELECT used_at FROM saas_login_tokens WHERE token_hash = ?", tc.hash)
			if used.Valid != tc.wantUsed {
				t.Fatalf("used_at = %+v, want set=%v", used, tc.wantUsed)
			}
			if tc.wantUsed && used.Int64 != now {
				t.Fatalf("used_at = %d, want the first use %d", used.Int64, now)
			}
		})
	}
}

func testSessions(t *testing.T, s *db.Store) {
	ctx := context.Background()
	q := s.Q()
	mkOrg(t, q, "org_se")
	mkOrg(t, q, "org_se2")
	mkUser(t, q, "usr_se_op", true)
	mkUser(t, q, "usr_se_plain", false)
	mkMember(t, q, "org_se", "usr_se_op", "owner")
	mkMember(t, q, "org_se", "usr_se_plain", "member")
	// usr_se_plain is not a member of org_se2.

	now := t0 + 5000
	sessions := []sqlitedb.InsertSessionParams{
		{TokenHash: "se_op", OrgID: "org_se", UserID: "usr_se_op", CsrfToken: "c1", ExpiresAt: now + 1000, CreatedAt: t0},
		{TokenHash: "se_plain", OrgID: "org_se", UserID: "usr_se_plain", CsrfToken: "c2", ExpiresAt: now + 1000, CreatedAt: t0},
		{TokenHash: "se_expired", OrgID: "org_se", UserID: "usr_se_op", CsrfToken: "c3", ExpiresAt: now - 1, CreatedAt: t0},
		{TokenHash: "se_boundary", OrgID: "org_se", UserID: "usr_se_op", CsrfToken: "c4", ExpiresAt: now, CreatedAt: t0},
		{TokenHash: "se_nomember", OrgID: "org_se2", UserID: "usr_se_plain", CsrfToken: "c5", ExpiresAt: now + 1000, CreatedAt: t0},
	}
	for _, p := range sessions {
		ok(t, q.InsertSession(ctx, p))
	}

	cases := []struct {
		name string
		hash string
		now  int64
		want *sqlitedb.GetSessionRow
	}{
		{"operator owner", "se_op", now, &sqlitedb.GetSessionRow{
			OrgID: "org_se", UserID: "usr_se_op", CsrfToken: "c1", ExpiresAt: now + 1000,
			Email: "usr_se_op@example.com", Operator: true, Role: "owner",
		}},
		{"plain member", "se_plain", now, &sqlitedb.GetSessionRow{
			OrgID: "org_se", UserID: "usr_se_plain", CsrfToken: "c2", ExpiresAt: now + 1000,
			Email: "usr_se_plain@example.com", Operator: false, Role: "member",
		}},
		{"expired", "se_expired", now, nil},
		{"expires exactly now", "se_boundary", now, nil},
		{"valid session later expired", "se_op", now + 1000, nil},
		{"user no longer a member", "se_nomember", now, nil},
		{"unknown", "se_unknown", now, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := q.GetSession(ctx, sqlitedb.GetSessionParams{TokenHash: tc.hash, Now: tc.now})
			if tc.want == nil {
				wantNoRows(t, "GetSession", err)
				return
			}
			ok(t, err)
			if got != *tc.want {
				t.Fatalf("GetSession = %+v, want %+v", got, *tc.want)
			}
		})
	}

	// The session reflects the current role and operator flag.
	mkMember(t, q, "org_se", "usr_se_plain", "admin")
	ok(t, q.SetUserOperator(ctx, sqlitedb.SetUserOperatorParams{Operator: true, ID: "usr_se_plain"}))
	got, err := q.GetSession(ctx, sqlitedb.GetSessionParams{TokenHash: "se_plain", Now: now})
	ok(t, err)
	if got.Role != "admin" || !got.Operator {
		t.Fatalf("after role/operator change session = %+v", got)
	}

	ok(t, q.DeleteSession(ctx, "se_plain"))
	_, err = q.GetSession(ctx, sqlitedb.GetSessionParams{TokenHash: "se_plain", Now: now})
	wantNoRows(t, "GetSession after DeleteSession", err)
	ok(t, q.DeleteSession(ctx, "se_plain")) // deleting twice is not an error

	// Only se_expired and se_boundary have expires_at <= now; every other
	// session in the suite expires later.
	n, err := q.DeleteExpiredSessions(ctx, now)
	wantRows(t, "DeleteExpiredSessions", n, err, 2)
	if c := rawInt(t, s, "SELECT COUNT(*) FROM saas_sessions WHERE org_id = ?", "org_se"); c.Int64 != 1 {
		t.Fatalf("%d org_se sessions left, want 1 (se_op)", c.Int64)
	}
	if _, err := q.GetSession(ctx, sqlitedb.GetSessionParams{TokenHash: "se_op", Now: now}); err != nil {
		t.Fatalf("live session deleted: %v", err)
	}
}

func testKeyInsertAndLookup(t *testing.T, s *db.Store) {
	ctx := context.Background()
	q := s.Q()
	mkOrg(t, q, "org_k1")
	mkOrg(t, q, "org_k2")

	p := sqlitedb.InsertKeyParams{
		ID: "key_k1_full", OrgID: "org_k1", KeyHash: "sha256:full", Name: "Full", Prefix: "ind_live_", Last4: "wxyz",
		Scopes:    str(`["keys:read"]`),
		Metadata:  `{"team":"a"}`,
		RateLimit: i64(100), RateWindowSeconds: i64(60), Remaining: i64(1000),
		RefillAmount: i64(500), RefillIntervalSeconds: i64(86400), LastRefillAt: i64(t0 - 10),
		ExpiresAt: i64(far), CreatedBy: "usr_creator", CreatedAt: t0 + 7,
	}
	ok(t, q.InsertKey(ctx, p))
	minimal := keyParams("org_k1", "key_k1_min0")
	ok(t, q.InsertKey(ctx, minimal))

	wantFull := sqlitedb.SaasApiKey{
		ID: p.ID, OrgID: p.OrgID, KeyHash: p.KeyHash, Name: p.Name, Prefix: p.Prefix, Last4: p.Last4,
		Scopes: p.Scopes, Status: "active", Enabled: true, Metadata: p.Metadata,
		RateLimit: p.RateLimit, RateWindowSeconds: p.RateWindowSeconds, Remaining: p.Remaining,
		RefillAmount: p.RefillAmount, RefillIntervalSeconds: p.RefillIntervalSeconds, LastRefillAt: p.LastRefillAt,
		ExpiresAt: p.ExpiresAt, CreatedBy: p.CreatedBy, CreatedAt: p.CreatedAt, UpdatedAt: p.CreatedAt,
	}
	wantMin := sqlitedb.SaasApiKey{
		ID: minimal.ID, OrgID: minimal.OrgID, KeyHash: minimal.KeyHash, Name: minimal.Name, Prefix: minimal.Prefix,
		Last4: minimal.Last4, Status: "active", Enabled: true, Metadata: minimal.Metadata,
		CreatedBy: minimal.CreatedBy, CreatedAt: t0, UpdatedAt: t0,
	}

	t.Run("GetKeyByHash", func(t *testing.T) {
		for _, want := range []sqlitedb.SaasApiKey{wantFull, wantMin} {
			got, err := q.GetKeyByHash(ctx, want.KeyHash)
			ok(t, err)
			if got != want {
				t.Fatalf("GetKeyByHash(%s) =\n %+v\nwant\n %+v", want.KeyHash, got, want)
			}
		}
		_, err := q.GetKeyByHash(ctx, "sha256:unknown")
		wantNoRows(t, "GetKeyByHash(unknown)", err)
	})

	t.Run("GetKeyByID", func(t *testing.T) {
		got, err := q.GetKeyByID(ctx, wantFull.ID)
		ok(t, err)
		if got != wantFull {
			t.Fatalf("GetKeyByID = %+v, want %+v", got, wantFull)
		}
		_, err = q.GetKeyByID(ctx, "key_unknown")
		wantNoRows(t, "GetKeyByID(unknown)", err)
	})

	t.Run("GetOrgKey", func(t *testing.T) {
		cases := []struct {
			name  string
			org   string
			id    string
			found bool
		}{
			{"own org", "org_k1", "key_k1_full", true},
			{"another org's id", "org_k2", "key_k1_full", false},
			{"unknown org", "org_zz", "key_k1_full", false},
			{"unknown id", "org_k1", "key_k1_none", false},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, err := q.GetOrgKey(ctx, sqlitedb.GetOrgKeyParams{OrgID: tc.org, ID: tc.id})
				if !tc.found {
					wantNoRows(t, "GetOrgKey", err)
					return
				}
				ok(t, err)
				if got != wantFull {
					t.Fatalf("GetOrgKey = %+v, want %+v", got, wantFull)
				}
				// Outside a transaction the FOR UPDATE variant reads the same row.
				got2, err := q.GetOrgKeyForUpdate(ctx, sqlitedb.GetOrgKeyForUpdateParams{OrgID: tc.org, ID: tc.id})
				ok(t, err)
				if got2 != wantFull {
					t.Fatalf("GetOrgKeyForUpdate = %+v, want %+v", got2, wantFull)
				}
			})
		}
		_, err := q.GetOrgKeyForUpdate(ctx, sqlitedb.GetOrgKeyForUpdateParams{OrgID: "org_k2", ID: "key_k1_full"})
		wantNoRows(t, "GetOrgKeyForUpdate(another org)", err)
	})

	t.Run("KeyHashUnique", func(t *testing.T) {
		dup := keyParams("org_k2", "key_k2_dup0")
		dup.KeyHash = p.KeyHash
		err := q.InsertKey(ctx, dup)
		if err == nil {
			t.Fatal("InsertKey with a duplicate key_hash succeeded")
		}
		if !strings.Contains(err.Error(), "key_hash") {
			t.Fatalf("duplicate key_hash error does not name the column: %v", err)
		}
		_, err = q.GetKeyByID(ctx, dup.ID)
		wantNoRows(t, "GetKeyByID(rejected key)", err)
		got, err := q.GetKeyByHash(ctx, p.KeyHash)
		ok(t, err)
		if got != wantFull {
			t.Fatalf("the original key changed: %+v", got)
		}
	})

	t.Run("IDUnique", func(t *testing.T) {
		dup := keyParams("org_k1", "key_k1_full")
		dup.KeyHash = "sha256:other"
		if err := q.InsertKey(ctx, dup); err == nil {
			t.Fatal("InsertKey with a duplicate id succeeded")
		}
	})

	t.Run("UnknownOrg", func(t *testing.T) {
		if err := q.InsertKey(ctx, keyParams("org_nope", "key_nope_0000")); err == nil {
			t.Fatal("InsertKey for an unknown org succeeded (foreign keys off?)")
		}
	})

	t.Run("CountOrgLiveKeys", func(t *testing.T) {
		for _, tc := range []struct {
			org  string
			want int64
		}{{"org_k1", 2}, {"org_k2", 0}, {"org_zz", 0}} {
			n, err := q.CountOrgLiveKeys(ctx, tc.org)
			ok(t, err)
			if n != tc.want {
				t.Fatalf("CountOrgLiveKeys(%s) = %d, want %d", tc.org, n, tc.want)
			}
		}
		mkKey(t, q, "org_k1", "key_k1_exp0")
		setStatus(t, s, "key_k1_exp0", "expiring")
		mkKey(t, q, "org_k1", "key_k1_dead")
		setStatus(t, s, "key_k1_dead", "expired")
		mkKey(t, q, "org_k1", "key_k1_revk")
		setStatus(t, s, "key_k1_revk", "revoked")
		n, err := q.CountOrgLiveKeys(ctx, "org_k1")
		ok(t, err)
		if n != 3 {
			t.Fatalf("CountOrgLiveKeys counts %d, want 3 (active + expiring only)", n)
		}
	})
}

func testListOrgKeys(t *testing.T, s *db.Store) {
	ctx := context.Background()
	q := s.Q()
	mkOrg(t, q, "org_la")
	mkOrg(t, q, "org_lb")
	// ids interleave across the two orgs.
	for _, id := range []string{"key_l_03", "key_l_01", "key_l_05", "key_l_02", "key_l_04"} {
		mkKey(t, q, "org_la", id)
	}
	for _, id := range []string{"key_l_025", "key_l_045"} {
		mkKey(t, q, "org_lb", id)
	}

	cases := []struct {
		name   string
		org    string
		cursor string
		lim    int64
		want   []string
	}{
		{"all", "org_la", "", 100, []string{"key_l_05", "key_l_04", "key_l_03", "key_l_02", "key_l_01"}},
		{"limit", "org_la", "", 2, []string{"key_l_05", "key_l_04"}},
		{"cursor excludes itself", "org_la", "key_l_03", 100, []string{"key_l_02", "key_l_01"}},
		{"cursor and limit", "org_la", "key_l_05", 2, []string{"key_l_04", "key_l_03"}},
		{"cursor of another org's id", "org_la", "key_l_045", 100, []string{"key_l_04", "key_l_03", "key_l_02", "key_l_01"}},
		{"cursor above all", "org_la", "key_m", 100, []string{"key_l_05", "key_l_04", "key_l_03", "key_l_02", "key_l_01"}},
		{"cursor at the end", "org_la", "key_l_01", 100, nil},
		{"other org", "org_lb", "", 100, []string{"key_l_045", "key_l_025"}},
		{"unknown org", "org_lz", "", 100, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := q.ListOrgKeys(ctx, sqlitedb.ListOrgKeysParams{OrgID: tc.org, Cursor: tc.cursor, Lim: tc.lim})
			ok(t, err)
			if ids := keyIDs(got); !eqStrings(ids, tc.want) {
				t.Fatalf("ListOrgKeys = %v, want %v", ids, tc.want)
			}
			for _, k := range got {
				if k.OrgID != tc.org {
					t.Fatalf("ListOrgKeys(%s) returned key %s of %s", tc.org, k.ID, k.OrgID)
				}
			}
		})
	}

	t.Run("walk pages", func(t *testing.T) {
		var all []string
		cursor := ""
		for page := 0; ; page++ {
			if page > 10 {
				t.Fatal("pagination does not end")
			}
			got, err := q.ListOrgKeys(ctx, sqlitedb.ListOrgKeysParams{OrgID: "org_la", Cursor: cursor, Lim: 2})
			ok(t, err)
			if len(got) == 0 {
				break
			}
			all = append(all, keyIDs(got)...)
			cursor = got[len(got)-1].ID
		}
		if want := []string{"key_l_05", "key_l_04", "key_l_03", "key_l_02", "key_l_01"}; !eqStrings(all, want) {
			t.Fatalf("pages = %v, want %v", all, want)
		}
	})
}

func testAdminListKeys(t *testing.T, s *db.Store) {
	ctx := context.Background()
	q := s.Q()
	mkOrg(t, q, "org_aka")
	mkOrg(t, q, "org_akb")
	mkKey(t, q, "org_aka", "key_ak_1")
	mkKey(t, q, "org_aka", "key_ak_2")
	mkKey(t, q, "org_akb", "key_ak_3")
	mkKey(t, q, "org_akb", "key_ak_4")
	setStatus(t, s, "key_ak_2", "revoked")
	setStatus(t, s, "key_ak_4", "revoked")

	cases := []struct {
		name string
		p    sqlitedb.AdminListKeysParams
		want []string
	}{
		{"org", sqlitedb.AdminListKeysParams{OrgID: "org_aka", Lim: 100}, []string{"key_ak_2", "key_ak_1"}},
		{"org and status", sqlitedb.AdminListKeysParams{OrgID: "org_akb", Status: "revoked", Lim: 100}, []string{"key_ak_4"}},
		{"key id", sqlitedb.AdminListKeysParams{KeyID: "key_ak_3", Lim: 100}, []string{"key_ak_3"}},
		{"key id of another org", sqlitedb.AdminListKeysParams{OrgID: "org_aka", KeyID: "key_ak_3", Lim: 100}, nil},
		{"cursor", sqlitedb.AdminListKeysParams{OrgID: "org_akb", Cursor: "key_ak_4", Lim: 100}, []string{"key_ak_3"}},
		{"limit", sqlitedb.AdminListKeysParams{OrgID: "org_akb", Lim: 1}, []string{"key_ak_4"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := q.AdminListKeys(ctx, tc.p)
			ok(t, err)
			if ids := keyIDs(got); !eqStrings(ids, tc.want) {
				t.Fatalf("AdminListKeys(%+v) = %v, want %v", tc.p, ids, tc.want)
			}
		})
	}
	// Without filters the list spans orgs: the revoked keys of both appear.
	got, err := q.AdminListKeys(ctx, sqlitedb.AdminListKeysParams{Status: "revoked", Lim: 1000})
	ok(t, err)
	seen := map[string]bool{}
	for _, k := range got {
		seen[k.ID] = true
		if k.Status != "revoked" {
			t.Fatalf("status filter returned %s with status %s", k.ID, k.Status)
		}
	}
	if !seen["key_ak_2"] || !seen["key_ak_4"] {
		t.Fatalf("AdminListKeys(status=revoked) = %v, want both orgs' revoked keys", keyIDs(got))
	}
}

func testUpdateKey(t *testing.T, s *db.Store) {
	ctx := context.Background()
	q := s.Q()
	mkOrg(t, q, "org_uk")
	mkOrg(t, q, "org_uk2")
	k := mkKey(t, q, "org_uk", "key_uk_0001")

	p := sqlitedb.UpdateKeyParams{
		Name: "renamed", Enabled: false, Metadata: `{"a":1}`,
		RateLimit: i64(10), RateWindowSeconds: i64(1), Remaining: i64(99),
		RefillAmount: i64(50), RefillIntervalSeconds: i64(3600), LastRefillAt: i64(t0 + 1),
		QuotaEpoch: 3, ExpiresAt: i64(far), UpdatedAt: t0 + 100, OrgID: "org_uk", ID: k.ID,
	}
	n, err := q.UpdateKey(ctx, p)
	wantRows(t, "UpdateKey", n, err, 1)
	want := k
	want.Name, want.Enabled, want.Metadata = p.Name, p.Enabled, p.Metadata
	want.RateLimit, want.RateWindowSeconds, want.Remaining = p.RateLimit, p.RateWindowSeconds, p.Remaining
	want.RefillAmount, want.RefillIntervalSeconds, want.LastRefillAt = p.RefillAmount, p.RefillIntervalSeconds, p.LastRefillAt
	want.QuotaEpoch = p.QuotaEpoch
	want.ExpiresAt, want.UpdatedAt = p.ExpiresAt, p.UpdatedAt
	if got := getKey(t, q, k.ID); got != want {
		t.Fatalf("after UpdateKey:\n %+v\nwant\n %+v", got, want)
	}

	// Another org's id: nothing changes.
	other := p
	other.OrgID, other.Name, other.UpdatedAt = "org_uk2", "hijacked", t0+200
	n, err = q.UpdateKey(ctx, other)
	wantRows(t, "UpdateKey(another org)", n, err, 0)
	if got := getKey(t, q, k.ID); got != want {
		t.Fatalf("UpdateKey through another org changed the key: %+v", got)
	}

	// NULLs clear the limits.
	p2 := sqlitedb.UpdateKeyParams{Name: "cleared", Enabled: true, Metadata: "{}", UpdatedAt: t0 + 300, OrgID: "org_uk", ID: k.ID}
	n, err = q.UpdateKey(ctx, p2)
	wantRows(t, "UpdateKey(nulls)", n, err, 1)
	got := getKey(t, q, k.ID)
	for name, v := range map[string]sql.NullInt64{
		"rate_limit": got.RateLimit, "rate_window_seconds": got.RateWindowSeconds, "remaining": got.Remaining,
		"refill_amount": got.RefillAmount, "refill_interval_seconds": got.RefillIntervalSeconds,
		"last_refill_at": got.LastRefillAt, "expires_at": got.ExpiresAt,
	} {
		if v.Valid {
			t.Errorf("%s = %d, want NULL", name, v.Int64)
		}
	}
	if got.Name != "cleared" || !got.Enabled || got.UpdatedAt != t0+300 || got.Status != "active" || got.KeyHash != k.KeyHash {
		t.Fatalf("after UpdateKey(nulls) = %+v", got)
	}

	n, err = q.UpdateKey(ctx, sqlitedb.UpdateKeyParams{Name: "x", Metadata: "{}", UpdatedAt: t0, OrgID: "org_uk", ID: "key_uk_none"})
	wantRows(t, "UpdateKey(unknown id)", n, err, 0)
}

func testScopes(t *testing.T, s *db.Store) {
	ctx := context.Background()
	q := s.Q()
	mkOrg(t, q, "org_sc")
	mkOrg(t, q, "org_sc2")

	cases := []struct {
		name   string
		scopes sql.NullString
	}{
		{"NULL is a superkey", nullStr},
		{"empty list", str("[]")},
		{"some scopes", str(`["keys:read","logs:read"]`)},
	}
	for i, tc := range cases {
		t.Run("insert "+tc.name, func(t *testing.T) {
			p := keyParams("org_sc", fmt.Sprintf("key_sc_i%03d", i))
			p.Scopes = tc.scopes
			ok(t, q.InsertKey(ctx, p))
			if got := getKey(t, q, p.ID).Scopes; got != tc.scopes {
				t.Fatalf("scopes = %+v, want %+v", got, tc.scopes)
			}
		})
	}

	// One key walks through every transition.
	k := mkKey(t, q, "org_sc", "key_sc_walk")
	steps := []sql.NullString{str("[]"), nullStr, str(`["a"]`), str("[]"), nullStr}
	for i, sc := range steps {
		upd := t0 + int64(i+1)
		n, err := q.UpdateKeyScopes(ctx, sqlitedb.UpdateKeyScopesParams{Scopes: sc, UpdatedAt: upd, OrgID: "org_sc", ID: k.ID})
		wantRows(t, "UpdateKeyScopes", n, err, 1)
		got := getKey(t, q, k.ID)
		if got.Scopes != sc {
			t.Fatalf("step %d: scopes = %+v, want %+v", i, got.Scopes, sc)
		}
		if got.UpdatedAt != upd {
			t.Fatalf("step %d: updated_at = %d, want %d", i, got.UpdatedAt, upd)
		}
	}
	// A NULL and an empty string are different things.
	if c := rawInt(t, s, "SELECT COUNT(*) FROM saas_api_keys WHERE org_id = ? AND scopes IS NULL", "org_sc"); c.Int64 != 2 {
		t.Fatalf("%d keys with NULL scopes, want 2", c.Int64)
	}

	n, err := q.UpdateKeyScopes(ctx, sqlitedb.UpdateKeyScopesParams{Scopes: str("[]"), UpdatedAt: t0 + 99, OrgID: "org_sc2", ID: k.ID})
	wantRows(t, "UpdateKeyScopes(another org)", n, err, 0)
	if got := getKey(t, q, k.ID); got.Scopes.Valid {
		t.Fatalf("UpdateKeyScopes through another org changed scopes to %+v", got.Scopes)
	}
}

func testMarkKeyExpiring(t *testing.T, s *db.Store) {
	ctx := context.Background()
	q := s.Q()
	mkOrg(t, q, "org_mx")
	mkOrg(t, q, "org_mx2")

	cases := []struct {
		status string
		org    string
		want   int64
	}{
		{"active", "org_mx", 1},
		{"expiring", "org_mx", 0},
		{"expired", "org_mx", 0},
		{"revoked", "org_mx", 0},
		{"active", "org_mx2", 0}, // another org's id
	}
	for i, tc := range cases {
		t.Run(tc.status+"/"+tc.org, func(t *testing.T) {
			id := fmt.Sprintf("key_mx_%04d", i)
			mkKey(t, q, "org_mx", id)
			if tc.status != "active" {
				setStatus(t, s, id, tc.status)
			}
			before := getKey(t, q, id)
			n, err := q.MarkKeyExpiring(ctx, sqlitedb.MarkKeyExpiringParams{
				ExpiresAt: i64(far), RolledTo: str("key_mx_next"), UpdatedAt: t0 + 50, OrgID: tc.org, ID: id,
			})
			wantRows(t, "MarkKeyExpiring", n, err, tc.want)
			got := getKey(t, q, id)
			if tc.want == 0 {
				if got != before {
					t.Fatalf("MarkKeyExpiring with 0 rows changed the key:\n %+v\nwas\n %+v", got, before)
				}
				return
			}
			want := before
			want.Status, want.ExpiresAt, want.RolledTo, want.UpdatedAt = "expiring", i64(far), str("key_mx_next"), t0+50
			if got != want {
				t.Fatalf("after MarkKeyExpiring:\n %+v\nwant\n %+v", got, want)
			}
			// A second roll of the same key is refused.
			n, err = q.MarkKeyExpiring(ctx, sqlitedb.MarkKeyExpiringParams{
				ExpiresAt: i64(far + 1), RolledTo: str("key_mx_other"), UpdatedAt: t0 + 60, OrgID: tc.org, ID: id,
			})
			wantRows(t, "MarkKeyExpiring(again)", n, err, 0)
			if again := getKey(t, q, id); again != want {
				t.Fatalf("second MarkKeyExpiring changed the key: %+v", again)
			}
		})
	}
}

func testRevokeKey(t *testing.T, s *db.Store) {
	ctx := context.Background()
	q := s.Q()
	mkOrg(t, q, "org_rv")
	mkOrg(t, q, "org_rv2")

	cases := []struct {
		status string
		want   int64
	}{
		{"active", 1},
		{"expiring", 1},
		{"expired", 1},
		{"revoked", 0},
	}
	for i, tc := range cases {
		t.Run(tc.status, func(t *testing.T) {
			id := fmt.Sprintf("key_rv_%04d", i)
			mkKey(t, q, "org_rv", id)
			if tc.status != "active" {
				setStatus(t, s, id, tc.status)
			}
			// Another org cannot revoke it.
			n, err := q.RevokeKey(ctx, sqlitedb.RevokeKeyParams{RevokedAt: i64(t0 + 5), OrgID: "org_rv2", ID: id})
			wantRows(t, "RevokeKey(another org)", n, err, 0)

			before := getKey(t, q, id)
			n, err = q.RevokeKey(ctx, sqlitedb.RevokeKeyParams{RevokedAt: i64(t0 + 10), OrgID: "org_rv", ID: id})
			wantRows(t, "RevokeKey", n, err, tc.want)
			got := getKey(t, q, id)
			if tc.want == 0 {
				if got != before {
					t.Fatalf("RevokeKey with 0 rows changed the key: %+v", got)
				}
				return
			}
			want := before
			want.Status, want.RevokedAt, want.UpdatedAt = "revoked", i64(t0+10), t0+10
			if got != want {
				t.Fatalf("after RevokeKey:\n %+v\nwant\n %+v", got, want)
			}
			// Only once: the second revoke neither counts nor moves revoked_at.
			n, err = q.RevokeKey(ctx, sqlitedb.RevokeKeyParams{RevokedAt: i64(t0 + 20), OrgID: "org_rv", ID: id})
			wantRows(t, "RevokeKey(again)", n, err, 0)
			if again := getKey(t, q, id); again != want {
				t.Fatalf("second RevokeKey changed the key: %+v", again)
			}
		})
	}
	n, err := q.CountOrgLiveKeys(ctx, "org_rv")
	ok(t, err)
	if n != 0 {
		t.Fatalf("CountOrgLiveKeys after revoking all = %d, want 0", n)
	}
}

func testExpireDueKeys(t *testing.T, s *db.Store) {
	ctx := context.Background()
	q := s.Q()
	mkOrg(t, q, "org_ex")
	now := t0

	keys := []struct {
		id         string
		status     string
		expiresAt  sql.NullInt64
		wantStatus string
	}{
		{"key_ex_actpast", "active", i64(now - 10), "expired"},
		{"key_ex_expgpast", "expiring", i64(now - 10), "expired"},
		{"key_ex_actnow", "active", i64(now), "expired"}, // expires_at <= now
		{"key_ex_actfut", "active", i64(now + 1), "active"},
		{"key_ex_expgfut", "expiring", i64(now + 1), "expiring"},
		{"key_ex_nullexp", "active", nullInt, "active"},
		{"key_ex_revpast", "revoked", i64(now - 10), "revoked"},
		{"key_ex_deadpast", "expired", i64(now - 10), "expired"},
	}
	for _, k := range keys {
		p := keyParams("org_ex", k.id)
		p.ExpiresAt = k.expiresAt
		ok(t, q.InsertKey(ctx, p))
		if k.status != "active" {
			setStatus(t, s, k.id, k.status)
		}
	}

	rows, err := q.ExpireDueKeys(ctx, now)
	ok(t, err)
	var got []string
	for _, r := range rows {
		if r.OrgID == "org_ex" {
			got = append(got, r.ID)
		} else if !strings.HasPrefix(r.OrgID, "org_") {
			t.Fatalf("ExpireDueKeys returned a row without an org: %+v", r)
		}
	}
	want := []string{"key_ex_actnow", "key_ex_actpast", "key_ex_expgpast"}
	slices.Sort(got)
	if !eqStrings(got, want) {
		t.Fatalf("ExpireDueKeys returned %v, want %v", got, want)
	}

	for _, k := range keys {
		t.Run(k.id, func(t *testing.T) {
			got := getKey(t, q, k.id)
			if got.Status != k.wantStatus {
				t.Fatalf("status = %q, want %q", got.Status, k.wantStatus)
			}
			moved := k.status != k.wantStatus
			if moved && got.UpdatedAt != now {
				t.Fatalf("updated_at = %d, want %d", got.UpdatedAt, now)
			}
			if !moved && got.UpdatedAt != t0 {
				t.Fatalf("an untouched key's updated_at moved to %d", got.UpdatedAt)
			}
		})
	}

	rows, err = q.ExpireDueKeys(ctx, now)
	ok(t, err)
	for _, r := range rows {
		if r.OrgID == "org_ex" {
			t.Fatalf("second ExpireDueKeys returned %+v again", r)
		}
	}
	// Time moves on: the future keys fall due.
	rows, err = q.ExpireDueKeys(ctx, now+1)
	ok(t, err)
	got = nil
	for _, r := range rows {
		if r.OrgID == "org_ex" {
			got = append(got, r.ID)
		}
	}
	slices.Sort(got)
	if want := []string{"key_ex_actfut", "key_ex_expgfut"}; !eqStrings(got, want) {
		t.Fatalf("ExpireDueKeys(now+1) returned %v, want %v", got, want)
	}
}

func testTouchKeyLastUsed(t *testing.T, s *db.Store) {
	ctx := context.Background()
	q := s.Q()
	mkOrg(t, q, "org_tl")
	k := mkKey(t, q, "org_tl", "key_tl_0001")
	steps := []struct {
		touch int64
		want  int64
	}{
		{t0 + 100, t0 + 100}, // from NULL
		{t0 + 50, t0 + 100},  // older: ignored
		{t0 + 100, t0 + 100}, // same
		{t0 + 200, t0 + 200}, // newer
		{t0 + 199, t0 + 200},
	}
	for i, st := range steps {
		ok(t, q.TouchKeyLastUsed(ctx, sqlitedb.TouchKeyLastUsedParams{LastUsedAt: i64(st.touch), ID: k.ID}))
		got := getKey(t, q, k.ID)
		if got.LastUsedAt != i64(st.want) {
			t.Fatalf("step %d: touch(%d) -> last_used_at %+v, want %d", i, st.touch, got.LastUsedAt, st.want)
		}
		// Touching is not an edit: SaveKeyQuota relies on updated_at.
		if got.UpdatedAt != k.UpdatedAt {
			t.Fatalf("TouchKeyLastUsed moved updated_at to %d", got.UpdatedAt)
		}
	}
	ok(t, q.TouchKeyLastUsed(ctx, sqlitedb.TouchKeyLastUsedParams{LastUsedAt: i64(t0), ID: "key_tl_none"}))
}

func testSaveKeyQuota(t *testing.T, s *db.Store) {
	ctx := context.Background()
	q := s.Q()
	mkOrg(t, q, "org_sq")
	p := keyParams("org_sq", "key_sq_0001")
	p.Remaining, p.RefillAmount, p.RefillIntervalSeconds, p.LastRefillAt = i64(10), i64(10), i64(60), i64(t0)
	ok(t, q.InsertKey(ctx, p))
	k := getKey(t, q, p.ID)
	if k.QuotaEpoch != 0 {
		t.Fatalf("a new key has quota_epoch %d, want 0", k.QuotaEpoch)
	}
	loaded := k.QuotaEpoch

	n, err := q.SaveKeyQuota(ctx, sqlitedb.SaveKeyQuotaParams{Remaining: i64(7), LastRefillAt: i64(t0 + 1), ID: k.ID, QuotaEpoch: loaded})
	wantRows(t, "SaveKeyQuota(current)", n, err, 1)
	got := getKey(t, q, k.ID)
	if got.Remaining != i64(7) || got.LastRefillAt != i64(t0+1) || got.QuotaEpoch != loaded || got.UpdatedAt != k.UpdatedAt {
		t.Fatalf("after SaveKeyQuota: remaining %+v last_refill_at %+v quota_epoch %d updated_at %d",
			got.Remaining, got.LastRefillAt, got.QuotaEpoch, got.UpdatedAt)
	}

	// An edit that keeps the epoch (say a rename) does not block saving.
	up := updateFrom(got)
	up.Name, up.UpdatedAt = "renamed", got.UpdatedAt+1
	n, err = q.UpdateKey(ctx, up)
	wantRows(t, "UpdateKey(rename)", n, err, 1)
	n, err = q.SaveKeyQuota(ctx, sqlitedb.SaveKeyQuotaParams{Remaining: i64(6), LastRefillAt: i64(t0 + 2), ID: k.ID, QuotaEpoch: loaded})
	wantRows(t, "SaveKeyQuota(after rename)", n, err, 1)

	// Setting remaining explicitly moves the epoch; a host still holding the
	// old epoch is ignored and the explicit value wins.
	up = updateFrom(getKey(t, q, k.ID))
	up.Remaining, up.QuotaEpoch, up.UpdatedAt = i64(500), loaded+1, up.UpdatedAt+1
	n, err = q.UpdateKey(ctx, up)
	wantRows(t, "UpdateKey(set remaining)", n, err, 1)

	cases := []struct {
		name      string
		epoch     int64
		remaining sql.NullInt64
		want      int64
		wantRem   sql.NullInt64
	}{
		{"stale epoch", loaded, i64(3), 0, i64(500)},
		{"unknown future epoch", loaded + 2, i64(3), 0, i64(500)},
		{"current epoch", loaded + 1, i64(499), 1, i64(499)},
		{"current epoch again", loaded + 1, i64(498), 1, i64(498)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := q.SaveKeyQuota(ctx, sqlitedb.SaveKeyQuotaParams{Remaining: tc.remaining, LastRefillAt: i64(t0 + 9), ID: k.ID, QuotaEpoch: tc.epoch})
			wantRows(t, "SaveKeyQuota", n, err, tc.want)
			if got := getKey(t, q, k.ID); got.Remaining != tc.wantRem {
				t.Fatalf("remaining = %+v, want %+v", got.Remaining, tc.wantRem)
			}
		})
	}

	// A key made unlimited (remaining NULL) is never given a quota back by a
	// host that still counts down.
	up = updateFrom(getKey(t, q, k.ID))
	up.Remaining, up.UpdatedAt = nullInt, up.UpdatedAt+1
	n, err = q.UpdateKey(ctx, up)
	wantRows(t, "UpdateKey(unlimited)", n, err, 1)
	n, err = q.SaveKeyQuota(ctx, sqlitedb.SaveKeyQuotaParams{Remaining: i64(5), LastRefillAt: i64(t0 + 10), ID: k.ID, QuotaEpoch: up.QuotaEpoch})
	wantRows(t, "SaveKeyQuota(unlimited key)", n, err, 0)
	if got := getKey(t, q, k.ID); got.Remaining.Valid {
		t.Fatalf("SaveKeyQuota gave an unlimited key remaining %d", got.Remaining.Int64)
	}

	n, err = q.SaveKeyQuota(ctx, sqlitedb.SaveKeyQuotaParams{Remaining: i64(1), ID: "key_sq_none", QuotaEpoch: loaded})
	wantRows(t, "SaveKeyQuota(unknown)", n, err, 0)
}

func testChangeFeed(t *testing.T, s *db.Store) {
	ctx := context.Background()
	q := s.Q()
	start, err := q.MaxKeyChangeID(ctx)
	ok(t, err)
	if start != 0 {
		t.Fatalf("MaxKeyChangeID on an empty feed = %d, want 0", start)
	}

	inserted := []sqlitedb.InsertKeyChangeParams{
		{KeyID: "key_cf_1", OrgID: "org_cf", CreatedAt: 1000},
		{KeyID: "key_cf_2", OrgID: "org_cf", CreatedAt: 2000},
		{KeyID: "key_cf_1", OrgID: "org_cf", CreatedAt: t0},
	}
	for _, c := range inserted {
		ok(t, q.InsertKeyChange(ctx, c))
	}
	all, err := q.ListKeyChangesAfter(ctx, sqlitedb.ListKeyChangesAfterParams{AfterID: start, Lim: 100})
	ok(t, err)
	if len(all) != len(inserted) {
		t.Fatalf("ListKeyChangesAfter returned %d rows, want %d", len(all), len(inserted))
	}
	for i, r := range all {
		if r.KeyID != inserted[i].KeyID || r.OrgID != inserted[i].OrgID {
			t.Fatalf("row %d = %+v, want %+v", i, r, inserted[i])
		}
		if i > 0 && r.ID <= all[i-1].ID {
			t.Fatalf("ids not ascending: %d after %d", r.ID, all[i-1].ID)
		}
	}
	maxID, err := q.MaxKeyChangeID(ctx)
	ok(t, err)
	if maxID != all[2].ID {
		t.Fatalf("MaxKeyChangeID = %d, want %d", maxID, all[2].ID)
	}

	cases := []struct {
		name  string
		after int64
		lim   int64
		want  []int64
	}{
		{"from start", start, 100, []int64{all[0].ID, all[1].ID, all[2].ID}},
		{"limit", start, 2, []int64{all[0].ID, all[1].ID}},
		{"after excludes", all[0].ID, 100, []int64{all[1].ID, all[2].ID}},
		{"caught up", maxID, 100, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := q.ListKeyChangesAfter(ctx, sqlitedb.ListKeyChangesAfterParams{AfterID: tc.after, Lim: tc.lim})
			ok(t, err)
			var ids []int64
			for _, r := range got {
				ids = append(ids, r.ID)
			}
			if len(ids) != len(tc.want) || (len(ids) > 0 && !reflect.DeepEqual(ids, tc.want)) {
				t.Fatalf("ids = %v, want %v", ids, tc.want)
			}
		})
	}

	n, err := q.PruneKeyChanges(ctx, 1500)
	wantRows(t, "PruneKeyChanges(1500)", n, err, 1)
	n, err = q.PruneKeyChanges(ctx, 1500)
	wantRows(t, "PruneKeyChanges(1500) again", n, err, 0)
	rest, err := q.ListKeyChangesAfter(ctx, sqlitedb.ListKeyChangesAfterParams{AfterID: 0, Lim: 100})
	ok(t, err)
	if len(rest) != 2 || rest[0].ID != all[1].ID || rest[1].ID != all[2].ID {
		t.Fatalf("after prune: %+v", rest)
	}
	if m, _ := q.MaxKeyChangeID(ctx); m != maxID {
		t.Fatalf("MaxKeyChangeID after pruning old rows = %d, want %d", m, maxID)
	}

	// Prune everything; new ids must still move forward so that followers
	// holding the old maximum see the next change.
	n, err = q.PruneKeyChanges(ctx, t0+1)
	wantRows(t, "PruneKeyChanges(all)", n, err, 2)
	ok(t, q.InsertKeyChange(ctx, sqlitedb.InsertKeyChangeParams{KeyID: "key_cf_3", OrgID: "org_cf", CreatedAt: t0 + 2}))
	next, err := q.ListKeyChangesAfter(ctx, sqlitedb.ListKeyChangesAfterParams{AfterID: maxID, Lim: 100})
	ok(t, err)
	if len(next) != 1 || next[0].KeyID != "key_cf_3" || next[0].ID <= maxID {
		t.Fatalf("change after a full prune = %+v, want one row with id > %d", next, maxID)
	}
}

// testListen checks that inserting into the change feed wakes Listen on
// PostgreSQL (through the NOTIFY trigger) and that Listen returns when its
// context ends; on SQLite it returns at once.
func testListen(t *testing.T, s *db.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wake := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Listen(ctx, db.KeyChangesChannel, wake)
	}()

	if s.Engine != db.Postgres {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Listen on SQLite did not return at once")
		}
		return
	}

	// LISTEN may not be in place yet: keep inserting until a wake arrives.
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for woke := false; !woke; {
		select {
		case <-wake:
			woke = true
		case <-tick.C:
			ok(t, s.Q().InsertKeyChange(context.Background(), sqlitedb.InsertKeyChangeParams{KeyID: "key_ln", OrgID: "org_ln", CreatedAt: t0}))
		case <-deadline:
			t.Fatal("no wake from Listen after inserting key changes")
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Listen did not return after its context ended")
	}
}

func testRequestLogs(t *testing.T, s *db.Store) {
	ctx := context.Background()
	q := s.Q()
	logs := []sqlitedb.InsertRequestLogParams{
		{RequestID: "r1", OrgID: "org_rl1", KeyID: "key_rl_a", Method: "GET", Route: "/v1/a", Status: 200, LatencyUs: 11, CreatedAt: t0},
		{RequestID: "r2", OrgID: "org_rl1", KeyID: "key_rl_a", Method: "POST", Route: "/v1/b", Status: 201, LatencyUs: 12, CreatedAt: t0 + 10},
		{RequestID: "r3", OrgID: "org_rl1", KeyID: "key_rl_b", Method: "GET", Route: "/v1/a", Status: 404, LatencyUs: 13, CreatedAt: t0 + 20},
		{RequestID: "r4", OrgID: "org_rl1", KeyID: "key_rl_a", Method: "GET", Route: "/v1/a", Status: 200, LatencyUs: 14, CreatedAt: t0 + 30},
		{RequestID: "r5", OrgID: "org_rl2", KeyID: "key_rl_c", Method: "GET", Route: "/v1/a", Status: 200, LatencyUs: 15, CreatedAt: t0 + 40},
		{RequestID: "r6", OrgID: "org_rl1", KeyID: "key_rl_b", Method: "DELETE", Route: "/v1/a", Status: 200, LatencyUs: 16, CreatedAt: t0 + 50},
	}
	for _, l := range logs {
		ok(t, q.InsertRequestLog(ctx, l))
	}
	all, err := q.AdminListLogs(ctx, sqlitedb.AdminListLogsParams{KeyID: "", OrgID: "org_rl1", Lim: 100})
	ok(t, err)
	byReq := map[string]sqlitedb.SaasApiRequestLog{}
	for _, r := range all {
		byReq[r.RequestID] = r
	}
	for _, l := range logs {
		if l.OrgID != "org_rl1" {
			continue
		}
		r, found := byReq[l.RequestID]
		if !found {
			t.Fatalf("log %s missing", l.RequestID)
		}
		want := sqlitedb.SaasApiRequestLog{ID: r.ID, RequestID: l.RequestID, OrgID: l.OrgID, KeyID: l.KeyID, Method: l.Method,
			Route: l.Route, Status: l.Status, LatencyUs: l.LatencyUs, CreatedAt: l.CreatedAt}
		if r != want {
			t.Fatalf("log round trip = %+v, want %+v", r, want)
		}
	}
	id := func(req string) int64 { return byReq[req].ID }

	cases := []struct {
		name string
		p    sqlitedb.AdminListLogsParams
		want []string
	}{
		{"org", sqlitedb.AdminListLogsParams{OrgID: "org_rl1"}, []string{"r6", "r4", "r3", "r2", "r1"}},
		{"other org", sqlitedb.AdminListLogsParams{OrgID: "org_rl2"}, []string{"r5"}},
		{"key without org", sqlitedb.AdminListLogsParams{KeyID: "key_rl_a"}, []string{"r4", "r2", "r1"}},
		{"key of another org", sqlitedb.AdminListLogsParams{OrgID: "org_rl1", KeyID: "key_rl_c"}, nil},
		{"route", sqlitedb.AdminListLogsParams{OrgID: "org_rl1", Route: "/v1/a"}, []string{"r6", "r4", "r3", "r1"}},
		{"status", sqlitedb.AdminListLogsParams{OrgID: "org_rl1", Status: 200}, []string{"r6", "r4", "r1"}},
		{"status 404", sqlitedb.AdminListLogsParams{OrgID: "org_rl1", Status: 404}, []string{"r3"}},
		{"since is inclusive", sqlitedb.AdminListLogsParams{OrgID: "org_rl1", Since: t0 + 20}, []string{"r6", "r4", "r3"}},
		{"until is exclusive", sqlitedb.AdminListLogsParams{OrgID: "org_rl1", Until: t0 + 20}, []string{"r2", "r1"}},
		{"since and until", sqlitedb.AdminListLogsParams{OrgID: "org_rl1", Since: t0 + 10, Until: t0 + 40}, []string{"r4", "r3", "r2"}},
		{"cursor excludes", sqlitedb.AdminListLogsParams{OrgID: "org_rl1", Cursor: id("r4")}, []string{"r3", "r2", "r1"}},
		{"limit", sqlitedb.AdminListLogsParams{OrgID: "org_rl1", Lim: 2}, []string{"r6", "r4"}},
		{"cursor and limit", sqlitedb.AdminListLogsParams{OrgID: "org_rl1", Cursor: id("r4"), Lim: 2}, []string{"r3", "r2"}},
		{"everything", sqlitedb.AdminListLogsParams{OrgID: "org_rl1", KeyID: "key_rl_a", Route: "/v1/a", Status: 200, Since: t0 + 5, Until: t0 + 31}, []string{"r4"}},
		{"nothing matches", sqlitedb.AdminListLogsParams{OrgID: "org_rl1", Route: "/v1/b", Status: 200}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.p.Lim == 0 {
				tc.p.Lim = 100
			}
			got, err := q.AdminListLogs(ctx, tc.p)
			ok(t, err)
			var reqs []string
			for _, r := range got {
				reqs = append(reqs, r.RequestID)
			}
			if !eqStrings(reqs, tc.want) {
				t.Fatalf("AdminListLogs(%+v) = %v, want %v", tc.p, reqs, tc.want)
			}
		})
	}

	t.Run("walk pages", func(t *testing.T) {
		var reqs []string
		var cursor int64
		for page := 0; ; page++ {
			if page > 10 {
				t.Fatal("pagination does not end")
			}
			got, err := q.AdminListLogs(ctx, sqlitedb.AdminListLogsParams{OrgID: "org_rl1", Cursor: cursor, Lim: 2})
			ok(t, err)
			if len(got) == 0 {
				break
			}
			for _, r := range got {
				reqs = append(reqs, r.RequestID)
			}
			cursor = got[len(got)-1].ID
		}
		if want := []string{"r6", "r4", "r3", "r2", "r1"}; !eqStrings(reqs, want) {
			t.Fatalf("pages = %v, want %v", reqs, want)
		}
	})
}

func testPruneRequestLogs(t *testing.T, s *db.Store) {
	ctx := context.Background()
	q := s.Q()
	// Logs are appended in time order; these come after every other log of
	// the suite, so pruning before base removes all the earlier ones.
	base := t0 + 500_000_000
	for i, at := range []int64{base, base + 1000, base + 2000} {
		ok(t, q.InsertRequestLog(ctx, sqlitedb.InsertRequestLogParams{
			RequestID: fmt.Sprintf("pr%d", i), OrgID: "org_pr", KeyID: "key_pr", Method: "GET", Route: "/", Status: 200, CreatedAt: at,
		}))
	}
	count := func() int {
		got, err := q.AdminListLogs(ctx, sqlitedb.AdminListLogsParams{Lim: 1000})
		ok(t, err)
		return len(got)
	}
	if n, err := q.PruneRequestLogs(ctx, base); err != nil || n == 0 || count() != 3 {
		t.Fatalf("prune before the first: removed %d (%v), %d left; want the earlier logs gone and 3 left", n, err, count())
	}
	cases := []struct {
		before int64
		want   int64
		left   int
	}{
		{base, 0, 3},        // strictly before
		{base + 1, 1, 2},    // the first
		{base + 1000, 0, 2}, // the second is at the cut-off, so kept
		{base + 1001, 1, 1},
		{base + 5000, 1, 0}, // everything, when nothing is at or after the cut-off
		{base + 5000, 0, 0},
	}
	for _, tc := range cases {
		n, err := q.PruneRequestLogs(ctx, tc.before)
		wantRows(t, fmt.Sprintf("PruneRequestLogs(%d)", tc.before), n, err, tc.want)
		if got := count(); got != tc.left {
			t.Fatalf("after PruneRequestLogs(%d): %d logs left, want %d", tc.before, got, tc.left)
		}
	}
}

func testWriteRequestLogs(t *testing.T, s *db.Store) {
	ctx := context.Background()
	// 128 + 16 + 1 + 1 + 1: every statement size is used.
	logs := make([]sqlitedb.InsertRequestLogParams, 147)
	for i := range logs {
		logs[i] = sqlitedb.InsertRequestLogParams{RequestID: fmt.Sprintf("bulk%03d", i), OrgID: "org_bulk", KeyID: "key_bulk",
			Method: "GET", Route: "/b", Status: 200 + int64(i%2), LatencyUs: int64(i), CreatedAt: t0 + 600_000_000 + int64(i)}
	}
	stats := []sqlitedb.AddKeyStatParams{{KeyID: "key_bulk", OrgID: "org_bulk", Day: "2030-01-01", Route: "/b", Status: 200, Count: 74}}
	ok(t, s.WriteRequestLogs(ctx, logs, stats))
	ok(t, s.WriteRequestLogs(ctx, logs[:3], stats))
	got, err := s.Q().AdminListLogs(ctx, sqlitedb.AdminListLogsParams{OrgID: "org_bulk", Lim: 1000})
	ok(t, err)
	if len(got) != 150 || got[len(got)-1].RequestID != "bulk000" || got[0].RequestID != "bulk002" || got[3].LatencyUs != 146 {
		t.Fatalf("bulk insert stored %d rows, first %+v", len(got), got[len(got)-1])
	}
	days, err := s.Q().KeyStatsByDay(ctx, sqlitedb.KeyStatsByDayParams{OrgID: "org_bulk", KeyID: "key_bulk"})
	ok(t, err)
	if len(days) != 1 || days[0].Count != 148 {
		t.Fatalf("stats = %+v", days)
	}
	// Stats rows for the same key, day, route and status in one batch add up.
	dup := sqlitedb.AddKeyStatParams{KeyID: "key_bulk", OrgID: "org_bulk", Day: "2030-01-02", Route: "/b", Status: 200, Count: 1}
	ok(t, s.WriteRequestLogs(ctx, nil, []sqlitedb.AddKeyStatParams{dup, dup}))
	days, err = s.Q().KeyStatsByDay(ctx, sqlitedb.KeyStatsByDayParams{OrgID: "org_bulk", KeyID: "key_bulk"})
	ok(t, err)
	if len(days) != 2 || days[1].Count != 2 {
		t.Fatalf("stats after duplicates = %+v", days)
	}
}

// A batch written twice under one id is stored once, rows and counts alike;
// its mark is pruned by the time it was stored.
func testWriteRequestLogBatch(t *testing.T, s *db.Store) {
	ctx := context.Background()
	logs := []sqlitedb.InsertRequestLogParams{
		{RequestID: "once1", OrgID: "org_once", KeyID: "key_once", Method: "GET", Route: "/o", Status: 200, CreatedAt: t0},
		{RequestID: "once2", OrgID: "org_once", KeyID: "key_once", Method: "GET", Route: "/o", Status: 200, CreatedAt: t0},
	}
	stats := []sqlitedb.AddKeyStatParams{{KeyID: "key_once", OrgID: "org_once", Day: "2030-02-01", Route: "/o", Status: 200, Count: 2}}
	a := sqlitedb.MarkRequestLogBatchParams{ID: "batch-a", CreatedAt: t0 + 10}
	for i, want := range []bool{false, true, true} {
		dup, err := s.WriteRequestLogBatch(ctx, a, logs, stats)
		ok(t, err)
		if dup != want {
			t.Fatalf("write %d: dup = %v, want %v", i+1, dup, want)
		}
	}
	b := sqlitedb.MarkRequestLogBatchParams{ID: "batch-b", CreatedAt: t0 + 20}
	dup, err := s.WriteRequestLogBatch(ctx, b, logs[:1], stats[:0])
	ok(t, err)
	if dup {
		t.Fatal("another batch id was taken for a duplicate")
	}
	got, err := s.Q().AdminListLogs(ctx, sqlitedb.AdminListLogsParams{OrgID: "org_once", Lim: 10})
	ok(t, err)
	days, err := s.Q().KeyStatsByDay(ctx, sqlitedb.KeyStatsByDayParams{OrgID: "org_once", KeyID: "key_once"})
	ok(t, err)
	if len(got) != 3 || len(days) != 1 || days[0].Count != 2 {
		t.Fatalf("%d rows and stats %+v, want 3 rows and a count of 2", len(got), days)
	}
	n, err := s.Q().PruneRequestLogBatches(ctx, t0+20)
	wantRows(t, "PruneRequestLogBatches", n, err, 1)
	dup, err = s.WriteRequestLogBatch(ctx, b, logs[:1], stats[:0])
	ok(t, err)
	if !dup {
		t.Fatal("a batch stored after the cut-off lost its mark")
	}
}

func testKeyStats(t *testing.T, s *db.Store) {
	ctx := context.Background()
	q := s.Q()
	adds := []sqlitedb.AddKeyStatParams{
		{KeyID: "key_ks_1", OrgID: "org_ks", Day: "2025-06-01", Route: "/v1/a", Status: 200, Count: 3},
		{KeyID: "key_ks_1", OrgID: "org_ks", Day: "2025-06-01", Route: "/v1/a", Status: 200, Count: 2}, // accumulates
		{KeyID: "key_ks_1", OrgID: "org_ks", Day: "2025-06-01", Route: "/v1/a", Status: 500, Count: 1},
		{KeyID: "key_ks_1", OrgID: "org_ks", Day: "2025-06-01", Route: "/v1/b", Status: 200, Count: 2},
		{KeyID: "key_ks_1", OrgID: "org_ks", Day: "2025-06-02", Route: "/v1/a", Status: 200, Count: 4},
		{KeyID: "key_ks_1", OrgID: "org_ks", Day: "2025-06-02", Route: "/v1/a", Status: 429, Count: 3},
		{KeyID: "key_ks_1", OrgID: "org_ks", Day: "2025-06-02", Route: "/v1/a", Status: 304, Count: 1},
		{KeyID: "key_ks_1", OrgID: "org_ks", Day: "2025-05-31", Route: "/v1/b", Status: 200, Count: 1},
		{KeyID: "key_ks_2", OrgID: "org_ks", Day: "2025-06-01", Route: "/v1/a", Status: 200, Count: 100},
		{KeyID: "key_ks_3", OrgID: "org_ks2", Day: "2025-06-01", Route: "/v1/a", Status: 200, Count: 1000},
	}
	for _, a := range adds {
		ok(t, q.AddKeyStat(ctx, a))
	}
	if c := rawInt(t, s, "SELECT count FROM saas_api_key_stats_daily WHERE key_id = ? AND day = ? AND route = ? AND status = ?",
		"key_ks_1", "2025-06-01", "/v1/a", 200); c.Int64 != 5 {
		t.Fatalf("upserted count = %d, want 5", c.Int64)
	}
	if c := rawInt(t, s, "SELECT COUNT(*) FROM saas_api_key_stats_daily WHERE key_id = ?", "key_ks_1"); c.Int64 != 7 {
		t.Fatalf("%d stat rows for key_ks_1, want 7", c.Int64)
	}

	dayCases := []struct {
		org, key string
		want     []sqlitedb.KeyStatsByDayRow
	}{
		{"org_ks", "key_ks_1", []sqlitedb.KeyStatsByDayRow{
			{Day: "2025-05-31", Count: 1, Success: 1},
			{Day: "2025-06-01", Count: 8, Success: 7, ServerError: 1},
			{Day: "2025-06-02", Count: 8, Success: 5, ClientError: 3},
		}},
		{"org_ks", "key_ks_2", []sqlitedb.KeyStatsByDayRow{{Day: "2025-06-01", Count: 100, Success: 100}}},
		{"org_ks2", "key_ks_1", nil}, // a key is only visible through its own org
		{"org_ks", "key_ks_3", nil},
	}
	for _, tc := range dayCases {
		t.Run("by day "+tc.org+"/"+tc.key, func(t *testing.T) {
			got, err := q.KeyStatsByDay(ctx, sqlitedb.KeyStatsByDayParams{OrgID: tc.org, KeyID: tc.key})
			ok(t, err)
			if len(got) != len(tc.want) || (len(got) > 0 && !reflect.DeepEqual(got, tc.want)) {
				t.Fatalf("KeyStatsByDay = %+v, want %+v", got, tc.want)
			}
		})
	}

	routeCases := []struct {
		org, key string
		want     []sqlitedb.KeyStatsByRouteRow
	}{
		{"org_ks", "key_ks_1", []sqlitedb.KeyStatsByRouteRow{
			{Route: "/v1/a", Status: 200, Count: 9},
			{Route: "/v1/a", Status: 304, Count: 1},
			{Route: "/v1/a", Status: 429, Count: 3},
			{Route: "/v1/a", Status: 500, Count: 1},
			{Route: "/v1/b", Status: 200, Count: 3},
		}},
		{"org_ks2", "key_ks_3", []sqlitedb.KeyStatsByRouteRow{{Route: "/v1/a", Status: 200, Count: 1000}}},
		{"org_ks2", "key_ks_1", nil},
	}
	for _, tc := range routeCases {
		t.Run("by route "+tc.org+"/"+tc.key, func(t *testing.T) {
			got, err := q.KeyStatsByRoute(ctx, sqlitedb.KeyStatsByRouteParams{OrgID: tc.org, KeyID: tc.key})
			ok(t, err)
			if len(got) != len(tc.want) || (len(got) > 0 && !reflect.DeepEqual(got, tc.want)) {
				t.Fatalf("KeyStatsByRoute = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func testAudit(t *testing.T, s *db.Store) {
	ctx := context.Background()
	q := s.Q()
	entries := []sqlitedb.InsertAuditParams{
		{OrgID: "org_au1", Actor: "usr_a", KeyID: str("key_au_1"), Action: "key.create", SourceIp: "10.0.0.1", Details: `{"name":"x"}`, CreatedAt: t0},
		{OrgID: "org_au1", Actor: "usr_a", KeyID: nullStr, Action: "member.invite", SourceIp: "10.0.0.1", Details: "{}", CreatedAt: t0 + 10},
		{OrgID: "org_au1", Actor: "usr_b", KeyID: str("key_au_1"), Action: "key.revoke", SourceIp: "::1", Details: "{}", CreatedAt: t0 + 20},
		{OrgID: "org_au2", Actor: "usr_c", KeyID: str("key_au_2"), Action: "key.create", SourceIp: "10.0.0.2", Details: "{}", CreatedAt: t0 + 30},
		{OrgID: "org_au1", Actor: "usr_a", KeyID: str("key_au_3"), Action: "key.create", SourceIp: "10.0.0.1", Details: "{}", CreatedAt: t0 + 40},
	}
	for _, e := range entries {
		ok(t, q.InsertAudit(ctx, e))
	}
	mine, err := q.AdminListAudit(ctx, sqlitedb.AdminListAuditParams{OrgID: "org_au1", Lim: 100})
	ok(t, err)
	if len(mine) != 4 {
		t.Fatalf("%d org_au1 entries, want 4", len(mine))
	}
	// mine is newest first; entries 4, 2, 1, 0 of org_au1.
	idx := []int{4, 2, 1, 0}
	for i, row := range mine {
		e := entries[idx[i]]
		want := sqlitedb.SaasAuditLog{ID: row.ID, OrgID: e.OrgID, Actor: e.Actor, KeyID: e.KeyID, Action: e.Action,
			SourceIp: e.SourceIp, Details: e.Details, CreatedAt: e.CreatedAt}
		if row != want {
			t.Fatalf("audit row %d = %+v, want %+v", i, row, want)
		}
	}
	actions := func(rows []sqlitedb.SaasAuditLog) []string {
		var out []string
		for _, r := range rows {
			out = append(out, fmt.Sprintf("%s@%d", r.Action, r.CreatedAt-t0))
		}
		return out
	}

	cases := []struct {
		name string
		p    sqlitedb.AdminListAuditParams
		want []string
	}{
		{"org", sqlitedb.AdminListAuditParams{OrgID: "org_au1"}, []string{"key.create@40", "key.revoke@20", "member.invite@10", "key.create@0"}},
		{"other org", sqlitedb.AdminListAuditParams{OrgID: "org_au2"}, []string{"key.create@30"}},
		{"key skips NULL key rows", sqlitedb.AdminListAuditParams{OrgID: "org_au1", KeyID: "key_au_1"}, []string{"key.revoke@20", "key.create@0"}},
		{"key without org", sqlitedb.AdminListAuditParams{KeyID: "key_au_2"}, []string{"key.create@30"}},
		{"key of another org", sqlitedb.AdminListAuditParams{OrgID: "org_au1", KeyID: "key_au_2"}, nil},
		{"action", sqlitedb.AdminListAuditParams{OrgID: "org_au1", Action: "key.create"}, []string{"key.create@40", "key.create@0"}},
		{"since is inclusive", sqlitedb.AdminListAuditParams{OrgID: "org_au1", Since: t0 + 10}, []string{"key.create@40", "key.revoke@20", "member.invite@10"}},
		{"until is exclusive", sqlitedb.AdminListAuditParams{OrgID: "org_au1", Until: t0 + 20}, []string{"member.invite@10", "key.create@0"}},
		{"cursor excludes", sqlitedb.AdminListAuditParams{OrgID: "org_au1", Cursor: mine[1].ID}, []string{"member.invite@10", "key.create@0"}},
		{"limit", sqlitedb.AdminListAuditParams{OrgID: "org_au1", Lim: 1}, []string{"key.create@40"}},
		{"everything", sqlitedb.AdminListAuditParams{OrgID: "org_au1", KeyID: "key_au_1", Action: "key.create", Since: t0, Until: t0 + 1}, []string{"key.create@0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.p.Lim == 0 {
				tc.p.Lim = 100
			}
			got, err := q.AdminListAudit(ctx, tc.p)
			ok(t, err)
			if a := actions(got); !eqStrings(a, tc.want) {
				t.Fatalf("AdminListAudit(%+v) = %v, want %v", tc.p, a, tc.want)
			}
		})
	}
}

func testTx(t *testing.T, s *db.Store) {
	ctx := context.Background()
	errBoom := errors.New("boom")

	t.Run("commit keeps the rows", func(t *testing.T) {
		err := s.Tx(ctx, func(q db.Querier) error {
			if err := insOrg(q, "org_tx_commit"); err != nil {
				return err
			}
			// The transaction sees its own write.
			if _, err := q.GetOrg(ctx, "org_tx_commit"); err != nil {
				return err
			}
			return q.InsertKey(ctx, keyParams("org_tx_commit", "key_tx_c001"))
		})
		ok(t, err)
		if _, err := s.Q().GetOrg(ctx, "org_tx_commit"); err != nil {
			t.Fatalf("committed org missing: %v", err)
		}
		if _, err := s.Q().GetKeyByID(ctx, "key_tx_c001"); err != nil {
			t.Fatalf("committed key missing: %v", err)
		}
	})

	rollbacks := []struct {
		name string
		fn   func(q db.Querier) error
		want error // errors.Is target; nil means any error
	}{
		{"error from fn", func(q db.Querier) error {
			if err := insOrg(q, "org_tx_rb1"); err != nil {
				t.Errorf("insert: %v", err)
			}
			return errBoom
		}, errBoom},
		{"failed statement", func(q db.Querier) error {
			if err := insOrg(q, "org_tx_rb2"); err != nil {
				t.Errorf("insert: %v", err)
			}
			// A duplicate id fails; fn passes the error on.
			return q.InsertOrg(ctx, sqlitedb.InsertOrgParams{ID: "org_tx_rb2", Name: "dup", CreatedAt: t0})
		}, nil},
		{"wrapped error", func(q db.Querier) error {
			if err := insOrg(q, "org_tx_rb3"); err != nil {
				t.Errorf("insert: %v", err)
			}
			return fmt.Errorf("step 2: %w", errBoom)
		}, errBoom},
	}
	for i, tc := range rollbacks {
		t.Run("rollback on "+tc.name, func(t *testing.T) {
			err := s.Tx(ctx, tc.fn)
			if err == nil {
				t.Fatal("Tx returned nil")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Tx error = %v, want %v", err, tc.want)
			}
			_, err = s.Q().GetOrg(ctx, fmt.Sprintf("org_tx_rb%d", i+1))
			wantNoRows(t, "GetOrg after rollback", err)
		})
	}

	t.Run("rollback on panic", func(t *testing.T) {
		func() {
			defer func() {
				if r := recover(); r != "tx panic" {
					t.Fatalf("recovered %v, want the panic to propagate", r)
				}
			}()
			_ = s.Tx(ctx, func(q db.Querier) error {
				if err := insOrg(q, "org_tx_panic"); err != nil {
					t.Errorf("insert: %v", err)
				}
				panic("tx panic")
			})
		}()
		_, err := s.Q().GetOrg(ctx, "org_tx_panic")
		wantNoRows(t, "GetOrg after panic", err)
		// The pool is still usable (the connection was not left in a transaction).
		ok(t, s.Tx(ctx, func(q db.Querier) error { return insOrg(q, "org_tx_after") }))
	})
}

// testConcurrentReadModifyWrite runs 20 transactions that each read a key
// with GetOrgKeyForUpdate and write remaining+1. Without BEGIN IMMEDIATE
// (SQLite) or FOR UPDATE (PostgreSQL) updates would be lost or fail.
func testConcurrentReadModifyWrite(t *testing.T, s *db.Store) {
	ctx := context.Background()
	q := s.Q()
	mkOrg(t, q, "org_cc")
	p := keyParams("org_cc", "key_cc_0001")
	p.Remaining = i64(0)
	ok(t, q.InsertKey(ctx, p))

	const workers = 20
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs <- s.Tx(ctx, func(q db.Querier) error {
				k, err := q.GetOrgKeyForUpdate(ctx, sqlitedb.GetOrgKeyForUpdateParams{OrgID: "org_cc", ID: "key_cc_0001"})
				if err != nil {
					return fmt.Errorf("read: %w", err)
				}
				// Widen the window between read and write.
				time.Sleep(2 * time.Millisecond)
				up := updateFrom(k)
				up.Remaining = i64(k.Remaining.Int64 + 1)
				up.UpdatedAt = k.UpdatedAt + 1
				n, err := q.UpdateKey(ctx, up)
				if err != nil {
					return fmt.Errorf("write: %w", err)
				}
				if n != 1 {
					return fmt.Errorf("write affected %d rows", n)
				}
				return nil
			})
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("transaction failed: %v", err)
		}
	}
	k := getKey(t, q, "key_cc_0001")
	if k.Remaining != i64(workers) {
		t.Fatalf("remaining = %+v after %d increments, want %d (lost updates)", k.Remaining, workers, workers)
	}
	if k.UpdatedAt != t0+workers {
		t.Fatalf("updated_at = %d, want %d", k.UpdatedAt, t0+workers)
	}
}
