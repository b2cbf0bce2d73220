package project

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	indigo "github.com/indigo-hq/indigo"
)

// IndigoModule is the module path of the SDK and the host.
const IndigoModule = "github.com/indigo-hq/indigo"

// SourceDir is where a project keeps the source its indigo was built from.
func SourceDir(projectDir string) string { return filepath.Join(projectDir, ".indigo", "src") }

func embeddedGoMod() string {
	b, err := fs.ReadFile(indigo.Source(), "go.mod")
	if err != nil {
		panic(err) // go.mod is embedded by name
	}
	return string(b)
}

// EmbeddedGoSum is the go.sum Indigo was built with. A new module starts
// from it, so that `go mod tidy` finds the checksums of the SDK's
// dependencies without asking the checksum database; tidy drops what the
// module does not need.
func EmbeddedGoSum() []byte {
	b, _ := fs.ReadFile(indigo.Source(), "go.sum")
	return b
}

// GoVersion is the go directive of Indigo's go.mod ("1.26.8"); a module
// that requires Indigo needs at least that.
func GoVersion() string {
	for _, l := range strings.Split(embeddedGoMod(), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "go "); ok {
			return strings.TrimSpace(v)
		}
	}
	return "1.26"
}

// RequiredVersion is the version of mod in Indigo's go.mod ("" when it is
// not there).
func RequiredVersion(mod string) string {
	re := regexp.MustCompile(`^\s*(?:require\s+)?` + regexp.QuoteMeta(mod) + `\s+(v\S+)`)
	for _, l := range strings.Split(embeddedGoMod(), "\n") {
		if m := re.FindStringSubmatch(l); m != nil {
			return m[1]
		}
	}
	return ""
}

// ModulePath reads the module path of dir/go.mod; ok is false without one.
func ModulePath(dir string) (string, bool, error) {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(p), `"`), true, nil
		}
	}
	return "", false, fmt.Errorf("%s/go.mod has no module line", dir)
}

var nonName = regexp.MustCompile(`[^a-z0-9-]+`)

// Name is the project's name, from its folder: lower case letters, digits
// and dashes ("app" when nothing is left).
func Name(projectDir string) string {
	n := strings.Trim(nonName.ReplaceAllString(strings.ToLower(filepath.Base(projectDir)), "-"), "-")
	if n == "" || n == "." {
		return "app"
	}
	return n
}

// RootModulePath is the project's Go module path: its go.mod's when it has
// one, else example.com/<name>.
func RootModulePath(projectDir string) (string, error) {
	p, ok, err := ModulePath(projectDir)
	if err != nil || ok {
		return p, err
	}
	return "example.com/" + Name(projectDir), nil
}

// ReplaceTarget is the relative path from dir to src (the project's
// .indigo/src), as a go.mod replace directive wants it ("../../.indigo/src").
func ReplaceTarget(src, dir string) (string, error) {
	rel, err := filepath.Rel(dir, src)
	if err != nil {
		return "", err
	}
	rel = filepath.ToSlash(rel)
	if !strings.HasPrefix(rel, "../") {
		rel = "./" + rel
	}
	return rel, nil
}

// GoMod is a go.mod for a module or program of a project: it requires
// Indigo and replaces it with the project's copy of the source.
func GoMod(modulePath, replace string) []byte {
	return fmt.Appendf(nil, `module %s

go %s

require %s v0.0.0

// Indigo (the SDK and the host) comes from .indigo/src, the source the
// indigo command was built from; indigo add and indigo module new keep it
// current. To build against a published release instead, delete this
// replace directive and require a tagged version (go get %s@v1.2.3).
replace %s => %s
`, modulePath, GoVersion(), IndigoModule, IndigoModule, IndigoModule, replace)
}
