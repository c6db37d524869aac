//go:build !unix

package browser

import (
	"os"
	"syscall"
)

func newProcessGroup() *syscall.SysProcAttr { return nil }

func killGroup(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}
