//go:build !unix

package db

import "sync"

// Without flock, migrators are serialised within this process only.
var fileLocks sync.Map // path → *sync.Mutex

func lockFile(path string) (unlock func(), err error) {
	mu, _ := fileLocks.LoadOrStore(path, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	return mu.(*sync.Mutex).Unlock, nil
}
