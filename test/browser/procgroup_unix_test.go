//go:build unix

package browser

import "syscall"

// newProcessGroup puts the driver (node) and the Chromium it starts into a
// new process group whose id is node's pid.
func newProcessGroup() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// killGroup kills the process group that newProcessGroup made for pid:
// the driver and its browser, nothing else.
func killGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }
