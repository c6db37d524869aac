package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/metronome-xmpp/metronome/storage"
)

var keyValCases = []testCase{
	{"GetMissing", testKVGetMissing},
	{"SetGetOverwrite", testKVSetGetOverwrite},
	{"Values", testKVValues},
	{"NilDeletes", testKVNilDeletes},
	{"Delete", testKVDelete},
	{"Copies", testKVCopies},
	{"Users", testKVUsers},
	{"UsersModifyWhileIterating", testKVUsersModify},
	{"UsersEarlyBreak", testKVUsersEarlyBreak},
	{"Isolation", testKVIsolation},
	{"BulkSetter", testKVBulkSetter},
}

func collectUsers(t testing.TB, kv storage.KeyVal) []string {
	t.Helper()
	var users []string
	for u, err := range kv.Users(t.Context()) {
		if err != nil {
			t.Fatalf("Users: %v", err)
		}
		users = append(users, u)
	}
	return users
}

func testKVGetMissing(t *testing.T, d storage.Driver) {
	kv := d.KeyVal("example.org", "accounts")
	v, err := kv.Get(t.Context(), "nobody")
	wantNotFound(t, "Get of a missing user", err)
	if v != nil {
		t.Errorf("Get of a missing user returned a value %q", v)
	}
	wantNotFound(t, "Get of the missing host value", func() error { _, err := kv.Get(t.Context(), ""); return err }())
}

func testKVSetGetOverwrite(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	kv := d.KeyVal("example.org", "accounts")
	mustNil(t, kv.Set(ctx, "alice", []byte("one")))
	v, err := kv.Get(ctx, "alice")
	mustNil(t, err)
	wantValue(t, "Get after Set", v, "one")
	mustNil(t, kv.Set(ctx, "alice", []byte("two, longer")))
	v, err = kv.Get(ctx, "alice")
	mustNil(t, err)
	wantValue(t, "Get after overwrite", v, "two, longer")
	mustNil(t, kv.Set(ctx, "alice", []byte("3")))
	v, err = kv.Get(ctx, "alice")
	mustNil(t, err)
	wantValue(t, "Get after shorter overwrite", v, "3")
	// The host itself is user "".
	mustNil(t, kv.Set(ctx, "", []byte("host")))
	v, err = kv.Get(ctx, "")
	mustNil(t, err)
	wantValue(t, "Get of the host value", v, "host")
	v, err = kv.Get(ctx, "alice")
	mustNil(t, err)
	wantValue(t, "user value next to the host value", v, "3")
}

// testKVValues round-trips awkward values and user names.
func testKVValues(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	kv := d.KeyVal("example.org", "accounts")
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	large := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	cases := []struct {
		user  string
		value []byte
	}{
		{"empty", []byte{}},
		{"binary", allBytes},
		{"large", large},
		{"utf8", []byte("<x xmlns='jabber:iq:roster'>Ünïcødé ☃ 𝄞</x>")},
		{"üñí©ødé-ユーザー", []byte("unicode user")},
		{"quote'\"`;--", []byte("sql metacharacters")},
		{"like%_\\*?", []byte("pattern metacharacters")},
		{"Alice", []byte("case matters")},
		{"alice", []byte("lower case")},
		{" spaced ", []byte("spaces kept")},
	}
	for _, c := range cases {
		mustNil(t, kv.Set(ctx, c.user, c.value))
	}
	for _, c := range cases {
		v, err := kv.Get(ctx, c.user)
		if err != nil {
			t.Errorf("Get(%q): %v", c.user, err)
			continue
		}
		if v == nil {
			t.Errorf("Get(%q) returned nil, want non-nil (len %d)", c.user, len(c.value))
		}
		if !bytes.Equal(v, c.value) {
			t.Errorf("Get(%q) = %d bytes, want %d bytes", c.user, len(v), len(c.value))
		}
	}
	users := collectUsers(t, kv)
	want := make([]string, len(cases))
	for i, c := range cases {
		want[i] = c.user
	}
	slices.Sort(want)
	if !slices.Equal(users, want) {
		t.Errorf("Users = %q, want %q", users, want)
	}
}

func testKVNilDeletes(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	kv := d.KeyVal("example.org", "accounts")
	mustNil(t, kv.Set(ctx, "alice", []byte("v")))
	mustNil(t, kv.Set(ctx, "alice", nil))
	_, err := kv.Get(ctx, "alice")
	wantNotFound(t, "Get after Set(nil)", err)
	mustNil(t, kv.Set(ctx, "never", nil)) // deleting nothing is fine
	if users := collectUsers(t, kv); len(users) != 0 {
		t.Errorf("Users after Set(nil) = %q, want none", users)
	}
}

func testKVDelete(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	kv := d.KeyVal("example.org", "accounts")
	mustNil(t, kv.Set(ctx, "alice", []byte("a")))
	mustNil(t, kv.Set(ctx, "bob", []byte("b")))
	mustNil(t, kv.Delete(ctx, "alice"))
	_, err := kv.Get(ctx, "alice")
	wantNotFound(t, "Get after Delete", err)
	v, err := kv.Get(ctx, "bob")
	mustNil(t, err)
	wantValue(t, "other user after Delete", v, "b")
	mustNil(t, kv.Delete(ctx, "alice")) // again: no error
	mustNil(t, kv.Delete(ctx, "nobody"))
	mustNil(t, kv.Set(ctx, "alice", []byte("again")))
	v, err = kv.Get(ctx, "alice")
	mustNil(t, err)
	wantValue(t, "Set after Delete", v, "again")
}

func testKVCopies(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	kv := d.KeyVal("example.org", "accounts")
	in := []byte("original")
	mustNil(t, kv.Set(ctx, "alice", in))
	copy(in, "MODIFIED")
	out, err := kv.Get(ctx, "alice")
	mustNil(t, err)
	wantValue(t, "Get after caller modified its Set slice", out, "original")
	copy(out, "MODIFIED")
	out, err = kv.Get(ctx, "alice")
	mustNil(t, err)
	wantValue(t, "Get after caller modified a returned slice", out, "original")
}

func testKVUsers(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	kv := d.KeyVal("example.org", "accounts")
	if users := collectUsers(t, kv); len(users) != 0 {
		t.Fatalf("Users of an empty store = %q", users)
	}
	// Enough users to cross any internal page size.
	const n = 2500
	var want []string
	for i := range n {
		u := fmt.Sprintf("user%05d", i)
		want = append(want, u)
	}
	want = append(want, "") // the host value is listed too
	slices.Sort(want)
	for _, u := range want {
		mustNil(t, kv.Set(ctx, u, []byte("v-"+u)))
	}
	// Values of other stores/hosts and map keys are not users of this store.
	mustNil(t, d.KeyVal("example.org", "other").Set(ctx, "zzz-other-store", []byte("x")))
	mustNil(t, d.KeyVal("example.net", "accounts").Set(ctx, "zzz-other-host", []byte("x")))
	mustNil(t, kv.Delete(ctx, want[10]))
	want = slices.Delete(want, 10, 11)

	got := collectUsers(t, kv)
	if !slices.Equal(got, want) {
		t.Fatalf("Users returned %d users (first %q), want %d sorted (first %q)", len(got), first(got, 3), len(want), first(want, 3))
	}
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

func testKVUsersModify(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	kv := d.KeyVal("example.org", "accounts")
	const n = 1200
	for i := range n {
		mustNil(t, kv.Set(ctx, fmt.Sprintf("u%04d", i), []byte("x")))
	}
	// The loop body deletes every user and rewrites others: no deadlock, and
	// every user present throughout is seen exactly once.
	seen := map[string]int{}
	for u, err := range kv.Users(ctx) {
		mustNil(t, err)
		seen[u]++
		mustNil(t, kv.Delete(ctx, u))
		mustNil(t, kv.Set(ctx, "u0000", []byte("rewritten")))
	}
	for i := range n {
		u := fmt.Sprintf("u%04d", i)
		if seen[u] != 1 {
			t.Fatalf("user %q seen %d times", u, seen[u])
		}
	}
	if got := collectUsers(t, kv); !slices.Equal(got, []string{"u0000"}) {
		t.Errorf("Users after the loop = %q, want [u0000]", got)
	}
}

func testKVUsersEarlyBreak(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	kv := d.KeyVal("example.org", "accounts")
	for i := range 50 {
		mustNil(t, kv.Set(ctx, fmt.Sprintf("u%02d", i), []byte("x")))
	}
	for range 20 { // breaking must release whatever the iterator holds
		n := 0
		for _, err := range kv.Users(ctx) {
			mustNil(t, err)
			n++
			if n == 3 {
				break
			}
		}
	}
	mustNil(t, kv.Set(ctx, "after", []byte("x")))
	if got := collectUsers(t, kv); len(got) != 51 {
		t.Errorf("Users after early breaks: %d users, want 51", len(got))
	}
}

func testKVIsolation(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	stores := []struct{ host, store string }{
		{"example.org", "accounts"},
		{"example.org", "vcard"},
		{"example.net", "accounts"},
		{"example.net", "vcard"},
		{"Example.org", "accounts"}, // names are compared exactly
		{"example.org", "accounts2"},
	}
	for _, s := range stores {
		mustNil(t, d.KeyVal(s.host, s.store).Set(ctx, "alice", []byte(s.host+"/"+s.store)))
	}
	for _, s := range stores {
		kv := d.KeyVal(s.host, s.store)
		v, err := kv.Get(ctx, "alice")
		mustNil(t, err)
		wantValue(t, "alice in "+s.host+"/"+s.store, v, s.host+"/"+s.store)
		if got := collectUsers(t, kv); !slices.Equal(got, []string{"alice"}) {
			t.Errorf("Users of %s/%s = %q, want [alice]", s.host, s.store, got)
		}
	}
	mustNil(t, d.KeyVal("example.org", "accounts").Delete(ctx, "alice"))
	_, err := d.KeyVal("example.org", "accounts").Get(ctx, "alice")
	wantNotFound(t, "deleted value", err)
	for _, s := range stores[1:] {
		if _, err := d.KeyVal(s.host, s.store).Get(ctx, "alice"); err != nil {
			t.Errorf("Delete in example.org/accounts removed alice from %s/%s: %v", s.host, s.store, err)
		}
	}
}

func testKVBulkSetter(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	kv := d.KeyVal("example.org", "accounts")
	bs, ok := kv.(storage.BulkSetter)
	if !ok {
		t.Skip("KeyVal does not implement storage.BulkSetter")
	}
	mustNil(t, kv.Set(ctx, "old1", []byte("o")))
	mustNil(t, kv.Set(ctx, "old2", []byte("o")))
	mustNil(t, bs.SetMany(ctx, nil))
	mustNil(t, bs.SetMany(ctx, map[string][]byte{}))
	const n = 3000
	values := map[string][]byte{"old1": nil, "old2": []byte("replaced"), "gone": nil, "empty": {}}
	for i := range n {
		values[fmt.Sprintf("import%04d", i)] = []byte(fmt.Sprintf("value %d", i))
	}
	mustNil(t, bs.SetMany(ctx, values))
	users := collectUsers(t, kv)
	if len(users) != n+2 {
		t.Errorf("Users after SetMany: %d, want %d", len(users), n+2)
	}
	_, err := kv.Get(ctx, "old1")
	wantNotFound(t, "value deleted by SetMany", err)
	v, err := kv.Get(ctx, "old2")
	mustNil(t, err)
	wantValue(t, "value replaced by SetMany", v, "replaced")
	v, err = kv.Get(ctx, "empty")
	mustNil(t, err)
	wantValue(t, "empty value set by SetMany", v, "")
	for _, i := range []int{0, 1234, n - 1} {
		u := fmt.Sprintf("import%04d", i)
		v, err := kv.Get(ctx, u)
		mustNil(t, err)
		wantValue(t, u, v, fmt.Sprintf("value %d", i))
	}
	// Other stores untouched.
	if _, err := d.KeyVal("example.org", "other").Get(ctx, "import0000"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("SetMany leaked into another store: %v", err)
	}
	// Atomic: a cancelled SetMany changes nothing.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := bs.SetMany(cctx, map[string][]byte{"import0000": []byte("new"), "brand-new": []byte("x")}); err == nil {
		t.Error("SetMany on a cancelled context succeeded")
	}
	v, err = kv.Get(ctx, "import0000")
	mustNil(t, err)
	wantValue(t, "value after cancelled SetMany", v, "value 0")
	if strings.Contains(strings.Join(collectUsers(t, kv), ","), "brand-new") {
		t.Error("cancelled SetMany added a user")
	}
}
