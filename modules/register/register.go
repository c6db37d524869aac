// Package register implements XEP-0077 In-Band Registration (version 2.4)
// for the host: account registration before authentication (§3.1, §3.1.1,
// with the legacy fields and the jabber:iq:register data form of §4),
// password change (§3.3, also through the jabber:iq:register:changepassword
// form) and account removal (§3.2) by the logged-in user, and the
// iq-register stream feature (§8).
//
// Registration is off by default (allow_registration): while it is off,
// pre-authentication requests get service-unavailable, as §3.1 requires of
// a host that does not support in-band registration, and no stream feature
// is offered. Password change and removal are always available to a
// logged-in user over an encrypted stream.
//
// On success the module fires user/created; on removal it deletes the
// account, fires user/deleted (so that other modules delete the user's
// data), sends the result and then closes every session of the user with a
// <not-authorized/> stream error (§3.2).
//
// Not implemented: registration of remote entities with this host (only
// local clients may register or change their account), CAPTCHAs
// (XEP-0158), email or other extra fields, out-of-band redirection.
package register

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/metronome-xmpp/metronome/account"
	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// Namespaces.
const (
	NS        = "jabber:iq:register"
	NSFeature = "http://jabber.org/features/iq-register"
	NSData    = "jabber:x:data"
	// FormChangePassword is the FORM_TYPE of the §3.3 password change form.
	FormChangePassword = "jabber:iq:register:changepassword"
)

func init() { module.Register(new(Register)) }

// Register is the module and its configuration ([modules.register]).
type Register struct {
	// AllowRegistration enables account creation before authentication.
	AllowRegistration bool `json:"allow_registration"`
	// MinPasswordLength is the minimum length, in characters, of new passwords.
	MinPasswordLength int `json:"min_password_length"`
	// BlockedUsernames cannot be registered (answered as if taken).
	BlockedUsernames []string `json:"blocked_usernames"`
	// ThrottleMax is how many accounts one IP address may register per
	// ThrottlePeriod (0 disables the limit).
	ThrottleMax int `json:"throttle_max"`
	// ThrottlePeriod is the window of ThrottleMax.
	ThrottlePeriod module.Duration `json:"throttle_period"`
	// Instructions is the text sent with the registration form.
	Instructions string `json:"instructions"`

	h       module.Host
	blocked map[string]bool

	mu       sync.Mutex
	attempts map[string][]time.Time // per IP: times of successful registrations
	now      func() time.Time
}

// Info implements module.Module.
func (*Register) Info() module.Info {
	return module.Info{ID: "mod.register", New: func() module.Module {
		return &Register{
			MinPasswordLength: 8,
			BlockedUsernames:  []string{"admin", "administrator", "root", "postmaster", "hostmaster", "webmaster", "abuse", "security", "support"},
			ThrottleMax:       3,
			ThrottlePeriod:    module.Duration(time.Hour),
			Instructions:      "Choose a username and password to register with this server.",
		}
	}}
}

// Validate implements module.Validator.
func (r *Register) Validate() error {
	if r.MinPasswordLength < 0 {
		return errors.New("min_password_length: must not be negative")
	}
	if r.ThrottleMax < 0 {
		return errors.New("throttle_max: must not be negative")
	}
	if r.ThrottleMax > 0 && r.ThrottlePeriod <= 0 {
		return errors.New("throttle_period: must be positive when throttle_max is set")
	}
	return nil
}

// Provision implements module.Provisioner.
func (r *Register) Provision(h module.Host) error {
	// The core validates after provisioning; the ticker below needs a
	// positive period, so check first.
	if err := r.Validate(); err != nil {
		return err
	}
	r.h = h
	if r.now == nil {
		r.now = time.Now
	}
	r.attempts = map[string][]time.Time{}
	r.blocked = map[string]bool{}
	for _, u := range r.BlockedUsernames {
		j, err := jid.New(u, h.Name(), "")
		if err != nil {
			return fmt.Errorf("blocked_usernames: %q: %w", u, err)
		}
		r.blocked[j.Local()] = true
	}
	h.AddFeature(NS)
	if r.AllowRegistration {
		h.AddStreamFeature(stanza.New(NSFeature, "register"), true)
	}
	module.OnIQ(h, "host", stanza.Get, NS, "query", event.PrioDefault, r.handle)
	module.OnIQ(h, "host", stanza.Set, NS, "query", event.PrioDefault, r.handle)
	// A logged-in client usually sends its request without 'to', which the
	// core treats as addressed to the account's bare JID.
	own := func(ctx context.Context, ev *event.Event) event.Verdict {
		if !ev.From.Bare().Equal(ev.To.Bare()) {
			return event.Continue
		}
		return r.handle(ctx, ev)
	}
	module.OnIQ(h, "bare", stanza.Get, NS, "query", event.PrioDefault, own)
	module.OnIQ(h, "bare", stanza.Set, NS, "query", event.PrioDefault, own)
	if r.ThrottleMax > 0 {
		h.Every(time.Duration(r.ThrottlePeriod), func(context.Context) { r.pruneAttempts() })
	}
	return nil
}

// handle dispatches a jabber:iq:register request by who sent it.
func (r *Register) handle(ctx context.Context, ev *event.Event) event.Verdict {
	s, ok := module.SessionOf(ev)
	if !ok {
		// Remote entities cannot register with or change accounts here.
		return module.ReplyError(ctx, r.h, ev, stanza.Err(stanza.ServiceUnavailable))
	}
	if s.JID().IsZero() {
		return r.preAuth(ctx, ev, s)
	}
	if s.JID().Domain() != r.h.Name() {
		// A user of another local host: not an account of this one.
		return module.ReplyError(ctx, r.h, ev, stanza.Err(stanza.NotAllowed))
	}
	if ev.Stanza.Type() == stanza.Get {
		return r.registered(ctx, ev, s)
	}
	q := ev.Stanza.FirstChild()
	if q.Child(NS, "remove") != nil {
		return r.remove(ctx, ev, s)
	}
	return r.changePassword(ctx, ev, s)
}

// fields extracts the submitted values: the legacy child elements, or a
// submitted data form (which wins when present), and its FORM_TYPE.
func fields(q *stanza.Element) (vals map[string]string, formType string) {
	vals = map[string]string{}
	if x := q.Child(NSData, "x"); x != nil && (x.Attr("type") == "submit" || x.Attr("type") == "") {
		for f := range x.Elements {
			if f.Name != "field" || f.Space != NSData {
				continue
			}
			var parts []string
			for v := range f.Elements {
				if v.Name == "value" && v.Space == NSData {
					parts = append(parts, v.Text())
				}
			}
			if f.Attr("var") == "FORM_TYPE" {
				if len(parts) > 0 {
					formType = parts[0]
				}
				continue
			}
			vals[f.Attr("var")] = strings.Join(parts, "\n")
		}
		return vals, formType
	}
	for c := range q.Elements {
		if c.Space == NS {
			vals[c.Name] = c.Text()
		}
	}
	return vals, ""
}

// has reports whether the legacy field or form field name was submitted.
func has(q *stanza.Element, vals map[string]string, name string) bool {
	if _, ok := vals[name]; ok {
		return true
	}
	return q.Child(NS, name) != nil
}

// replyErr answers with an error without echoing the request's payload:
// §3.3 says not to return the original XML of password changes, and the
// same holds for registration requests carrying passwords.
func (r *Register) replyErr(ctx context.Context, ev *event.Event, e stanza.Error) event.Verdict {
	stripped := ev.Stanza.ShallowCopy()
	stripped.Children = nil
	cp := *ev
	cp.Stanza = stripped
	return module.ReplyError(ctx, r.h, &cp, e)
}

// form is the registration data form (§4).
func (r *Register) form() *stanza.Element {
	x := stanza.New(NSData, "x", "type", "form")
	x.AddChild(stanza.New(NSData, "title")).AddText("Account registration")
	x.AddChild(stanza.New(NSData, "instructions")).AddText(r.Instructions)
	ft := x.AddChild(stanza.New(NSData, "field", "type", "hidden", "var", "FORM_TYPE"))
	ft.AddChild(stanza.New(NSData, "value")).AddText(NS)
	u := x.AddChild(stanza.New(NSData, "field", "type", "text-single", "var", "username", "label", "Username"))
	u.AddChild(stanza.New(NSData, "required"))
	p := x.AddChild(stanza.New(NSData, "field", "type", "text-private", "var", "password", "label", "Password"))
	p.AddChild(stanza.New(NSData, "required"))
	return x
}

// preAuth handles requests of a client that has not authenticated yet.
func (r *Register) preAuth(ctx context.Context, ev *event.Event, s module.Session) event.Verdict {
	if !r.AllowRegistration {
		// §3.1: a host without in-band registration MUST answer service-unavailable.
		return module.ReplyError(ctx, r.h, ev, stanza.Err(stanza.ServiceUnavailable))
	}
	if ev.Stanza.Type() == stanza.Get {
		q := stanza.New(NS, "query")
		q.AddChild(stanza.New(NS, "instructions")).AddText(r.Instructions)
		q.AddChild(stanza.New(NS, "username"))
		q.AddChild(stanza.New(NS, "password"))
		q.AddChild(r.form())
		return module.Reply(ctx, r.h, ev, q)
	}
	q := ev.Stanza.FirstChild()
	if q.Child(NS, "remove") != nil {
		// §3.2 error table: not registered with this server yet.
		return r.replyErr(ctx, ev, stanza.Err(stanza.UnexpectedRequest))
	}
	vals, formType := fields(q)
	if formType != "" && formType != NS {
		return r.replyErr(ctx, ev, stanza.ErrText(stanza.BadRequest, "unknown form type"))
	}
	username, password := vals["username"], vals["password"]
	if username == "" || password == "" {
		// §3.1: missing or empty fields are not-acceptable.
		return r.replyErr(ctx, ev, stanza.ErrText(stanza.NotAcceptable, "username and password are required"))
	}
	j, err := jid.New(username, r.h.Name(), "")
	if err != nil {
		return r.replyErr(ctx, ev, stanza.ErrText(stanza.JIDMalformed, "invalid username"))
	}
	user := j.Local()
	if len([]rune(password)) < r.MinPasswordLength {
		return r.replyErr(ctx, ev, stanza.ErrText(stanza.NotAcceptable,
			fmt.Sprintf("the password must have at least %d characters", r.MinPasswordLength)))
	}
	ip := hostOf(s.RemoteAddr())
	if !r.allowed(ip) {
		// §3.1.1: too many registrations from this client before authenticating.
		return r.replyErr(ctx, ev, stanza.Error{Type: stanza.Wait, Condition: stanza.NotAcceptable,
			Text: "too many registrations from your address; try again later"})
	}
	if r.blocked[user] {
		return r.replyErr(ctx, ev, stanza.Err(stanza.Conflict))
	}
	switch err := r.h.CreateUser(ctx, j, password); {
	case errors.Is(err, account.ErrExists):
		return r.replyErr(ctx, ev, stanza.Err(stanza.Conflict))
	case errors.Is(err, account.ErrInvalidUser):
		return r.replyErr(ctx, ev, stanza.ErrText(stanza.JIDMalformed, "invalid username"))
	case errors.Is(err, account.ErrInvalidPassword):
		return r.replyErr(ctx, ev, stanza.ErrText(stanza.NotAcceptable, "invalid password"))
	case err != nil:
		r.h.Logger().Error("registration failed", "user", user, "err", err)
		return r.replyErr(ctx, ev, stanza.Err(stanza.InternalServerError))
	}
	r.record(ip)
	r.h.Logger().Info("account registered", "user", user, "ip", ip)
	return module.Reply(ctx, r.h, ev, nil)
}

// registered answers a logged-in user's get (§3.1: <registered/>).
func (r *Register) registered(ctx context.Context, ev *event.Event, s module.Session) event.Verdict {
	q := stanza.New(NS, "query")
	q.AddChild(stanza.New(NS, "instructions")).AddText("You are registered. Send a new password to change it, or <remove/> to delete your account.")
	q.AddChild(stanza.New(NS, "registered"))
	q.AddChild(stanza.New(NS, "username")).AddText(s.JID().Local())
	q.AddChild(stanza.New(NS, "password"))
	return module.Reply(ctx, r.h, ev, q)
}

// changePassword handles §3.3 (legacy fields or the changepassword form).
func (r *Register) changePassword(ctx context.Context, ev *event.Event, s module.Session) event.Verdict {
	q := ev.Stanza.FirstChild()
	vals, formType := fields(q)
	if formType != "" && formType != FormChangePassword && formType != NS {
		return r.replyErr(ctx, ev, stanza.ErrText(stanza.BadRequest, "unknown form type"))
	}
	if !has(q, vals, "password") {
		return r.replyErr(ctx, ev, stanza.ErrText(stanza.BadRequest, "no password given"))
	}
	if !s.Secure() {
		// §3.3 error table: the channel is not safe enough.
		return r.replyErr(ctx, ev, stanza.Error{Type: stanza.Modify, Condition: stanza.NotAuthorized,
			Text: "password changes need an encrypted connection"})
	}
	user := s.JID().Bare()
	if u, ok := vals["username"]; ok && u != "" {
		// The form variant may carry the bare JID (§3.3 example).
		if !sameUser(u, user) {
			return r.replyErr(ctx, ev, stanza.ErrText(stanza.NotAllowed, "you can only change your own password"))
		}
	}
	if old, ok := vals["old_password"]; ok {
		good, err := r.h.Accounts().CheckPassword(ctx, user.Local(), old)
		if err != nil && !errors.Is(err, account.ErrLocked) {
			r.h.Logger().Error("password check failed", "user", user.Local(), "err", err)
			return r.replyErr(ctx, ev, stanza.Err(stanza.InternalServerError))
		}
		if !good {
			return r.replyErr(ctx, ev, stanza.Error{Type: stanza.Modify, Condition: stanza.NotAuthorized,
				Text: "the old password is wrong"})
		}
	}
	password := vals["password"]
	if password == "" {
		// §3.3: an empty password MUST NOT replace the existing one.
		return r.replyErr(ctx, ev, stanza.ErrText(stanza.NotAcceptable, "the password must not be empty"))
	}
	if len([]rune(password)) < r.MinPasswordLength {
		return r.replyErr(ctx, ev, stanza.ErrText(stanza.NotAcceptable,
			fmt.Sprintf("the password must have at least %d characters", r.MinPasswordLength)))
	}
	switch err := r.h.Accounts().SetPassword(ctx, user.Local(), password); {
	case errors.Is(err, account.ErrInvalidPassword):
		return r.replyErr(ctx, ev, stanza.ErrText(stanza.NotAcceptable, "invalid password"))
	case errors.Is(err, account.ErrNotFound):
		return r.replyErr(ctx, ev, stanza.Err(stanza.RegistrationRequired))
	case err != nil:
		r.h.Logger().Error("password change failed", "user", user.Local(), "err", err)
		return r.replyErr(ctx, ev, stanza.Err(stanza.InternalServerError))
	}
	r.h.Logger().Info("password changed", "user", user.Local())
	return module.Reply(ctx, r.h, ev, nil)
}

// sameUser reports whether u (a localpart or a bare JID) names user.
func sameUser(u string, user jid.JID) bool {
	if strings.Contains(u, "@") {
		j, err := jid.Parse(u)
		return err == nil && j.Bare().Equal(user)
	}
	j, err := jid.New(u, user.Domain(), "")
	return err == nil && j.Equal(user)
}

// remove handles §3.2: delete the account, tell the other modules, answer,
// then close every session of the user. It does not use h.DeleteUser,
// which closes the sessions first: the result must reach the client
// before its stream error.
func (r *Register) remove(ctx context.Context, ev *event.Event, s module.Session) event.Verdict {
	q := ev.Stanza.FirstChild()
	n := 0
	for range q.Elements {
		n++
	}
	if n != 1 {
		// §3.2 error table: <remove/> must be the only child.
		return r.replyErr(ctx, ev, stanza.Err(stanza.BadRequest))
	}
	user := s.JID().Bare()
	switch err := r.h.Accounts().Delete(ctx, user.Local()); {
	case errors.Is(err, account.ErrNotFound):
		return r.replyErr(ctx, ev, stanza.Err(stanza.RegistrationRequired))
	case err != nil:
		r.h.Logger().Error("account removal failed", "user", user.Local(), "err", err)
		return r.replyErr(ctx, ev, stanza.Err(stanza.InternalServerError))
	}
	r.h.Logger().Info("account removed", "user", user.Local())
	r.h.Fire(ctx, &event.Event{Name: module.EventUserDeleted, Origin: s, Data: module.UserEvent{User: user}})
	v := module.Reply(ctx, r.h, ev, nil)
	// The result is queued before the stream error, so the client sees both.
	for _, o := range r.h.Sessions(user) {
		o.Close("not-authorized", "the account was removed")
	}
	if !slices.ContainsFunc(r.h.Sessions(user), func(o module.Session) bool { return o == s }) {
		s.Close("not-authorized", "the account was removed")
	}
	return v
}

// hostOf strips the port of a "host:port" address.
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// allowed reports whether ip may register another account now.
func (r *Register) allowed(ip string) bool {
	if r.ThrottleMax <= 0 {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	cutoff := r.now().Add(-time.Duration(r.ThrottlePeriod))
	n := 0
	for _, t := range r.attempts[ip] {
		if t.After(cutoff) {
			n++
		}
	}
	return n < r.ThrottleMax
}

// record counts a successful registration from ip.
func (r *Register) record(ip string) {
	if r.ThrottleMax <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts[ip] = append(r.attempts[ip], r.now())
}

// pruneAttempts drops registrations older than the throttle window.
func (r *Register) pruneAttempts() {
	r.mu.Lock()
	defer r.mu.Unlock()
	cutoff := r.now().Add(-time.Duration(r.ThrottlePeriod))
	for ip, ts := range r.attempts {
		ts = slices.DeleteFunc(ts, func(t time.Time) bool { return !t.After(cutoff) })
		if len(ts) == 0 {
			delete(r.attempts, ip)
		} else {
			r.attempts[ip] = ts
		}
	}
}
