//go:build !unix

package rpc

// Without a way to tell, every directory is taken for a live host's.
func processExists(int) bool { return true }
func ownedByMe(string) bool  { return false }
