package project

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/indigo-hq/indigo/core/config"
)

// Staged is a file written next to its destination, not yet in place.
type Staged struct {
	tmp, dst string
	done     bool
}

// StageConfig writes data to a temporary file beside path (same folder, same
// mode as path) and loads it with core/config's loader and environ (the
// INDIGO_* overrides the host will see; nil for none), so that an edit that
// would not load never reaches path. Commit then renames it over path in
// one step; Abort removes it.
func StageConfig(path string, data []byte, environ []string) (*Staged, error) {
	s, err := stage(path, data)
	if err != nil {
		return nil, err
	}
	if _, err := config.Load(s.tmp, true, environ); err != nil {
		s.Abort()
		var cerr *config.Error
		if errors.As(err, &cerr) && cerr.Source == s.tmp {
			e := *cerr
			e.Source = path
			err = &e
		}
		return nil, fmt.Errorf("the edited configuration would not load, so it was not written: %w", err)
	}
	return s, nil
}

// SaveConfig is StageConfig and Commit.
func SaveConfig(path string, data []byte, environ []string) error {
	s, err := StageConfig(path, data, environ)
	if err != nil {
		return err
	}
	return s.Commit()
}

func stage(path string, data []byte) (*Staged, error) { return stageMode(path, data, 0o644) }

func stageMode(path string, data []byte, perm fs.FileMode) (*Staged, error) {
	if st, err := os.Stat(path); err == nil {
		perm = st.Mode().Perm()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, err
	}
	s := &Staged{tmp: f.Name(), dst: path}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(s.tmp, perm)
	}
	if err != nil {
		s.Abort()
		return nil, err
	}
	return s, nil
}

// Commit renames the file into place.
func (s *Staged) Commit() error {
	if s.done {
		return errors.New("staged file already committed or aborted")
	}
	s.done = true
	if err := os.Rename(s.tmp, s.dst); err != nil {
		_ = os.Remove(s.tmp)
		return err
	}
	return nil
}

// Abort removes the file; it is safe to call after Commit.
func (s *Staged) Abort() {
	if !s.done {
		s.done = true
		_ = os.Remove(s.tmp)
	}
}
