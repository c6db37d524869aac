// Package plugintest builds WebAssembly plugins for tests: it runs the Go
// toolchain with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared on a plugin's
// main package and caches the result for the rest of the test binary's run.
//
// When the toolchain cannot build for wasip1, tests that need a plugin
// are skipped with the reason, or fail when METRONOME_REQUIRE_ALL=1 (as in
// CI), like the other optional test dependencies of the repository.
package plugintest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	mu     sync.Mutex
	outDir string
	built  = map[string]result{}
)

type result struct {
	path string
	err  error
}

// ModuleRoot returns the repository root (the directory holding go.mod),
// searched upwards from the working directory.
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
			t.Fatal("plugintest: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Build builds the plugin main package at pkg (a path relative to the
// module root, e.g. "examples/plugins/motd") and returns the .wasm file.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	root := ModuleRoot(t)
	mu.Lock()
	defer mu.Unlock()
	if r, ok := built[pkg]; ok {
		if r.err != nil {
			unavailable(t, r.err)
		}
		return r.path
	}
	if outDir == "" {
		d, err := os.MkdirTemp("", "metronome-plugins-")
		if err != nil {
			t.Fatal(err)
		}
		outDir = d
	}
	out := filepath.Join(outDir, strings.ReplaceAll(pkg, "/", "_")+".wasm")
	err := BuildTo(root, pkg, out)
	built[pkg] = result{out, err}
	if err != nil {
		unavailable(t, err)
	}
	return out
}

// BuildTo runs the build of pkg (relative to root) into out.
func BuildTo(root, pkg, out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("plugintest: no go command in $PATH to build %s for wasip1", pkg)
	}
	cmd := exec.Command(goBin, "build", "-buildmode=c-shared", "-trimpath", "-o", out, "./"+filepath.ToSlash(pkg))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("plugintest: GOOS=wasip1 GOARCH=wasm go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("METRONOME_REQUIRE_ALL") == "1" {
		t.Fatal(err)
	}
	t.Skip(err)
}

// Cleanup removes the built files; call it from TestMain after m.Run.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if outDir != "" {
		os.RemoveAll(outDir)
		outDir = ""
		built = map[string]result{}
	}
}
