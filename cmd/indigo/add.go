package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/indigo-hq/indigo/cmd/indigo/internal/project"
	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/sdk"
)

func (a *app) addCmd() *cobra.Command {
	var (
		dev     bool
		license string
		name    string
	)
	cmd := &cobra.Command{
		Use:   "add ./modules/NAME | PATH@VERSION | core-api | core-subscriptions",
		Short: "Build a module and list it in indigo.toml, or add a first-party part",
		Long: `Add to the project in the folder of indigo.toml:

  indigo add ./modules/NAME     build a local module into plugins/NAME, check
                                its manifest and scopes, list it with its SHA-256
  indigo add PATH@VERSION       the same for a published Go module, built in a
                                temporary module against the project's .indigo/src
  indigo add core-api           turn on core-api (license, or --dev), copy its
                                migrations, write a library-mode host, migrate
  indigo add core-subscriptions write modules/subscriptions, add it, and make it
                                the metering provider

Every step is idempotent. On a failure indigo.toml and plugins/ are left as
they were.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			arg := args[0]
			if (dev || license != "") && arg != "core-api" {
				return errors.New("--dev and --license apply to `indigo add core-api` only")
			}
			if name != "" && strings.HasPrefix(arg, "core-") && !isLocalPath(arg) {
				return errors.New("--name applies to local and published modules only")
			}
			p, err := a.project()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			switch {
			case arg == "core-api":
				return a.addCoreAPI(ctx, p, dev, license)
			case arg == "core-subscriptions":
				return a.addCoreSubscriptions(ctx, p)
			case isLocalPath(arg):
				return a.addLocal(ctx, p, arg, name)
			case strings.Contains(arg, "@"):
				return a.addRemote(ctx, p, arg, name)
			default:
				return fmt.Errorf("%q is neither a local folder (start it with ./), a published module (PATH@VERSION), core-api nor core-subscriptions", arg)
			}
		},
	}
	cmd.Flags().BoolVar(&dev, "dev", false, "core-api: development mode, without a license (loopback only)")
	cmd.Flags().StringVar(&license, "license", "", "core-api: the license token (else $INDIGO_LICENSE or ./indigo.license)")
	cmd.Flags().StringVar(&name, "name", "", "the module's name (default: the folder's name for a local module, the manifest's for a published one)")
	return cmd
}

func isLocalPath(arg string) bool {
	if filepath.IsAbs(arg) || arg == "." || arg == ".." || strings.HasPrefix(arg, "./") || strings.HasPrefix(arg, "../") {
		return true
	}
	if strings.Contains(arg, "@") {
		return false
	}
	st, err := os.Stat(arg)
	return err == nil && st.IsDir()
}

// install is what adding any module comes down to: build a binary, check
// it, record it.
type install struct {
	name     string // expected module name; "" takes the manifest's
	source   string // "path@version" for a published module
	building string // what is built, for messages
	// build writes the binary to out.
	build func(ctx context.Context, out string) error
	// check, when set, is a further check of the manifest.
	check func(m sdk.Manifest) error
	// edit, when set, makes further changes to indigo.toml in the same write.
	edit func(doc *project.Doc) ([]string, error)
}

// installModule builds to a temporary file in plugins/, describes it,
// checks its manifest and scopes against core and the other listed modules,
// then moves it to plugins/<name> and records it in indigo.toml. Nothing
// is moved or written unless every check passed; a binary and a config
// that are already what they would become are left untouched.
func (a *app) installModule(ctx context.Context, s *steps, p *proj, in install) error {
	cfg, raw, err := p.fileConfig()
	if err != nil {
		return err
	}
	plugins := filepath.Join(p.dir, "plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(plugins, ".build-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_ = f.Close()
	defer os.Remove(tmp) // a no-op once it is in place

	// wall clock: how long the build took, for the output
	start := time.Now()
	if err := in.build(ctx, tmp); err != nil {
		return fmt.Errorf("build %s: %w", in.building, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	// wall clock: since the start above
	s.done("build: %s (%.1fs)", in.building, time.Since(start).Seconds())

	m, err := project.Describe(ctx, tmp, project.DescribeTimeout)
	if err != nil {
		return fmt.Errorf("describe %s: %w", in.building, err)
	}
	name := in.name
	if name == "" {
		name = m.Name
	}
	if err := sdk.CheckManifest(name, m); err != nil {
		return fmt.Errorf("%s: %w", in.building, err)
	}
	if in.check != nil {
		if err := in.check(m); err != nil {
			return fmt.Errorf("%s: %w", in.building, err)
		}
	}
	s.done("describe: %s %s, %s, %s", m.Name, m.Version, plural(len(m.Scopes), "scope", "scopes"), plural(len(m.Routes), "route", "routes"))

	var others []project.Other
	for _, mc := range cfg.Modules {
		if mc.Name == name {
			continue
		}
		o := project.Other{Name: mc.Name}
		if om, err := project.Describe(ctx, mc.Path, project.DescribeTimeout); err != nil {
			o.Err = err
		} else {
			o.Manifest = &om
		}
		others = append(others, o)
	}
	warnings, err := project.CheckScopes(m, others)
	if err != nil {
		return err
	}
	s.done("scopes: %s; no collision with core or %s", strings.Join(scopeIDs(m), ", "), plural(len(others), "other module", "other modules"))
	for _, w := range warnings {
		s.note("warning: %s", w)
	}

	sum, err := project.FileSHA256(tmp)
	if err != nil {
		return err
	}
	dst := filepath.Join(plugins, name)
	doc := project.ParseDoc(raw)
	if _, err := doc.SetModule(project.ModuleEntry{Name: name, Path: p.rel(dst), SHA256: sum, Source: in.source}); err != nil {
		return err
	}
	var extra []string
	if in.edit != nil {
		if extra, err = in.edit(doc); err != nil {
			return err
		}
	}
	newRaw := doc.Bytes()
	cfgChanged := !bytes.Equal(newRaw, raw)
	oldSum, _ := project.FileSHA256(dst)
	binChanged := oldSum != sum

	var staged *project.Staged
	if cfgChanged {
		if staged, err = project.StageConfig(p.cfgPath, newRaw, os.Environ()); err != nil {
			return err
		}
		defer staged.Abort()
	}
	if binChanged {
		backup := ""
		if oldSum != "" {
			backup = filepath.Join(plugins, "."+name+".old")
			if err := os.Rename(dst, backup); err != nil {
				return err
			}
		}
		if err := os.Rename(tmp, dst); err != nil {
			if backup != "" {
				_ = os.Rename(backup, dst)
			}
			return err
		}
		if staged != nil {
			if err := staged.Commit(); err != nil {
				_ = os.Remove(dst)
				if backup != "" {
					_ = os.Rename(backup, dst)
				}
				return err
			}
		}
		if backup != "" {
			_ = os.Remove(backup)
		}
	} else if staged != nil {
		if err := staged.Commit(); err != nil {
			return err
		}
	}

	var what []string
	switch {
	case !binChanged:
		what = append(what, p.rel(dst)+" unchanged")
	case oldSum == "":
		what = append(what, "installed "+p.rel(dst))
	default:
		what = append(what, "replaced "+p.rel(dst))
	}
	existing := moduleListed(cfg, name)
	switch {
	case !cfgChanged:
		what = append(what, "indigo.toml unchanged")
	case !existing:
		what = append(what, fmt.Sprintf("indigo.toml: added [[modules]] %s (sha256 %s…)", name, sum[:12]))
	default:
		what = append(what, fmt.Sprintf("indigo.toml: updated [[modules]] %s (sha256 %s…)", name, sum[:12]))
	}
	if cfgChanged {
		what = append(what, extra...)
	}
	if !binChanged && !cfgChanged {
		s.done("record: %s: unchanged", name)
		return nil
	}
	s.done("record: %s", strings.Join(what, "; "))
	// A host loads its modules when it starts; say so, and say it louder
	// when one is running here now.
	if url, up := hostRunning(ctx, cfg.Server.Addr); up {
		s.note("restart needed: the host running at %s loaded its modules at start; until you restart it, %s's routes answer 404", url, name)
	} else {
		s.note("the host loads %s when it starts (indigo serve); a host that is already running needs a restart", name)
	}
	return nil
}

// hostRunning reports whether an Indigo host answers /healthz at addr.
func hostRunning(ctx context.Context, addr string) (string, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", false
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port)
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/healthz", nil)
	if err != nil {
		return "", false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", false
	}
	resp.Body.Close()
	return url, resp.StatusCode == http.StatusOK
}

func moduleListed(cfg *config.Config, name string) bool {
	for _, m := range cfg.Modules {
		if m.Name == name {
			return true
		}
	}
	return false
}

func scopeIDs(m sdk.Manifest) []string {
	ids := make([]string, len(m.Scopes))
	for i, s := range m.Scopes {
		ids[i] = s.ID
	}
	if len(ids) == 0 {
		return []string{"no scopes"}
	}
	return ids
}

// addLocal adds a module from a folder: go build in that folder.
func (a *app) addLocal(ctx context.Context, p *proj, arg, name string) error {
	dir, err := filepath.Abs(arg)
	if err != nil {
		return err
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("%s is not a folder", arg)
	}
	if name == "" {
		name = filepath.Base(dir)
	}
	if !project.ModuleNameRE.MatchString(name) {
		return fmt.Errorf("module name %q (the folder's name; see --name) must match %s", name, project.ModuleNameRE)
	}
	s := a.steps(5)
	if _, _, err := p.fileConfig(); err != nil {
		return err
	}
	if err := a.ensureSource(s, p); err != nil {
		return err
	}
	return a.installModule(ctx, s, p, install{
		name:     name,
		building: p.rel(dir),
		build:    localBuild(dir),
	})
}

// localBuild builds the module in dir. -trimpath and no VCS stamp keep
// the recorded sha256 independent of where the project lives.
func localBuild(dir string) func(ctx context.Context, out string) error {
	return func(ctx context.Context, out string) error {
		return goCmd(ctx, dir, "build", "-trimpath", "-buildvcs=false", "-o", out, ".")
	}
}

// addRemote adds a published module: a temporary module requires it with
// Indigo replaced by the project's .indigo/src, and builds it.
func (a *app) addRemote(ctx context.Context, p *proj, arg, name string) error {
	pkg, ver, _ := strings.Cut(arg, "@")
	if pkg == "" || ver == "" || strings.HasPrefix(pkg, "-") || strings.HasPrefix(ver, "-") || strings.ContainsAny(arg, " \t") {
		return fmt.Errorf("want PATH@VERSION, such as example.com/hello@v1.0.0; got %q", arg)
	}
	s := a.steps(6)
	if _, _, err := p.fileConfig(); err != nil {
		return err
	}
	if err := a.ensureSource(s, p); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "indigo-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	gomod := fmt.Sprintf("module indigo-build\n\ngo %s\n\nrequire %s v0.0.0\n\nreplace %s => %s\n",
		project.GoVersion(), project.IndigoModule, project.IndigoModule, filepath.ToSlash(p.source()))
	if err := os.WriteFile(filepath.Join(tmp, "go.mod"), []byte(gomod), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "go.sum"), project.EmbeddedGoSum(), 0o644); err != nil {
		return err
	}
	if err := goCmd(ctx, tmp, "get", arg); err != nil {
		return fmt.Errorf("fetch %s: %w", arg, err)
	}
	// Record the version go get resolved ("latest" is not one).
	resolved := arg
	if v, err := goOutput(ctx, tmp, "list", "-f", "{{.Module.Version}}", pkg); err == nil && v != "" {
		resolved = pkg + "@" + v
	}
	s.done("fetch: go get %s", resolved)
	// Without --name, a published module goes by the name it declares: a
	// path such as example.com/x/v2 says little about it.
	return a.installModule(ctx, s, p, install{
		name:     name,
		source:   resolved,
		building: resolved,
		build: func(ctx context.Context, out string) error {
			return goCmd(ctx, tmp, "build", "-trimpath", "-buildvcs=false", "-o", out, pkg)
		},
	})
}

// goOutput runs the go command in dir and returns its trimmed stdout.
func goOutput(ctx context.Context, dir string, args ...string) (string, error) {
	out, err := goExec(ctx, dir, args...).Output()
	return strings.TrimSpace(string(out)), err
}

// migrationCopy is what installing core-api's migrations of one engine
// into the project's db/migrations/<engine> takes.
type migrationCopy struct {
	engine, dir string
	files       map[string][]byte // name -> content, the ones to write
	total       int
}

// planMigrations checks the embedded migrations of every engine against the
// project's: a file already there with the same content is skipped, one
// with other content stops everything before anything is written.
func planMigrations(p *proj, migrations func(engine string) (fs.FS, error)) ([]migrationCopy, error) {
	var plan []migrationCopy
	for _, engine := range []string{"sqlite", "postgres"} {
		src, err := migrations(engine)
		if err != nil {
			return nil, err
		}
		entries, err := fs.ReadDir(src, ".")
		if err != nil {
			return nil, err
		}
		mc := migrationCopy{engine: engine, dir: filepath.Join(p.dir, "db", "migrations", engine), files: map[string][]byte{}}
		for _, e := range entries {
			if e.IsDir() || path.Ext(e.Name()) != ".sql" {
				continue
			}
			mc.total++
			want, err := fs.ReadFile(src, e.Name())
			if err != nil {
				return nil, err
			}
			dst := filepath.Join(mc.dir, e.Name())
			have, err := os.ReadFile(dst)
			switch {
			case err == nil && bytes.Equal(have, want):
			case err == nil:
				return nil, fmt.Errorf("%s differs from core-api's migration of the same name: refusing to overwrite it (restore it, or rename your own migration)", p.rel(dst))
			case errors.Is(err, fs.ErrNotExist):
				mc.files[e.Name()] = want
			default:
				return nil, err
			}
		}
		plan = append(plan, mc)
	}
	return plan, nil
}
