// Package indigo holds the source tree this build of Indigo was compiled
// from: the SDK that modules import and the host (core, db) that a program
// embedding Indigo imports. Nothing is published where every machine can
// reach it, so the indigo command writes this tree into a project
// (<project>/.indigo/src, see WriteSource) and the project's go.mod files
// point at it with a replace directive.
//
// The patterns below are explicit on purpose: whole directories such as core
// may hold node_modules or other tooling that has no place in a build. So
// does sdk: sdk/typescript is the TypeScript client (an npm package, with
// its node_modules and dist once built), which no Go build needs, so only
// sdk's Go packages are listed.
package indigo

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

//go:embed go.mod go.sum
//go:embed sdk/*.go sdk/client sdk/internal sdk/rpc sdk/sdktest
//go:embed core/*.go core/*/*.go core/*/*/*.go core/internal core/ui/static
//go:embed db/*.go db/*/*.go db/*/*/*.go db/migrations db/queries db/sqlc.yaml
//go:embed modules/subscriptions
var source embed.FS

// Source is the embedded tree, rooted like the repository: "go.mod",
// "sdk/sdk.go", "db/migrations/sqlite/...". It includes test files, which
// WriteSource leaves out.
func Source() fs.FS { return source }

// StampFile is the file in a written tree that records which build wrote it.
const StampFile = ".indigo-source"

// SourceFiles lists, sorted, the embedded files a project gets: every file
// but tests (_test.go) and anything under a testdata folder.
func SourceFiles() ([]string, error) {
	var files []string
	err := fs.WalkDir(source, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "testdata" {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, "_test.go") {
			files = append(files, p)
		}
		return nil
	})
	slices.Sort(files)
	return files, err
}

// Stamp is the content of StampFile for this build: the version and a
// digest of the files, so that two "dev" builds of different source do not
// pass for one another.
func Stamp(version string) (string, error) {
	files, err := SourceFiles()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, p := range files {
		b, err := fs.ReadFile(source, p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
	}
	return fmt.Sprintf("indigo %s\nsha256 %s\nfiles %d\n", version, hex.EncodeToString(h.Sum(nil)), len(files)), nil
}

// WriteSource makes dir (normally <project>/.indigo/src) hold this build's
// source. A tree stamped by the same build is left alone (changed is false);
// anything else is replaced as a whole: the new tree is written next to dir
// and renamed into place, so a failure never leaves half a tree behind.
// files is how many files the tree holds.
func WriteSource(dir, version string) (changed bool, files int, err error) {
	stamp, err := Stamp(version)
	if err != nil {
		return false, 0, err
	}
	list, err := SourceFiles()
	if err != nil {
		return false, 0, err
	}
	if old, err := os.ReadFile(filepath.Join(dir, StampFile)); err == nil && string(old) == stamp {
		return false, len(list), nil
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return false, 0, err
	}
	tmp, err := os.MkdirTemp(parent, filepath.Base(dir)+".new-")
	if err != nil {
		return false, 0, err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := os.Chmod(tmp, 0o755); err != nil {
		return false, 0, err
	}
	for _, p := range list {
		b, err := fs.ReadFile(source, p)
		if err != nil {
			return false, 0, err
		}
		dst := filepath.Join(tmp, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return false, 0, err
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return false, 0, err
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, StampFile), []byte(stamp), 0o644); err != nil {
		return false, 0, err
	}
	var old string
	if _, err := os.Lstat(dir); err == nil {
		oldTmp, err := os.MkdirTemp(parent, filepath.Base(dir)+".old-")
		if err != nil {
			return false, 0, err
		}
		old = filepath.Join(oldTmp, "src")
		if err := os.Rename(dir, old); err != nil {
			_ = os.Remove(oldTmp)
			return false, 0, err
		}
		defer os.RemoveAll(oldTmp)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, 0, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			_ = os.Rename(old, dir)
		}
		return false, 0, err
	}
	return true, len(list), nil
}

// WriteTree copies the embedded folder sub (e.g. "modules/subscriptions")
// into dst, leaving out tests and testdata like WriteSource; files of the
// same name in dst are replaced, so callers check that dst is new. It
// returns the paths written, relative to dst.
func WriteTree(sub, dst string) ([]string, error) {
	files, err := SourceFiles()
	if err != nil {
		return nil, err
	}
	prefix := path.Clean(sub) + "/"
	var written []string
	for _, p := range files {
		rel, ok := strings.CutPrefix(p, prefix)
		if !ok {
			continue
		}
		b, err := fs.ReadFile(source, p)
		if err != nil {
			return written, err
		}
		out := filepath.Join(dst, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return written, err
		}
		if err := os.WriteFile(out, b, 0o644); err != nil {
			return written, err
		}
		written = append(written, rel)
	}
	if len(written) == 0 {
		return nil, fmt.Errorf("this indigo build holds no %s", sub)
	}
	return written, nil
}
