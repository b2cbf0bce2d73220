//go:build !unix

package requestlog

// lockDir does not lock where flock is missing: one host per data folder.
func lockDir(string) (func(), error) { return func() {}, nil }
