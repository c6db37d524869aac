// Package testbin builds the metronome and metronomectl binaries once per
// test process, for tests that run the real daemon (test/integration,
// test/browser, examples/plugins), runs the daemon for them (Daemon), and
// hands out free loopback ports. Binaries are built with -race when the
// test binary itself is.
package testbin

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	once   sync.Once
	binDir string
	err    error
)

// ModuleRoot is the directory of go.mod above the working directory.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testbin: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Binaries builds ./cmd/metronome and ./cmd/metronomectl from the working
// tree, once, and returns their paths.
func Binaries(t testing.TB) (daemon, ctl string) {
	t.Helper()
	once.Do(func() {
		root := ModuleRoot(t)
		if binDir, err = os.MkdirTemp("", "metronome-bin-"); err != nil {
			return
		}
		// The go command caches test results keyed on the files a test
		// reads; stat every source file of the module so that a change to
		// the server invalidates a cached PASS.
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			if n := d.Name(); strings.HasSuffix(n, ".go") || n == "go.mod" || n == "go.sum" {
				_, _ = os.Stat(p)
			}
			return nil
		})
		args := []string{"build", "-o", binDir + string(os.PathSeparator)}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "./cmd/metronome", "./cmd/metronomectl")
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		if out, e := cmd.CombinedOutput(); e != nil {
			err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), e, out)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(binDir, "metronome"), filepath.Join(binDir, "metronomectl")
}

// Cleanup removes the built binaries; call it from TestMain after m.Run.
func Cleanup() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

// FreePorts returns n distinct loopback TCP ports that were free a moment
// ago (all are held open together, so they differ).
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}
