// Command indigo is the Indigo CLI and host binary: `indigo serve` runs the
// host; the other commands act on the configured database directly, so
// they work whether or not a host is running.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
