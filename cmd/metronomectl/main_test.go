package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func writeConfig(t *testing.T, body string) string {
	dir := t.TempDir()
	p := filepath.Join(dir, "metronome.toml")
	text := fmt.Sprintf("[server]\ndata_dir = %q\n[listen]\nc2s = [\"127.0.0.1:0\"]\nc2s_tls = []\n", filepath.Join(dir, "data")) + body
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUserCommandsWithoutDaemon(t *testing.T) {
	cfg := writeConfig(t, "[host.\"localhost\"]\n[host.\"example.org\"]\n")
	if out, err := run(t, "", "--config", cfg, "user", "add", "alice@localhost", "--password", "secret1"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// Password from standard input (not a terminal): one line.
	if out, err := run(t, "secret2\n", "--config", cfg, "user", "add", "bob@example.org"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if out, err := run(t, "", "--config", cfg, "user", "add", "alice@localhost", "--password", "x"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("duplicate add: %v %s", err, out)
	}
	if _, err := run(t, "", "--config", cfg, "user", "add", "nobody@elsewhere.net", "--password", "x"); err == nil {
		t.Fatal("add on an unknown host succeeded")
	}
	out, err := run(t, "", "--config", cfg, "user", "list")
	if err != nil || !strings.Contains(out, "alice@localhost") || !strings.Contains(out, "bob@example.org") {
		t.Fatalf("list: %v %q", err, out)
	}
	if out, err := run(t, "", "--config", cfg, "user", "passwd", "alice@localhost", "--password", "new"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if out, err := run(t, "", "--config", cfg, "user", "del", "alice@localhost"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	out, _ = run(t, "", "--config", cfg, "user", "list", "localhost")
	if strings.Contains(out, "alice") {
		t.Fatalf("alice still listed: %q", out)
	}
}

func TestUserImport(t *testing.T) {
	cfg := writeConfig(t, "")
	var in strings.Builder
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&in, "user%d@localhost pass%d\n", i, i)
	}
	in.WriteString("broken-line\n")
	out, err := run(t, in.String(), "--config", cfg, "user", "import", "-")
	if err == nil || !strings.Contains(out, "imported 200 accounts") || !strings.Contains(out, "1 lines rejected") {
		t.Fatalf("import: %v %q", err, out)
	}
	out, _ = run(t, "", "--config", cfg, "user", "list")
	if n := strings.Count(out, "@localhost"); n != 200 {
		t.Fatalf("listed %d users", n)
	}
}

func TestCheckAndStatus(t *testing.T) {
	cfg := writeConfig(t, "")
	out, err := run(t, "", "--config", cfg, "check", "--no-dns")
	if err != nil || !strings.Contains(out, "is valid") {
		t.Fatalf("check: %v %q", err, out)
	}
	bad := writeConfig(t, "[server]\nbogus = 1\n")
	out, err = run(t, "", "--config", bad, "check")
	if err == nil || !strings.Contains(out, "metronome.toml:") {
		t.Fatalf("check of a bad config: %v %q", err, out)
	}
	badOpt := writeConfig(t, "[modules.register]\nallow = true\n")
	out, err = run(t, "", "--config", badOpt, "check", "--no-dns")
	if err == nil || !strings.Contains(out, `unknown option "allow"`) {
		t.Fatalf("check of an unknown module option: %v %q", err, out)
	}
	_, err = run(t, "", "--config", cfg, "status")
	var ee *exitError
	if err == nil || !errorsAs(err, &ee) || ee.code != 3 {
		t.Fatalf("status without a daemon: %v", err)
	}
}

func errorsAs(err error, target **exitError) bool {
	e, ok := err.(*exitError)
	if ok {
		*target = e
	}
	return ok
}
