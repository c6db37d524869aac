package sqlite

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenRejectsNonFiles(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file::memory:?cache=shared"} {
		if d, err := Open(p); err == nil {
			d.Close()
			t.Errorf("Open(%q) succeeded", p)
		}
	}
	if _, err := OpenOptions(filepath.Join(t.TempDir(), "x.db"), Options{Synchronous: "off"}); err == nil {
		t.Error("synchronous=off accepted")
	}
}

func TestOpenReopenAndSchemaVersion(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "odd ?#% name.db")
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := d.KeyVal("h", "s").Set(ctx, "u", []byte("v")); err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := d.r.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v", mode, err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("database file mode %v, want 0600", fi.Mode().Perm())
	}

	d, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := d.KeyVal("h", "s").Get(ctx, "u"); err != nil || string(v) != "v" {
		t.Errorf("after reopen: %q, %v", v, err)
	}
	var n int
	if err := d.r.QueryRowContext(ctx, "SELECT count(*) FROM schema_version").Scan(&n); err != nil || n != 1 {
		t.Errorf("schema_version rows: %d, %v", n, err)
	}
	// Readers cannot write.
	if _, err := d.r.ExecContext(ctx, "DELETE FROM kv"); err == nil {
		t.Error("a reader connection wrote")
	}
	if _, err := d.w.ExecContext(ctx, "INSERT INTO schema_version VALUES (9999, 'from the future', 0)"); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if d, err := Open(path); err == nil || !strings.Contains(err.Error(), "newer") {
		if err == nil {
			d.Close()
		}
		t.Errorf("Open of a newer schema: %v", err)
	}
}
