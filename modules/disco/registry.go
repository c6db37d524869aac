package disco

import (
	"context"
	"slices"
	"sync"

	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// ProvideName is the name under which the Registry is published on each host
// (Host.Provide / Host.Lookup).
const ProvideName = "disco"

// NodeFunc answers disco#info or disco#items for a node, for the requesting
// entity from. It returns the children of the <query/> element: identities
// and features (and XEP-0128 forms) for disco#info, <item/> elements for
// disco#items. An error that is a stanza.Error is sent to the requester as
// is (e.g. forbidden); any other error becomes internal-server-error.
//
// The registry's methods use only unnamed function types so that a module
// can declare a matching interface without importing this package.
type NodeFunc = func(ctx context.Context, from jid.JID) ([]*stanza.Element, error)

// AccountItemsFunc adds items to the disco#items of a user's bare JID
// (queried by from, who is the user or a contact allowed to see them).
type AccountItemsFunc = func(ctx context.Context, user, from jid.JID) ([]*stanza.Element, error)

type node struct {
	id          uint64
	info, items NodeFunc
}

type item struct {
	id              uint64
	jid, node, name string
}

type accountItems struct {
	id uint64
	fn AccountItemsFunc
}

// Registry lets other modules of a host add disco nodes and items. It is
// published with Host.Provide(ProvideName, *Registry). A consumer declares
// only what it uses, for instance the adhoc module:
//
//	type discoNodes interface {
//		AddNode(node string, info, items func(context.Context, jid.JID) ([]*stanza.Element, error)) (remove func())
//	}
//
// Everything registered lives as long as the disco instance of the host's
// current configuration generation: a reload provisions a fresh registry
// and the modules register again.
type Registry struct {
	mu      sync.RWMutex
	seq     uint64
	nodes   map[string]node
	items   []item
	account []accountItems
}

func newRegistry() *Registry { return &Registry{nodes: map[string]node{}} }

// AddNode makes node answer disco#info with info and disco#items with items
// on the host's JID. Either may be nil: a nil info answers item-not-found;
// a nil items answers an empty list. A later AddNode for the same node
// replaces the earlier one. remove unregisters it.
func (r *Registry) AddNode(nodeName string, info, items func(ctx context.Context, from jid.JID) ([]*stanza.Element, error)) (remove func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	id := r.seq
	r.nodes[nodeName] = node{id: id, info: info, items: items}
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if n, ok := r.nodes[nodeName]; ok && n.id == id {
			delete(r.nodes, nodeName)
		}
	}
}

// AddItem adds an item (e.g. a component or a service JID) to the host's
// disco#items without node. node and name may be empty.
func (r *Registry) AddItem(itemJID, nodeName, name string) (remove func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	id := r.seq
	r.items = append(r.items, item{id: id, jid: itemJID, node: nodeName, name: name})
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.items = slices.DeleteFunc(r.items, func(it item) bool { return it.id == id })
	}
}

// AddAccountItems adds a provider of items for users' bare JIDs (disco#items
// without node), e.g. PEP nodes. It is called only for an existing user and
// a requester allowed to see the account (the user or a contact with a
// presence subscription).
func (r *Registry) AddAccountItems(fn func(ctx context.Context, user, from jid.JID) ([]*stanza.Element, error)) (remove func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	id := r.seq
	r.account = append(r.account, accountItems{id: id, fn: fn})
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.account = slices.DeleteFunc(r.account, func(a accountItems) bool { return a.id == id })
	}
}

func (r *Registry) node(name string) (node, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n, ok := r.nodes[name]
	return n, ok
}

func (r *Registry) hostItems() []item {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.items)
}

func (r *Registry) accountProviders() []AccountItemsFunc {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]AccountItemsFunc, len(r.account))
	for i, a := range r.account {
		out[i] = a.fn
	}
	return out
}
