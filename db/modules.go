package db

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// ModuleDB is where a module's own database is: its engine, a data source
// name for the module process, and for PostgreSQL the schema and role.
type ModuleDB struct {
	Engine string
	DSN    string
	Schema string // PostgreSQL: mod_<name>
	Role   string // PostgreSQL: the module's login role; "" when the host's is shared
}

// moduleNameRE is the SDK's rule for module names, again here because the
// name ends up in DDL.
var moduleNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{1,31}$`)

// ModuleSchema is the PostgreSQL schema (and role) of module name, for a
// host whose tables are in hostSchema: mod_<name> beside the usual public
// schema, and <hostSchema>_mod_<name> for a host kept in a schema of its
// own (as tests keep hosts), since schemas and roles are database- and
// cluster-wide names.
func ModuleSchema(hostSchema, name string) string {
	s := "mod_" + strings.ReplaceAll(name, "-", "_")
	if hostSchema != "" && hostSchema != "public" {
		s = hostSchema + "_" + s
	}
	return s
}

// ProvisionModule makes module name's database, or finds it made.
//
// On SQLite it is the file <dataDir>/<name>.db (dataDir is the module's own
// folder). On PostgreSQL it is the schema mod_<name> in the host's
// database; when the host's role may create roles, a login role of the
// same name owns the schema and is the module's only way in, so the module
// cannot read core tables or another module's schema. The role's password
// is kept in saas_module_roles so that every host hands out the same one.
// Without CREATEROLE the module connects as the host's role, confined to
// its schema by search_path only (rolesAllowed reports which).
func (s *Store) ProvisionModule(ctx context.Context, name, dataDir string) (ModuleDB, error) {
	if !moduleNameRE.MatchString(name) {
		return ModuleDB{}, fmt.Errorf("module name %q is not a valid name", name)
	}
	if s.Engine == SQLite {
		return ModuleDB{Engine: SQLite, DSN: filepath.Join(dataDir, name+".db")}, nil
	}
	u, err := url.Parse(s.URL)
	if err != nil {
		return ModuleDB{}, fmt.Errorf("database url: %w", err)
	}
	schema := ModuleSchema(u.Query().Get("search_path"), name)
	out := ModuleDB{Engine: Postgres, Schema: schema}
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return out, err
	}
	defer func() { _ = tx.Rollback() }()
	// One host at a time provisions, so that three hosts starting at once
	// make one schema and one role.
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('indigo.module.provision'))`); err != nil {
		return out, err
	}
	if _, err := tx.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+quoteIdent(schema)); err != nil {
		return out, fmt.Errorf("create schema %s: %w", schema, err)
	}
	var canCreate bool
	if err := tx.QueryRowContext(ctx, `SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&canCreate); err != nil {
		return out, err
	}
	if canCreate {
		role, password, err := moduleRole(ctx, tx, name, schema)
		if err != nil {
			return out, err
		}
		out.Role = role
		u.User = url.UserPassword(role, password)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	out.DSN = u.String()
	return out, tx.Commit()
}

// moduleRole finds or makes the module's role, owning its schema.
func moduleRole(ctx context.Context, tx *sql.Tx, name, schema string) (role, password string, err error) {
	err = tx.QueryRowContext(ctx, `SELECT role, password FROM saas_module_roles WHERE module = $1`, name).Scan(&role, &password)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		var b [24]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", "", err
		}
		role, password = schema, hex.EncodeToString(b[:])
		if _, err := tx.ExecContext(ctx, `INSERT INTO saas_module_roles (module, role, password, created_at) VALUES ($1, $2, $3, $4)`,
			name, role, password, time.Now().UnixMilli()); err != nil { // wall clock: a record's creation time
			return "", "", err
		}
	case err != nil:
		return "", "", err
	}
	var exists bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, role).Scan(&exists); err != nil {
		return "", "", err
	}
	// The password is hex from crypto/rand, so it is safe inside quotes.
	stmt := `CREATE ROLE ` + quoteIdent(role) + ` LOGIN PASSWORD '` + password + `'`
	if exists {
		stmt = `ALTER ROLE ` + quoteIdent(role) + ` LOGIN PASSWORD '` + password + `'`
	}
	if _, err := tx.ExecContext(ctx, stmt); err != nil {
		return "", "", fmt.Errorf("module role %s: %w", role, err)
	}
	for _, q := range []string{
		`GRANT ` + quoteIdent(role) + ` TO CURRENT_USER`, // lets the host hand the schema over
		`ALTER SCHEMA ` + quoteIdent(schema) + ` OWNER TO ` + quoteIdent(role),
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return "", "", fmt.Errorf("module schema %s: %w", schema, err)
		}
	}
	return role, password, nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
