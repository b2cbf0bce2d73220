//go:build unix

package rpc

import (
	"errors"
	"os"
	"syscall"
)

// processExists says whether a process has this pid (signal 0 checks
// without sending; EPERM is another user's process).
func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// ownedByMe says whether path (not followed if a link) is this user's.
func ownedByMe(path string) bool {
	fi, err := os.Lstat(path)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Getuid()
}
