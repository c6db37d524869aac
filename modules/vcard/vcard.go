// Package vcard implements XEP-0054 (vcard-temp, version 1.3.0) for user
// accounts: a user stores their vCard with an IQ set to their own account
// and anyone may retrieve it with an IQ get to the user's bare JID, which
// the server answers on the user's behalf (XEP-0054 §3.3).
//
//   - get by the owner: the stored vCard, or an empty <vCard/> (§3.1);
//   - get by anyone else: the stored vCard, or service-unavailable when
//     there is none or the account does not exist (the same error in both
//     cases, against directory harvesting, §3.3);
//   - set: only by the owner (others get forbidden, §3.2); a set with an
//     empty <vCard/> deletes the stored one; a vCard larger than max_size
//     (serialized) is refused with not-acceptable.
//
// Not implemented: the server's own vCard (IQs to the host fall through to
// service-unavailable), XEP-0153 avatar hashes in presence, XEP-0398
// conversion and XEP-0292 vCard4.
package vcard

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

// NS is the vcard-temp namespace (also the disco feature).
const NS = "vcard-temp"

const storeName = "vcard"

// DefaultMaxSize is max_size when not configured.
const DefaultMaxSize = 64 << 10

func init() { module.Register(VCard{}) }

// VCard is the vcard-temp module.
type VCard struct {
	// MaxSize bounds a stored vCard, in bytes of its XML serialization.
	// It accepts an integer or a string such as "64KB" or "1MB".
	MaxSize module.Size `json:"max_size"`

	h     module.Host
	store storage.KeyVal
}

// Info implements module.Module.
func (VCard) Info() module.Info {
	return module.Info{ID: "mod.vcard", New: func() module.Module { return &VCard{MaxSize: DefaultMaxSize} }}
}

// Validate implements module.Validator.
func (v *VCard) Validate() error {
	if v.MaxSize <= 0 {
		return errors.New("max_size: must be positive")
	}
	return nil
}

// Provision wires the module to the host.
func (v *VCard) Provision(h module.Host) error {
	v.h = h
	v.store = h.Store(storeName).KeyVal()
	h.AddFeature(NS)
	h.AddAccountFeature(NS)
	module.OnIQ(h, "bare", stanza.Get, NS, "vCard", event.PrioDefault, module.Bounded(v.handleGet))
	module.OnIQ(h, "bare", stanza.Set, NS, "vCard", event.PrioDefault, module.Bounded(v.handleSet))
	module.OnUserDeleted(h, v.userDeleted)
	return nil
}

func owner(ev *event.Event) bool {
	return !ev.From.IsZero() && ev.From.Bare() == ev.To.Bare()
}

func (v *VCard) handleGet(ctx context.Context, ev *event.Event) event.Verdict {
	user := ev.To.Bare()
	b, err := v.store.Get(ctx, user.Local())
	switch {
	case errors.Is(err, storage.ErrNotFound):
		if owner(ev) {
			return module.Reply(ctx, v.h, ev, stanza.New(NS, "vCard"))
		}
		return module.ReplyError(ctx, v.h, ev, stanza.Err(stanza.ServiceUnavailable))
	case err != nil:
		v.h.Logger().Error("vcard load failed", "user", user.String(), "err", err)
		return module.ReplyError(ctx, v.h, ev, stanza.Err(stanza.InternalServerError))
	}
	el, err := xmlstream.ParseNS(b, NS)
	if err != nil {
		v.h.Logger().Error("stored vcard unreadable", "user", user.String(), "err", err)
		return module.ReplyError(ctx, v.h, ev, stanza.Err(stanza.InternalServerError))
	}
	return module.Reply(ctx, v.h, ev, el)
}

func (v *VCard) handleSet(ctx context.Context, ev *event.Event) event.Verdict {
	if !owner(ev) {
		return module.ReplyError(ctx, v.h, ev, stanza.Err(stanza.Forbidden))
	}
	user := ev.To.Bare()
	card := ev.Stanza.FirstChild()
	var err error
	if card.FirstChild() == nil && strings.TrimSpace(card.Text()) == "" {
		err = v.store.Delete(ctx, user.Local())
	} else {
		// Stored with its xmlns so that the value stands on its own.
		b := card.Append(nil, "")
		if len(b) > int(v.MaxSize) {
			return module.ReplyError(ctx, v.h, ev, stanza.ErrText(stanza.NotAcceptable,
				fmt.Sprintf("vCard too large (%d bytes, at most %d)", len(b), int(v.MaxSize))))
		}
		err = v.store.Set(ctx, user.Local(), b)
	}
	if err != nil {
		v.h.Logger().Error("vcard save failed", "user", user.String(), "err", err)
		return module.ReplyError(ctx, v.h, ev, stanza.Err(stanza.InternalServerError))
	}
	return module.Reply(ctx, v.h, ev, nil)
}

func (v *VCard) userDeleted(ctx context.Context, user jid.JID) {
	if err := v.store.Delete(ctx, user.Local()); err != nil {
		v.h.Logger().Error("vcard purge failed", "user", user.String(), "err", err)
	}
}
