package core

import (
	"sync"

	"github.com/metronome-xmpp/metronome/internal/c2s"
	"github.com/metronome-xmpp/metronome/module"
)

// directory maps bound JIDs to local sessions. Lookups take a read lock;
// binding and unbinding are rare compared to routing.
type directory struct {
	mu sync.RWMutex
	// users: bare JID → sessions in binding order, held as module.Session
	// so that modules get the slice itself, without a conversion.
	users map[string][]module.Session
	full  map[string]*c2s.Session
}

func newDirectory() *directory {
	return &directory{users: map[string][]module.Session{}, full: map[string]*c2s.Session{}}
}

func (d *directory) lookupFull(full string) *c2s.Session {
	d.mu.RLock()
	s := d.full[full]
	d.mu.RUnlock()
	return s
}

func (d *directory) sessions(bare string) []module.Session {
	d.mu.RLock()
	ss := d.users[bare]
	d.mu.RUnlock()
	return ss // never mutated in place: bind/unbind copy
}

func (d *directory) add(s *c2s.Session) {
	bare := s.JID().Bare().String()
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.users[bare]
	next := make([]module.Session, 0, len(old)+1)
	next = append(next, old...)
	d.users[bare] = append(next, s)
	d.full[s.JID().String()] = s
}

// remove unpublishes s; it reports false if s was already replaced or removed.
func (d *directory) remove(s *c2s.Session) bool {
	bare := s.JID().Bare().String()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.full[s.JID().String()] == s {
		delete(d.full, s.JID().String())
	}
	old := d.users[bare]
	next := make([]module.Session, 0, len(old))
	found := false
	for _, o := range old {
		if o == module.Session(s) {
			found = true
			continue
		}
		next = append(next, o)
	}
	if len(next) == 0 {
		delete(d.users, bare)
	} else {
		d.users[bare] = next
	}
	return found
}

func (d *directory) all(host string) []*c2s.Session {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var out []*c2s.Session
	for _, s := range d.full {
		if host == "" || s.Host() == host {
			out = append(out, s)
		}
	}
	return out
}

func (d *directory) count() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.full)
}
