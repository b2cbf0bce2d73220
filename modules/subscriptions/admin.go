package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/indigo-hq/indigo/sdk"
)

// admin is the operator's mode: it opens the module's database directly
// (SQLite allows the running module and this process at once) and prints
// the account as JSON. The plans come from the same config the host gives
// the module, passed as JSON with --config (indigo subscriptions does).
// now is the clock the store reads, as in the module itself.
func admin(now func() time.Time, args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("subscriptions admin", flag.ContinueOnError)
	flags.SetOutput(stderr)
	dir := flags.String("data-dir", "", "the module's data directory (<server.data_dir>/modules/subscriptions), when "+sdk.EnvDBEngine+" is not set")
	cfgJSON := flags.String("config", "{}", "the module's config section as JSON")
	usage := func() {
		fmt.Fprintln(stderr, "usage: subscriptions admin --data-dir DIR [--config JSON] (set-plan ORG PLAN | top-up ORG TOKENS | set-balance ORG TOKENS | show ORG)")
	}
	flags.Usage = usage
	if err := flags.Parse(args); err != nil {
		return 2
	}
	rest := flags.Args()
	engine, dsn := os.Getenv(sdk.EnvDBEngine), os.Getenv(sdk.EnvDBDSN)
	if engine == "" && *dir != "" {
		engine, dsn = sdk.EngineSQLite, filepath.Join(*dir, "subscriptions.db")
	}
	if engine == "" || len(rest) < 2 {
		usage()
		return 2
	}
	var c config
	if err := json.Unmarshal([]byte(*cfgJSON), &c); err != nil {
		fmt.Fprintf(stderr, "subscriptions: --config: %v\n", err)
		return 2
	}
	ctx := context.Background()
	db, err := sdk.OpenMigrated(ctx, engine, dsn, migrationsFS())
	if err != nil {
		fmt.Fprintf(stderr, "subscriptions: %v\n", err)
		return 1
	}
	defer db.Close()
	plans, def := c.plans()
	st, err := openStore(db, engine, plans, def, now)
	if err != nil {
		fmt.Fprintf(stderr, "subscriptions: %v\n", err)
		return 1
	}
	cmd, org := rest[0], rest[1]
	var acc Account
	switch {
	case cmd == "show" && len(rest) == 2:
		acc, err = st.Account(ctx, org)
	case cmd == "set-plan" && len(rest) == 3:
		acc, err = st.SetPlan(ctx, org, rest[2])
	case (cmd == "top-up" || cmd == "set-balance") && len(rest) == 3:
		n, perr := strconv.ParseInt(rest[2], 10, 64)
		if perr != nil {
			fmt.Fprintf(stderr, "subscriptions: %s: TOKENS must be a whole number, got %q\n", cmd, rest[2])
			return 2
		}
		if cmd == "top-up" {
			acc, err = st.TopUp(ctx, org, n, "admin")
		} else {
			acc, err = st.SetBalance(ctx, org, n)
		}
	default:
		usage()
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "subscriptions: %s: %v\n", cmd, err)
		return 1
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(acc)
	return 0
}

func migrationsFS() fs.FS {
	sub, _ := fs.Sub(migrations, "migrations")
	return sub
}
