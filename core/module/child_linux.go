package module

import (
	"os/exec"
	"syscall"
)

// setChildAttrs asks the kernel to kill the module if the host dies
// without a shutdown, so a crashed host leaves no orphans.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
