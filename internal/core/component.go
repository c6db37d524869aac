package core

import (
	"fmt"
	"strings"

	"github.com/metronome-xmpp/metronome/xmpp/jid"
)

// Component hosts.
//
// A [component."conference.example.org"] section served by an internal
// module (module = "muc") becomes a host of its own: a routable local
// domain with its own event bus and module generation, but no accounts and no client logins (LookupHost hides it from c2s, so a stream
// to that domain gets host-unknown). Stanzas from local users reach it
// through the ordinary router: route() finds the component's host like any
// other and fires stanza/in, iq/<dest>/<ns>:<name> and <kind>/<dest> on its
// bus, which the component module hooks. Extension modules listed in the
// component's modules = [...] are loaded on the same host after it.
//
// On a component host, module.Host.Accounts() is nil and CreateUser /
// DeleteUser fail; a module can use the nil account manager to recognise
// that it runs as a component.
//
// After every apply (start and reload) each component is listed in the
// disco#items of its parent host (the domain without the first label,
// "example.org" for "conference.example.org") through the registry the
// disco module publishes there (Host.Provide("disco")), named after the
// component's first disco identity.
//
// External components (XEP-0114, module = "external") are not implemented
// yet: such sections are skipped with a warning.

// ComponentOptions configures one component host.
type ComponentOptions struct {
	// Name is the component's domain (lowercase).
	Name string
	// Module is the configuration name of the module that serves it.
	Module string
	// Modules are more modules loaded on the component host after Module,
	// extensions hooking its events; their options are the global ones
	// ([modules.<name>], Options.DecodeModule with no host).
	Modules []string
}

// externalModule is the module name of XEP-0114 components, reserved for
// the future internal/component package.
const externalModule = "external"

// buildComponent returns the host of component co (the existing one, or a
// new one) and a freshly provisioned generation with its module and
// extensions. A nil host with a nil error means the component is skipped.
// An existing host is not modified (its component field is read without
// locks).
func (s *Server) buildComponent(co ComponentOptions, existing map[string]*host, opts *Options) (*host, *generation, bool, error) {
	if co.Module == externalModule {
		s.log.Warn("external components are not supported yet; component skipped", "component", co.Name)
		return nil, nil, false, nil
	}
	h, ok := existing[co.Name]
	if ok && h.component == "" {
		return nil, nil, false, fmt.Errorf("component %q: it is a virtual host in the running configuration; restart the server to turn it into a component", co.Name)
	}
	isNew := !ok
	if isNew {
		hj, err := jid.Parse(co.Name)
		if err != nil || hj.Local() != "" || hj.Resource() != "" {
			return nil, nil, false, fmt.Errorf("component %q: not a domain name", co.Name)
		}
		h = &host{srv: s, name: hj.Domain(), jid: hj, component: co.Module,
			log: s.log.With("host", hj.Domain(), "component", co.Module)}
	}
	dec := func(_, name string, dst any) error {
		switch {
		case name == co.Module && opts.DecodeComponent != nil:
			return opts.DecodeComponent(co.Name, dst)
		case name != co.Module && opts.DecodeModule != nil:
			// Extensions take their options from [modules.<name>].
			return opts.DecodeModule("", name, dst)
		}
		return nil
	}
	pos := func(_, name string, err error) error {
		return fmt.Errorf("component %q (module %q): %w", co.Name, name, err)
	}
	g, err := h.buildGeneration(append([]string{co.Module}, co.Modules...), dec, pos)
	if err != nil {
		return nil, nil, false, err
	}
	return h, g, isNew, nil
}

// discoItems is what the core uses of the registry the disco module
// publishes on a host (modules/disco Registry.AddItem).
type discoItems interface {
	AddItem(itemJID, node, name string) (remove func())
}

// parentHost returns the virtual host a component is listed under: its
// domain without the first label, if that is a virtual host of hosts.
func parentHost(component string, hosts map[string]*host) *host {
	_, parent, ok := strings.Cut(component, ".")
	if !ok {
		return nil
	}
	if p := hosts[parent]; p != nil && p.component == "" {
		return p
	}
	return nil
}

// linkComponents adds every component of hosts to the disco#items of its
// parent host. The registries belong to the generations just swapped in,
// so the items live exactly as long as them.
func (s *Server) linkComponents(hosts map[string]*host) {
	for _, c := range hosts {
		if c.component == "" {
			continue
		}
		p := parentHost(c.name, hosts)
		if p == nil {
			continue
		}
		g := p.gen.Load()
		g.mu.Lock()
		reg, _ := g.provided["disco"].(discoItems)
		g.mu.Unlock()
		if reg == nil {
			continue
		}
		name := ""
		if ids := c.disco().Identities; len(ids) > 0 {
			name = ids[0].Name
		}
		reg.AddItem(c.name, "", name)
	}
}

// isComponent reports whether h is a component host.
func (h *host) isComponent() bool { return h != nil && h.component != "" }

// lookupVirtualHost returns the virtual host (not a component) for domain.
func (s *Server) lookupVirtualHost(domain string) *host {
	if h := s.lookupHost(domain); h != nil && h.component == "" {
		return h
	}
	return nil
}
