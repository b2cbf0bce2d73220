package faults_test

import (
	"syscall"
	"testing"
	"time"
)

// A host killed by SIGKILL runs no shutdown, so nothing it does can stop
// its modules: the kernel must (the loader starts each module with
// Pdeathsig = SIGKILL). No module process outlives the host by 5 s.
func TestHostSIGKILLLeavesNoOrphans(t *testing.T) {
	h := startHost(t, hostConfig{Projects: true})
	mods := h.modulePIDs()
	if len(mods) != 1 {
		t.Fatalf("host %d has module processes %v, want one", h.cmd.Process.Pid, mods)
	}
	begin := time.Now()
	kill(t, h.cmd.Process.Pid, syscall.SIGKILL)
	<-h.exited
	for {
		var left []int
		for _, pid := range mods {
			if alive(pid) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Since(begin) > 5*time.Second {
			for _, pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL) // not left behind by this test
			}
			t.Fatalf("module processes %v still run 5 s after the host was killed", left)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("module_gone_after_host_sigkill_ms: %.1f", float64(time.Since(begin).Microseconds())/1000)
}
