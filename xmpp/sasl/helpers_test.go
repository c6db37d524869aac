package sasl

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// testBackend is an in-memory Backend with credentials derived once.
type testBackend struct {
	mu       sync.Mutex
	iter     int
	salt     []byte
	users    map[string]string // user → password
	locked   map[string]bool
	creds    map[string]Credentials
	err      error // returned by every call when set
	noCreds  bool  // locked users get zero Credentials
	noUserIt int   // Iter hint returned with ErrNoUser
}

func newTestBackend(users map[string]string) *testBackend {
	return &testBackend{
		iter:   4096,
		salt:   []byte("0123456789abcdef"),
		users:  users,
		locked: map[string]bool{},
		creds:  map[string]Credentials{},
	}
}

var errLockedTest = errors.Join(errors.New("test: locked"), ErrDisabled)

func (b *testBackend) Credentials(_ context.Context, user string, h Hash) (Credentials, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return Credentials{}, b.err
	}
	pw, ok := b.users[user]
	if !ok {
		return Credentials{Iter: b.noUserIt}, ErrNoUser
	}
	key := user + "\x00" + string(h)
	c, ok := b.creds[key]
	if !ok {
		var err error
		c, err = Derive(h, pw, b.salt, b.iter)
		if err != nil {
			return Credentials{}, err
		}
		b.creds[key] = c
	}
	if b.locked[user] {
		if b.noCreds {
			return Credentials{}, errLockedTest
		}
		return c, errLockedTest
	}
	return c, nil
}

func (b *testBackend) CheckPassword(_ context.Context, user, password string) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return false, b.err
	}
	pw, ok := b.users[user]
	if !ok {
		return false, ErrNoUser
	}
	p1, err1 := PrepPassword(pw)
	p2, err2 := PrepPassword(password)
	if err1 != nil || err2 != nil || p1 != p2 {
		return false, nil
	}
	if b.locked[user] {
		return false, errLockedTest
	}
	return true, nil
}

// wantFailure checks that err is a *Failure with the condition.
func wantFailure(t *testing.T, err error, cond string) *Failure {
	t.Helper()
	var f *Failure
	if !errors.As(err, &f) {
		t.Fatalf("error %v (%T), want *Failure %s", err, err, cond)
	}
	if f.Condition != cond {
		t.Fatalf("condition %q (%v), want %q", f.Condition, f, cond)
	}
	return f
}

func fixedNonce(s string) func() string { return func() string { return s } }
