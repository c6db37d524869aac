//go:build unix

package sqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/storage/sqlite"
)

// TestCrashKeepsAcknowledgedWrites kills a process (SIGKILL, no Close)
// right after its writes were acknowledged and checks that a new Open
// finds every one of them.
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	if path := os.Getenv("METRONOME_SQLITE_CRASH_DB"); path != "" {
		crashWriter(path)
		return
	}
	if testing.Short() {
		t.Skip("short")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKeepsAcknowledgedWrites$")
	cmd.Env = append(os.Environ(), "METRONOME_SQLITE_CRASH_DB="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "acked ") {
			fmt.Sscan(strings.TrimPrefix(sc.Text(), "acked "), &acked)
		}
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("writer did not die of SIGKILL: %v", err)
	}
	if acked == 0 {
		t.Fatal("writer acknowledged nothing")
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Logf("no WAL file left behind: %v", err)
	}

	d, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, total, err := d.Archive("example.org", "archive").Find(t.Context(), "alice", storage.Query{Total: true, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if total < acked {
		t.Errorf("after the crash: %d items, %d were acknowledged", total, acked)
	}
	v, err := d.KeyVal("example.org", "accounts").Get(t.Context(), "alice")
	if err != nil || string(v) != fmt.Sprint(acked) {
		t.Errorf("keyval after the crash: %q, %v; want %d", v, err, acked)
	}
}

// crashWriter appends and reports each acknowledged write, then kills
// itself without closing anything.
func crashWriter(path string) {
	d, err := sqlite.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	a := d.Archive("example.org", "archive")
	kv := d.KeyVal("example.org", "accounts")
	ctx := context.Background()
	for i := 1; i <= 500; i++ {
		if _, err := a.Append(ctx, "alice", storage.Item{Value: []byte("x")}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := kv.Set(ctx, "alice", []byte(fmt.Sprint(i))); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Printf("acked %d\n", i)
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}
