package storagetest

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/metronome-xmpp/metronome/storage"
)

var mapCases = []testCase{
	{"GetMissing", testMapGetMissing},
	{"SetGetDelete", testMapSetGetDelete},
	{"SetKeys", testMapSetKeys},
	{"SetKeysAtomic", testMapSetKeysAtomic},
	{"All", testMapAll},
	{"GetAll", testMapGetAll},
	{"DeleteAll", testMapDeleteAll},
	{"DeleteUser", testMapDeleteUser},
	{"Isolation", testMapIsolation},
}

func wantMap(t testing.TB, what string, got map[string][]byte, want map[string]string) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got a nil map", what)
	}
	g := map[string]string{}
	for k, v := range got {
		if v == nil {
			t.Errorf("%s: key %q has a nil value", what, k)
		}
		g[k] = string(v)
	}
	if !maps.Equal(g, want) {
		t.Errorf("%s: got %q, want %q", what, g, want)
	}
}

func testMapGetMissing(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	m := d.Map("example.org", "roster")
	_, err := m.Get(ctx, "alice", "bob@example.net")
	wantNotFound(t, "Get of a missing user", err)
	mustNil(t, m.Set(ctx, "alice", "carol@example.net", []byte("c")))
	_, err = m.Get(ctx, "alice", "bob@example.net")
	wantNotFound(t, "Get of a missing key", err)
	_, err = m.Get(ctx, "bob", "carol@example.net")
	wantNotFound(t, "Get of another user's key", err)
}

func testMapSetGetDelete(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	m := d.Map("example.org", "roster")
	mustNil(t, m.Set(ctx, "alice", "bob", []byte("1")))
	mustNil(t, m.Set(ctx, "alice", "carol", []byte("2")))
	mustNil(t, m.Set(ctx, "alice", "bob", []byte("1b")))
	mustNil(t, m.Set(ctx, "alice", "empty", []byte{}))
	v, err := m.Get(ctx, "alice", "bob")
	mustNil(t, err)
	wantValue(t, "overwritten key", v, "1b")
	v, err = m.Get(ctx, "alice", "empty")
	mustNil(t, err)
	wantValue(t, "empty value", v, "")
	mustNil(t, m.Delete(ctx, "alice", "bob"))
	_, err = m.Get(ctx, "alice", "bob")
	wantNotFound(t, "deleted key", err)
	mustNil(t, m.Delete(ctx, "alice", "bob"))
	mustNil(t, m.Delete(ctx, "nobody", "nothing"))
	mustNil(t, m.Set(ctx, "alice", "carol", nil)) // nil deletes
	_, err = m.Get(ctx, "alice", "carol")
	wantNotFound(t, "key set to nil", err)
	all, err := m.All(ctx, "alice")
	mustNil(t, err)
	wantMap(t, "All after deletes", all, map[string]string{"empty": ""})

	in := []byte("original")
	mustNil(t, m.Set(ctx, "alice", "copy", in))
	copy(in, "MODIFIED")
	out, err := m.Get(ctx, "alice", "copy")
	mustNil(t, err)
	wantValue(t, "value after caller modified its slice", out, "original")
	copy(out, "MODIFIED")
	out, err = m.Get(ctx, "alice", "copy")
	mustNil(t, err)
	wantValue(t, "value after caller modified a returned slice", out, "original")
}

func testMapSetKeys(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	m := d.Map("example.org", "roster")
	mustNil(t, m.SetKeys(ctx, "alice", map[string][]byte{"a": []byte("1"), "b": []byte("2"), "c": []byte("3")}))
	all, err := m.All(ctx, "alice")
	mustNil(t, err)
	wantMap(t, "after first SetKeys", all, map[string]string{"a": "1", "b": "2", "c": "3"})

	// Overwrite one, delete one with nil, add one, delete a missing one.
	mustNil(t, m.SetKeys(ctx, "alice", map[string][]byte{"a": []byte("1b"), "b": nil, "d": []byte{}, "zz": nil}))
	all, err = m.All(ctx, "alice")
	mustNil(t, err)
	wantMap(t, "after second SetKeys", all, map[string]string{"a": "1b", "c": "3", "d": ""})

	mustNil(t, m.SetKeys(ctx, "alice", nil))
	mustNil(t, m.SetKeys(ctx, "alice", map[string][]byte{}))
	all, err = m.All(ctx, "alice")
	mustNil(t, err)
	wantMap(t, "after empty SetKeys", all, map[string]string{"a": "1b", "c": "3", "d": ""})

	// Only nils: deletes everything named.
	mustNil(t, m.SetKeys(ctx, "alice", map[string][]byte{"a": nil, "c": nil, "d": nil}))
	all, err = m.All(ctx, "alice")
	mustNil(t, err)
	wantMap(t, "after deleting every key", all, map[string]string{})

	// Many keys at once.
	many := map[string][]byte{}
	want := map[string]string{}
	for i := range 500 {
		k := fmt.Sprintf("contact%03d@example.net", i)
		many[k] = []byte(strconv.Itoa(i))
		want[k] = strconv.Itoa(i)
	}
	mustNil(t, m.SetKeys(ctx, "bob", many))
	all, err = m.All(ctx, "bob")
	mustNil(t, err)
	wantMap(t, "500 keys", all, want)

	// A cancelled SetKeys applies nothing.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := m.SetKeys(cctx, "bob", map[string][]byte{"contact000@example.net": nil, "new": []byte("x")}); err == nil {
		t.Error("SetKeys on a cancelled context succeeded")
	}
	all, err = m.All(ctx, "bob")
	mustNil(t, err)
	wantMap(t, "after cancelled SetKeys", all, want)
}

// testMapSetKeysAtomic checks readers never see half of a SetKeys.
func testMapSetKeysAtomic(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	m := d.Map("example.org", "state")
	keys := []string{"a", "b", "c", "d"}
	set := func(i int) map[string][]byte {
		kv := map[string][]byte{}
		for _, k := range keys {
			kv[k] = []byte(strconv.Itoa(i))
		}
		if i%2 == 1 {
			kv["odd"] = []byte(strconv.Itoa(i))
		} else {
			kv["odd"] = nil
		}
		return kv
	}
	mustNil(t, m.SetKeys(ctx, "alice", set(0)))
	const rounds = 200
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for i := 1; i <= rounds; i++ {
			if err := m.SetKeys(ctx, "alice", set(i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				all, err := m.All(ctx, "alice")
				if err != nil {
					t.Error(err)
					return
				}
				v := all["a"]
				for _, k := range keys {
					if !bytes.Equal(all[k], v) {
						t.Errorf("torn SetKeys: %q", all)
						return
					}
				}
				n, _ := strconv.Atoi(string(v))
				if odd, ok := all["odd"]; ok != (n%2 == 1) || (ok && !bytes.Equal(odd, v)) {
					t.Errorf("torn SetKeys (nil delete): %q", all)
					return
				}
			}
		}()
	}
	wg.Wait()
	all, err := m.All(ctx, "alice")
	mustNil(t, err)
	wantMap(t, "after the last SetKeys", all, map[string]string{"a": "200", "b": "200", "c": "200", "d": "200"})
}

func testMapAll(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	m := d.Map("example.org", "roster")
	all, err := m.All(ctx, "nobody")
	mustNil(t, err)
	wantMap(t, "All of an unknown user", all, map[string]string{})
	mustNil(t, m.Set(ctx, "alice", "b", []byte("2")))
	mustNil(t, m.Set(ctx, "alice", "a", []byte("1")))
	mustNil(t, m.Set(ctx, "alice", "ü", []byte("3")))
	mustNil(t, m.Set(ctx, "bob", "a", []byte("bob")))
	all, err = m.All(ctx, "alice")
	mustNil(t, err)
	wantMap(t, "All", all, map[string]string{"a": "1", "b": "2", "ü": "3"})
	for k := range all {
		all[k][0] = 'X' // must not reach the store
	}
	all, err = m.All(ctx, "alice")
	mustNil(t, err)
	wantMap(t, "All after modifying a returned value", all, map[string]string{"a": "1", "b": "2", "ü": "3"})
}

func testMapGetAll(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	m := d.Map("example.org", "lastlog")
	got, err := m.GetAll(ctx, "login")
	mustNil(t, err)
	wantMap(t, "GetAll of an empty store", got, map[string]string{})
	want := map[string]string{}
	for i := range 30 {
		u := fmt.Sprintf("user%02d", i)
		if i%3 != 0 {
			mustNil(t, m.Set(ctx, u, "login", []byte(u+"-login")))
			want[u] = u + "-login"
		}
		mustNil(t, m.Set(ctx, u, "logout", []byte(u+"-logout")))
	}
	mustNil(t, m.Set(ctx, "", "login", []byte("host")))
	want[""] = "host"
	mustNil(t, d.Map("example.org", "other").Set(ctx, "intruder", "login", []byte("x")))
	mustNil(t, d.Map("example.net", "lastlog").Set(ctx, "intruder", "login", []byte("x")))
	got, err = m.GetAll(ctx, "login")
	mustNil(t, err)
	wantMap(t, "GetAll", got, want)
	got, err = m.GetAll(ctx, "missing")
	mustNil(t, err)
	wantMap(t, "GetAll of a missing key", got, map[string]string{})
}

func testMapDeleteAll(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	m := d.Map("example.org", "lastlog")
	for _, u := range []string{"alice", "bob", "carol"} {
		mustNil(t, m.SetKeys(ctx, u, map[string][]byte{"login": []byte(u), "logout": []byte(u)}))
	}
	other := d.Map("example.org", "other")
	otherHost := d.Map("example.net", "lastlog")
	mustNil(t, other.Set(ctx, "alice", "login", []byte("keep")))
	mustNil(t, otherHost.Set(ctx, "alice", "login", []byte("keep")))

	mustNil(t, m.DeleteAll(ctx, "login"))
	mustNil(t, m.DeleteAll(ctx, "never-set"))
	got, err := m.GetAll(ctx, "login")
	mustNil(t, err)
	wantMap(t, "GetAll after DeleteAll", got, map[string]string{})
	got, err = m.GetAll(ctx, "logout")
	mustNil(t, err)
	wantMap(t, "other key after DeleteAll", got, map[string]string{"alice": "alice", "bob": "bob", "carol": "carol"})
	for _, s := range []storage.Map{other, otherHost} {
		v, err := s.Get(ctx, "alice", "login")
		mustNil(t, err)
		wantValue(t, "DeleteAll in another store/host", v, "keep")
	}
}

func testMapDeleteUser(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	m := d.Map("example.org", "roster")
	mustNil(t, m.SetKeys(ctx, "alice", map[string][]byte{"a": []byte("1"), "b": []byte("2")}))
	mustNil(t, m.SetKeys(ctx, "alicex", map[string][]byte{"a": []byte("1")})) // prefix of a name is another user
	mustNil(t, m.SetKeys(ctx, "bob", map[string][]byte{"a": []byte("1")}))
	mustNil(t, d.Map("example.org", "other").Set(ctx, "alice", "a", []byte("keep")))
	mustNil(t, d.Map("example.net", "roster").Set(ctx, "alice", "a", []byte("keep")))

	mustNil(t, m.DeleteUser(ctx, "alice"))
	mustNil(t, m.DeleteUser(ctx, "alice"))
	mustNil(t, m.DeleteUser(ctx, "nobody"))
	all, err := m.All(ctx, "alice")
	mustNil(t, err)
	wantMap(t, "All after DeleteUser", all, map[string]string{})
	for _, u := range []string{"alicex", "bob"} {
		all, err := m.All(ctx, u)
		mustNil(t, err)
		wantMap(t, u+" after DeleteUser(alice)", all, map[string]string{"a": "1"})
	}
	for _, s := range []storage.Map{d.Map("example.org", "other"), d.Map("example.net", "roster")} {
		v, err := s.Get(ctx, "alice", "a")
		mustNil(t, err)
		wantValue(t, "DeleteUser in another store/host", v, "keep")
	}
}

func testMapIsolation(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	type sc struct{ host, store string }
	scopes := []sc{{"example.org", "roster"}, {"example.org", "privacy"}, {"example.net", "roster"}, {"example.net", "privacy"}}
	for _, s := range scopes {
		mustNil(t, d.Map(s.host, s.store).SetKeys(ctx, "alice", map[string][]byte{
			"k":             []byte(s.host + "/" + s.store),
			s.host + "only": []byte("x"),
		}))
	}
	for _, s := range scopes {
		m := d.Map(s.host, s.store)
		all, err := m.All(ctx, "alice")
		mustNil(t, err)
		wantMap(t, "All in "+s.host+"/"+s.store, all, map[string]string{"k": s.host + "/" + s.store, s.host + "only": "x"})
		got, err := m.GetAll(ctx, "k")
		mustNil(t, err)
		wantMap(t, "GetAll in "+s.host+"/"+s.store, got, map[string]string{"alice": s.host + "/" + s.store})
	}
	// Deleting in one scope leaves the others alone.
	mustNil(t, d.Map("example.org", "roster").DeleteUser(ctx, "alice"))
	mustNil(t, d.Map("example.net", "privacy").DeleteAll(ctx, "k"))
	remaining := 0
	for _, s := range scopes {
		all, err := d.Map(s.host, s.store).All(ctx, "alice")
		mustNil(t, err)
		remaining += len(all)
	}
	if remaining != 5 {
		t.Errorf("keys left after scoped deletes: %d, want 5", remaining)
	}
	all, err := d.Map("example.net", "privacy").All(ctx, "alice")
	mustNil(t, err)
	keys := slices.Sorted(maps.Keys(all))
	if !slices.Equal(keys, []string{"example.netonly"}) {
		t.Errorf("keys in example.net/privacy = %q", keys)
	}
}
