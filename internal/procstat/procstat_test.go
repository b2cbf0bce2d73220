package procstat

import (
	"os"
	"testing"
	"time"
)

// The process's own CPU grows as it spins, and a process that is not
// there has none.
func TestCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	before, ok := CPU(os.Getpid())
	if !ok {
		t.Fatal("no CPU time for this process")
	}
	// wall clock: spin for 50 ms of real time
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	after, _ := CPU(os.Getpid())
	if after-before < 20*time.Millisecond {
		t.Fatalf("50 ms of spinning counted %v", after-before)
	}
	if _, ok := CPU(0); ok {
		t.Fatal("pid 0 has a CPU time")
	}
}
