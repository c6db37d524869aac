package account

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/xmpp/sasl"
	"github.com/xdg-go/scram"
)

// memKV is a map-backed storage.KeyVal.
type memKV struct {
	mu   sync.Mutex
	m    map[string][]byte
	sets int
	fail error // returned by Set/SetMany when set
}

func newMemKV() *memKV { return &memKV{m: map[string][]byte{}} }

func (kv *memKV) Get(_ context.Context, user string) ([]byte, error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	v, ok := kv.m[user]
	if !ok {
		return nil, storage.ErrNotFound
	}
	return slices.Clone(v), nil
}

func (kv *memKV) Set(_ context.Context, user string, value []byte) error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if kv.fail != nil {
		return kv.fail
	}
	kv.sets++
	kv.m[user] = slices.Clone(value)
	return nil
}

func (kv *memKV) Delete(_ context.Context, user string) error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	delete(kv.m, user)
	return nil
}

func (kv *memKV) Users(context.Context) iter.Seq2[string, error] {
	kv.mu.Lock()
	users := slices.Collect(maps.Keys(kv.m))
	kv.mu.Unlock()
	return func(yield func(string, error) bool) {
		for _, u := range users {
			if !yield(u, nil) {
				return
			}
		}
	}
}

// bulkKV adds SetMany.
type bulkKV struct {
	*memKV
	calls, max int
}

func (kv *bulkKV) SetMany(_ context.Context, values map[string][]byte) error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if kv.fail != nil {
		return kv.fail
	}
	kv.calls++
	kv.max = max(kv.max, len(values))
	for u, v := range values {
		kv.m[u] = slices.Clone(v)
	}
	return nil
}

var _ storage.BulkSetter = (*bulkKV)(nil)

// login runs a SCRAM exchange with the xdg-go/scram client against m.
func login(t *testing.T, m *Manager, h sasl.Hash, user, password string) error {
	t.Helper()
	gen := map[sasl.Hash]scram.HashGeneratorFcn{sasl.SHA1: scram.SHA1, sasl.SHA256: scram.SHA256, sasl.SHA512: scram.SHA512}[h]
	client, err := gen.NewClient(user, password, "")
	if err != nil {
		t.Fatal(err)
	}
	conv := client.NewConversation()
	srv, err := sasl.Config{Backend: m}.NewServer(h.Mechanism(false))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	msg, _ := conv.Step("")
	for {
		out, done, err := srv.Step(ctx, []byte(msg))
		if err != nil {
			return err
		}
		if msg, err = conv.Step(string(out)); err != nil {
			t.Fatalf("client: %v", err)
		}
		if done {
			if !conv.Valid() {
				t.Fatal("server signature invalid")
			}
			return nil
		}
	}
}

func plain(m *Manager, user, password string) error {
	srv, err := sasl.Config{Backend: m, TLS: true}.NewServer("PLAIN")
	if err != nil {
		return err
	}
	_, _, err = srv.Step(context.Background(), []byte("\x00"+user+"\x00"+password))
	return err
}

func condition(err error) string {
	var f *sasl.Failure
	if errors.As(err, &f) {
		return f.Condition
	}
	return fmt.Sprint(err)
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	kv := newMemKV()
	m := New(kv, Options{Iterations: 10}) // raised to 4096
	now := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	m.now = func() time.Time { return now }

	if err := m.Create(ctx, "juliet", "s3cret pass"); err != nil {
		t.Fatal(err)
	}
	if err := m.Create(ctx, "juliet", "other"); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate Create: %v", err)
	}
	for _, bad := range []string{"", "Juliet", "a@b", "a b"} {
		if err := m.Create(ctx, bad, "pw"); !errors.Is(err, ErrInvalidUser) {
			t.Errorf("Create(%q): %v", bad, err)
		}
	}
	if err := m.Create(ctx, "romeo", ""); !errors.Is(err, ErrInvalidPassword) {
		t.Fatalf("empty password: %v", err)
	}

	// The stored record: keys only, no password.
	raw := kv.m["juliet"]
	if strings.Contains(string(raw), "s3cret") {
		t.Fatal("password stored in clear")
	}
	var rec map[string]any
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	if rec["v"] != 1.0 || rec["created"] != "2025-03-04T05:06:07Z" || rec["locked"] != false {
		t.Fatalf("record %s", raw)
	}
	sc := rec["scram"].(map[string]any)
	if len(sc) != 3 {
		t.Fatalf("scram keys %v", sc)
	}
	salts := map[string]bool{}
	for _, h := range []string{"SHA-1", "SHA-256", "SHA-512"} {
		k := sc[h].(map[string]any)
		if k["iter"] != 4096.0 || k["salt"] == "" || k["stored"] == "" || k["server"] == "" {
			t.Fatalf("%s keys %v", h, k)
		}
		salts[k["salt"].(string)] = true
	}
	if len(salts) != 3 {
		t.Fatal("salts shared between hashes")
	}
	if c, _ := m.Created(ctx, "juliet"); !c.Equal(now) {
		t.Fatalf("Created = %v", c)
	}

	for _, h := range sasl.Hashes {
		if err := login(t, m, h, "Juliet", "s3cret pass"); err != nil {
			t.Fatalf("%s login: %v", h, err)
		}
		if c := condition(login(t, m, h, "juliet", "wrong")); c != sasl.NotAuthorized {
			t.Fatalf("%s wrong password: %s", h, c)
		}
		if c := condition(login(t, m, h, "nobody", "wrong")); c != sasl.NotAuthorized {
			t.Fatalf("%s unknown user: %s", h, c)
		}
	}
	if err := plain(m, "juliet", "s3cret pass"); err != nil {
		t.Fatal(err)
	}
	if c := condition(plain(m, "juliet", "wrong")); c != sasl.NotAuthorized {
		t.Fatal(c)
	}
	if c := condition(plain(m, "nobody", "wrong")); c != sasl.NotAuthorized {
		t.Fatal(c)
	}

	// Lock.
	if err := m.SetLocked(ctx, "juliet", true); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Credentials(ctx, "juliet", sasl.SHA256); !errors.Is(err, ErrLocked) || !errors.Is(err, sasl.ErrDisabled) {
		t.Fatalf("Credentials on locked: %v", err)
	}
	if err := login(t, m, sasl.SHA256, "juliet", "s3cret pass"); condition(err) != sasl.AccountDisabled || !errors.Is(err, ErrLocked) {
		t.Fatalf("locked login: %v", err)
	}
	if c := condition(login(t, m, sasl.SHA256, "juliet", "wrong")); c != sasl.NotAuthorized {
		t.Fatalf("locked, wrong password: %s", c)
	}
	if c := condition(plain(m, "juliet", "s3cret pass")); c != sasl.AccountDisabled {
		t.Fatalf("locked PLAIN: %s", c)
	}
	if c := condition(plain(m, "juliet", "wrong")); c != sasl.NotAuthorized {
		t.Fatalf("locked PLAIN, wrong password: %s", c)
	}
	if l, _ := m.Locked(ctx, "juliet"); !l {
		t.Fatal("not locked")
	}

	// Password change keeps the lock and the creation time.
	if err := m.SetPassword(ctx, "juliet", "n€w"); err != nil {
		t.Fatal(err)
	}
	m.SetLocked(ctx, "juliet", false)
	if err := login(t, m, sasl.SHA512, "juliet", "n€w"); err != nil {
		t.Fatal(err)
	}
	if c := condition(login(t, m, sasl.SHA512, "juliet", "s3cret pass")); c != sasl.NotAuthorized {
		t.Fatal(c)
	}
	if c, _ := m.Created(ctx, "juliet"); !c.Equal(now) {
		t.Fatalf("Created after SetPassword = %v", c)
	}
	if err := m.SetPassword(ctx, "nobody", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if err := m.SetLocked(ctx, "nobody", true); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}

	m.Create(ctx, "alice", "pw")
	kv.m[""] = []byte("host data")
	if users, err := m.Users(ctx); err != nil || !slices.Equal(users, []string{"alice", "juliet"}) {
		t.Fatalf("Users = %v, %v", users, err)
	}
	if ok, _ := m.Exists(ctx, "alice"); !ok {
		t.Fatal("alice missing")
	}
	if err := m.Delete(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := m.Exists(ctx, "alice"); ok {
		t.Fatal("alice still exists")
	}
	if err := m.Delete(ctx, "alice"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
}

func TestHashesOption(t *testing.T) {
	ctx := context.Background()
	kv := newMemKV()
	m := New(kv, Options{Hashes: []sasl.Hash{sasl.SHA512, "MD5", sasl.SHA512}, Iterations: 5000})
	if err := m.Create(ctx, "u", "pw"); err != nil {
		t.Fatal(err)
	}
	var rec record
	json.Unmarshal(kv.m["u"], &rec)
	if len(rec.SCRAM) != 1 || rec.SCRAM[sasl.SHA512].Iter != 5000 {
		t.Fatalf("record %s", kv.m["u"])
	}
	if err := login(t, m, sasl.SHA512, "u", "pw"); err != nil {
		t.Fatal(err)
	}
	// No SHA-1 keys: the SHA-1 exchange fails like an unknown user.
	if c := condition(login(t, m, sasl.SHA1, "u", "pw")); c != sasl.NotAuthorized {
		t.Fatal(c)
	}
	if c, err := m.Credentials(ctx, "u", sasl.SHA1); !errors.Is(err, sasl.ErrNoUser) || c.Iter != 5000 {
		t.Fatalf("Credentials: %v %v", c, err)
	}
	// PLAIN falls back to the stored hash.
	if err := plain(m, "u", "pw"); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptRecord(t *testing.T) {
	ctx := context.Background()
	kv := newMemKV()
	m := New(kv, Options{})
	kv.m["bad"] = []byte("{")
	kv.m["future"] = []byte(`{"v":2}`)
	for _, u := range []string{"bad", "future"} {
		if _, err := m.Credentials(ctx, u, sasl.SHA256); err == nil || errors.Is(err, sasl.ErrNoUser) {
			t.Fatalf("%s: %v", u, err)
		}
		if c := condition(login(t, m, sasl.SHA256, u, "x")); c != sasl.TemporaryAuthFailure {
			t.Fatalf("%s: %s", u, c)
		}
	}
}

func TestCreateMany(t *testing.T) {
	ctx := context.Background()
	for _, bulk := range []bool{false, true} {
		t.Run(fmt.Sprintf("bulk=%v", bulk), func(t *testing.T) {
			mem := newMemKV()
			var kv storage.KeyVal = mem
			var bkv *bulkKV
			if bulk {
				bkv = &bulkKV{memKV: mem}
				kv = bkv
			}
			m := New(kv, Options{Hashes: []sasl.Hash{sasl.SHA256}})
			if err := m.Create(ctx, "existing", "pw"); err != nil {
				t.Fatal(err)
			}
			accounts := map[string]string{"existing": "other"}
			for i := range 150 {
				accounts[fmt.Sprintf("user%03d", i)] = fmt.Sprintf("pw%d", i)
			}
			created, err := m.CreateMany(ctx, accounts)
			if created != 150 || !errors.Is(err, ErrExists) {
				t.Fatalf("CreateMany = %d, %v", created, err)
			}
			if bulk && (bkv.calls != 1 || mem.sets != 1) {
				t.Fatalf("SetMany calls %d, Set calls %d", bkv.calls, mem.sets)
			}
			if !bulk && mem.sets != 151 {
				t.Fatalf("Set calls %d", mem.sets)
			}
			users, _ := m.Users(ctx)
			if len(users) != 151 {
				t.Fatalf("%d users", len(users))
			}
			if err := login(t, m, sasl.SHA256, "user042", "pw42"); err != nil {
				t.Fatal(err)
			}
			if err := login(t, m, sasl.SHA256, "existing", "pw"); err != nil {
				t.Fatal("existing account overwritten")
			}
			// Small batch, all new: no error.
			if n, err := m.CreateMany(ctx, map[string]string{"a": "1", "b": "2"}); n != 2 || err != nil {
				t.Fatalf("CreateMany = %d, %v", n, err)
			}
		})
	}

	m := New(newMemKV(), Options{})
	if n, err := m.CreateMany(ctx, map[string]string{"ok": "pw", "Bad": "pw"}); n != 0 || !errors.Is(err, ErrInvalidUser) {
		t.Fatalf("invalid user: %d %v", n, err)
	}
	if n, err := m.CreateMany(ctx, map[string]string{"ok": "pw", "bad": ""}); n != 0 || !errors.Is(err, ErrInvalidPassword) {
		t.Fatalf("invalid password: %d %v", n, err)
	}
	if users, _ := m.Users(ctx); len(users) != 0 {
		t.Fatalf("partial write on validation error: %v", users)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.CreateMany(cctx, map[string]string{"ok": "pw"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
	boom := errors.New("disk full")
	kv := newMemKV()
	kv.fail = boom
	m = New(kv, Options{})
	if _, err := m.CreateMany(ctx, map[string]string{"ok": "pw"}); !errors.Is(err, boom) {
		t.Fatalf("storage error: %v", err)
	}
}

func TestConcurrentCreate(t *testing.T) {
	ctx := context.Background()
	m := New(newMemKV(), Options{Hashes: []sasl.Hash{sasl.SHA1}})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() { errs <- m.Create(ctx, "same", "pw") })
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrExists):
			t.Fatal(err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d creations succeeded", ok)
	}
}

// BenchmarkCreateMany creates b.N accounts in one CreateMany call (default
// 4096 iterations); accounts/s is the wall-clock throughput on all CPUs and
// cpu-ms/account the CPU time each account costs.
func BenchmarkCreateMany(b *testing.B) {
	for _, tc := range []struct {
		name   string
		hashes []sasl.Hash
	}{
		{"all", nil},
		{"SHA-256", []sasl.Hash{sasl.SHA256}},
		{"SHA-1+SHA-256", []sasl.Hash{sasl.SHA1, sasl.SHA256}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			accounts := make(map[string]string, b.N)
			for i := range b.N {
				accounts[fmt.Sprintf("user%d", i)] = fmt.Sprintf("password %d", i)
			}
			m := New(&bulkKV{memKV: newMemKV()}, Options{Hashes: tc.hashes})
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			n, err := m.CreateMany(context.Background(), accounts)
			elapsed, cpu := time.Since(start), cpuTime()-cpu0
			if err != nil || n != b.N {
				b.Fatal(n, err)
			}
			b.ReportMetric(float64(n)/elapsed.Seconds(), "accounts/s")
			if cpu > 0 {
				// CPU cost per account: independent of other load on the
				// machine; accounts/s on k idle cores ≈ k*1000/cpu-ms.
				b.ReportMetric(cpu.Seconds()*1000/float64(n), "cpu-ms/account")
			}
		})
	}
}
