package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	indigo "github.com/indigo-hq/indigo"
	"github.com/indigo-hq/indigo/cmd/indigo/internal/project"
	"github.com/indigo-hq/indigo/core/license"
	"github.com/indigo-hq/indigo/db"
	"github.com/indigo-hq/indigo/sdk"
)

// addCoreAPI turns core-api on for the project: (a) the license check,
// (b) [api] enabled (and dev) with [api.deps], (c) a library-mode host in
// cmd/<project>-host, (d) core-api's migrations in db/migrations/<engine>,
// (e) db generate and db migrate up. The license, the edited config and the
// migrations are all checked before anything is written.
func (a *app) addCoreAPI(ctx context.Context, p *proj, dev bool, token string) error {
	s := a.steps(7)
	// wall clock: a licence expires in real time
	summary, err := license.CheckForAdd(token, p.dir, dev, time.Now())
	if err != nil {
		return fmt.Errorf("%w\nnothing was changed", err)
	}
	s.done("license: %s", summary)

	_, raw, err := p.fileConfig()
	if err != nil {
		return err
	}
	doc := project.ParseDoc(raw)
	var changes []string
	set := func(table, key, value string) error {
		changed, err := doc.Set(table, key, value, project.SetOptions{})
		if changed {
			changes = append(changes, table+"."+key+" = "+value)
		}
		return err
	}
	if err := set("api", "enabled", "true"); err != nil {
		return err
	}
	if dev {
		err = set("api", "dev", "true")
	} else if v, ok := doc.Lookup("api", "dev"); ok && v == "true" {
		err = set("api", "dev", "false") // licensed now: no longer development mode
	}
	if err != nil {
		return err
	}
	if v, ok := doc.Lookup("api.deps", "resolve_org_id"); !ok || v == `""` || v == "''" {
		if err := set("api.deps", "resolve_org_id", project.Quote("local")); err != nil {
			return err
		}
	}
	if added, err := doc.SuggestKey("api.deps", "deduct_api_call_token", project.Quote("subscriptions")); err != nil {
		return err
	} else if added {
		changes = append(changes, `# deduct_api_call_token = "subscriptions" (a hint for indigo add core-subscriptions)`)
	}
	var staged *project.Staged
	if newRaw := doc.Bytes(); !bytes.Equal(newRaw, raw) {
		if staged, err = project.StageConfig(p.cfgPath, newRaw, os.Environ()); err != nil {
			return err
		}
		defer staged.Abort()
	}
	plan, err := planMigrations(p, db.Migrations)
	if err != nil {
		return err
	}

	if staged != nil {
		if err := staged.Commit(); err != nil {
			return err
		}
		s.done("config: indigo.toml: %s", strings.Join(changes, ", "))
	} else {
		mode := ""
		if dev {
			mode = ", api.dev = true"
		}
		s.done("config: indigo.toml unchanged (api.enabled = true%s)", mode)
	}

	if err := a.ensureSource(s, p); err != nil {
		return err
	}
	msg, err := a.writeHostWiring(ctx, p)
	if err != nil {
		return err
	}
	s.done("wiring: %s", msg)

	var installed, kept []string
	for _, mc := range plan {
		names := make([]string, 0, len(mc.files))
		for n := range mc.files {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if _, err := writeNew(filepath.Join(mc.dir, n), mc.files[n], 0o644); err != nil {
				return err
			}
		}
		if len(names) > 0 {
			installed = append(installed, fmt.Sprintf("%s into %s", plural(len(names), "file", "files"), p.rel(mc.dir)))
		} else {
			kept = append(kept, fmt.Sprintf("%s in %s", plural(mc.total, "file", "files"), p.rel(mc.dir)))
		}
	}
	switch {
	case len(installed) == 0:
		s.done("migrations: unchanged (%s)", strings.Join(kept, ", "))
	default:
		s.done("migrations: installed %s", strings.Join(installed, ", "))
	}

	gen, err := a.dbGenerate(ctx, p.dir)
	if err != nil {
		return err
	}
	s.done("db generate: %s", gen)
	st, err := a.migrateUp(ctx)
	if err != nil {
		return err
	}
	s.done("db migrate up: %s", st)
	return nil
}

// writeHostWiring writes the library-mode host: cmd/<project>-host/main.go
// and, when the project has none, a go.mod that builds it against
// .indigo/src. Existing files are kept.
func (a *app) writeHostWiring(ctx context.Context, p *proj) (string, error) {
	modPath, hasMod, err := project.ModulePath(p.dir)
	if err != nil {
		return "", err
	}
	if modPath == project.IndigoModule {
		return "skipped: this is Indigo's own repository", nil
	}
	cmdName := project.Name(p.dir) + "-host"
	var did []string
	requiresIndigo := true
	if !hasMod {
		modPath = "example.com/" + project.Name(p.dir)
		if _, err := writeNew(filepath.Join(p.dir, "go.mod"), project.GoMod(modPath, "./.indigo/src"), 0o644); err != nil {
			return "", err
		}
		did = append(did, "created go.mod ("+modPath+")")
	} else {
		b, err := os.ReadFile(filepath.Join(p.dir, "go.mod"))
		if err != nil {
			return "", err
		}
		requiresIndigo = bytes.Contains(b, []byte(project.IndigoModule))
	}
	mainGo, err := project.HostMain(cmdName)
	if err != nil {
		return "", err
	}
	mainPath := filepath.Join(p.dir, "cmd", cmdName, "main.go")
	created, err := writeNew(mainPath, mainGo, 0o644)
	if err != nil {
		return "", err
	}
	if created {
		did = append(did, "created "+p.rel(mainPath))
	}
	if !requiresIndigo {
		did = append(did, fmt.Sprintf("go.mod does not require %s: add `require %s v0.0.0` and `replace %s => ./.indigo/src`, then run go mod tidy",
			project.IndigoModule, project.IndigoModule, project.IndigoModule))
		return strings.Join(did, "; "), nil
	}
	sumPath := filepath.Join(p.dir, "go.sum")
	_, sumErr := os.Stat(sumPath)
	if len(did) > 0 || errors.Is(sumErr, fs.ErrNotExist) {
		if _, err := writeNew(sumPath, project.EmbeddedGoSum(), 0o644); err != nil {
			return "", err
		}
		if err := goCmd(ctx, p.dir, "mod", "tidy"); err != nil {
			return "", err
		}
		did = append(did, "go mod tidy")
	}
	if len(did) == 0 {
		return fmt.Sprintf("unchanged (go.mod, %s)", p.rel(mainPath)), nil
	}
	return strings.Join(did, ", "), nil
}

// addCoreSubscriptions writes the first-party subscriptions module into
// modules/subscriptions (unless it is there), adds it like a local module
// and makes it the metering provider (api.deps.deduct_api_call_token).
func (a *app) addCoreSubscriptions(ctx context.Context, p *proj) error {
	const name, sub = "subscriptions", "modules/subscriptions"
	if _, err := fs.Stat(indigo.Source(), sub); err != nil {
		return fmt.Errorf("this indigo build (%s) does not include %s: rebuild indigo from a source tree that has it", version, sub)
	}
	if _, _, err := p.fileConfig(); err != nil {
		return err
	}
	s := a.steps(7)
	if err := a.ensureSource(s, p); err != nil {
		return err
	}
	dir := filepath.Join(p.dir, "modules", name)
	if _, err := os.Lstat(dir); err == nil {
		s.done("%s: exists, kept as it is", p.rel(dir))
		s.done("go mod tidy: skipped")
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	} else if err := a.writeSubscriptions(ctx, s, p, sub, dir); err != nil {
		_ = os.RemoveAll(dir)
		return err
	}
	return a.installModule(ctx, s, p, install{
		name:     name,
		building: p.rel(dir),
		build:    localBuild(dir),
		check: func(m sdk.Manifest) error {
			if !slices.Contains(m.Hooks, sdk.HookDeductAPICallToken) {
				return fmt.Errorf("module %q does not provide the %s hook", m.Name, sdk.HookDeductAPICallToken)
			}
			return nil
		},
		edit: func(doc *project.Doc) ([]string, error) {
			changed, err := doc.Set("api.deps", "deduct_api_call_token", project.Quote(name), project.SetOptions{Uncomment: true})
			if changed {
				return []string{`api.deps.deduct_api_call_token = "subscriptions"`}, err
			}
			return nil, err
		},
	})
}

func (a *app) writeSubscriptions(ctx context.Context, s *steps, p *proj, sub, dir string) error {
	files, err := indigo.WriteTree(sub, dir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); errors.Is(err, fs.ErrNotExist) {
		root, err := project.RootModulePath(p.dir)
		if err != nil {
			return err
		}
		replace, err := project.ReplaceTarget(p.source(), dir)
		if err != nil {
			return err
		}
		if _, err := writeNew(filepath.Join(dir, "go.mod"), project.GoMod(root+"/modules/subscriptions", replace), 0o644); err != nil {
			return err
		}
		if _, err := writeNew(filepath.Join(dir, "go.sum"), project.EmbeddedGoSum(), 0o644); err != nil {
			return err
		}
		files = append(files, "go.mod")
	}
	s.done("%s: wrote %s", p.rel(dir), plural(len(files), "file", "files"))
	if err := goCmd(ctx, dir, "mod", "tidy"); err != nil {
		return err
	}
	s.done("go mod tidy: done")
	return nil
}
