package core_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/db"
	"github.com/indigo-hq/indigo/db/dbtest"
)

func cfgFor(t *testing.T, engine string) *config.Config {
	cfg := config.Default()
	cfg.Database.Driver = engine
	cfg.Database.URL = dbtest.URL(t, engine)
	return &cfg
}

func TestOpenRefusesDirtyOrOldSchema(t *testing.T) {
	for _, engine := range dbtest.Engines {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			cfg := cfgFor(t, engine)

			// --no-migrate on an empty database: refused with the fix.
			if _, err := core.Open(ctx, cfg, core.Options{NoMigrate: true}); err == nil || !strings.Contains(err.Error(), "indigo db migrate up") {
				t.Fatalf("unmigrated database with NoMigrate: %v", err)
			}
			svc, err := core.Open(ctx, cfg, core.Options{})
			if err != nil {
				t.Fatal(err)
			}
			m, err := db.NewMigrator(ctx, svc.Store)
			if err != nil {
				t.Fatal(err)
			}
			st, err := m.Status()
			_ = m.Close()
			if err != nil {
				t.Fatal(err)
			}
			wantFix := fmt.Sprintf("indigo db migrate force %d", st.Latest)
			table := "schema_migrations"
			if engine == db.Postgres {
				table = "indigo_schema_migrations"
			}
			if _, err := svc.Store.DB.Exec("UPDATE " + table + " SET dirty = true"); err != nil {
				t.Fatal(err)
			}
			_ = svc.Close()
			for _, noMigrate := range []bool{false, true} {
				_, err := core.Open(ctx, cfg, core.Options{NoMigrate: noMigrate})
				if err == nil || !strings.Contains(err.Error(), "dirty") || !strings.Contains(err.Error(), wantFix) {
					t.Fatalf("dirty schema (NoMigrate=%v): %v", noMigrate, err)
				}
			}
		})
	}
}

func TestBootstrapCreatesDefaultOrgOnce(t *testing.T) {
	ctx := context.Background()
	cfg := cfgFor(t, db.SQLite)
	svc, err := core.Open(ctx, cfg, core.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := core.New(svc, core.Options{})
	defer h.Shutdown(ctx)
	before := time.Now()
	first, err := h.Bootstrap(ctx)
	if err != nil || !strings.HasPrefix(first.URL, "http://127.0.0.1:8080/auth/login?token=") || first.OrgName != "Default" {
		t.Fatalf("bootstrap: %+v %v", first, err)
	}
	if ttl := cfg.Identity.LoginLinkTTL.Duration; first.ExpiresAt.Before(before.Add(ttl)) || first.ExpiresAt.After(time.Now().Add(ttl)) {
		t.Fatalf("the link expires at %v, want the start plus %v", first.ExpiresAt, ttl)
	}
	second, err := h.Bootstrap(ctx)
	if err != nil || first.OrgID != second.OrgID || first.URL == second.URL {
		t.Fatalf("second bootstrap: org %s vs %s, same link %v, %v", first.OrgID, second.OrgID, first.URL == second.URL, err)
	}
	orgs, _ := h.Local.ListOrgs(ctx)
	if len(orgs) != 1 || orgs[0].Name != "Default" {
		t.Fatalf("orgs = %+v", orgs)
	}
}
