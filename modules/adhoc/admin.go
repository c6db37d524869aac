package adhoc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/metronome-xmpp/metronome/account"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// NSAdmin is the XEP-0133 namespace, the FORM_TYPE of its forms and the
// prefix of its command nodes.
const NSAdmin = "http://jabber.org/protocol/admin"

// XEP-0133 command nodes implemented here.
const (
	NodeAddUser            = NSAdmin + "#add-user"
	NodeDeleteUser         = NSAdmin + "#delete-user"
	NodeChangeUserPassword = NSAdmin + "#change-user-password"
	NodeRegisteredUsersNum = NSAdmin + "#get-registered-users-num"
	NodeRegisteredUsers    = NSAdmin + "#get-registered-users-list"
	NodeOnlineUsersNum     = NSAdmin + "#get-online-users-num"
	NodeOnlineUsers        = NSAdmin + "#get-online-users-list"
	NodeAnnounce           = NSAdmin + "#announce"
)

// badPayload is the §4.4 error for a form missing required or valid data.
func badPayload(text string) stanza.Error {
	e := cmdErr(stanza.BadRequest, "bad-payload")
	e.Text = text
	return e
}

// twoStep adapts a command that first shows a form and then processes
// the submitted one.
func twoStep(show func() form, submit func(ctx context.Context, from jid.JID, f submitted) (*stanza.Element, error)) RunFunc {
	return func(ctx context.Context, from jid.JID, action string, req *stanza.Element, state map[string]any) (*stanza.Element, error) {
		if state["shown"] == nil {
			state["shown"] = true
			return executing(show()), nil
		}
		if action == "prev" {
			return nil, cmdErr(stanza.BadRequest, "bad-action")
		}
		f := parseForm(req)
		if f == nil {
			return nil, badPayload("a submitted data form is required")
		}
		return submit(ctx, from, f)
	}
}

// addAdminCommands registers the XEP-0133 commands, visible to admins only.
func (a *Adhoc) addAdminCommands() {
	isAdmin := func(from jid.JID) bool { return a.h.IsAdmin(from.Bare()) }
	r := a.reg
	r.Add(NodeAddUser, "Add User", isAdmin, twoStep(func() form {
		f := newForm("form", NSAdmin, "Adding a User", "Fill out this form to add a user.")
		f.field("jid-single", "accountjid", "The Jabber ID for the account to be added", true)
		f.field("text-private", "password", "The password for this account", true)
		f.field("text-private", "password-verify", "Retype password", false)
		return f
	}, a.addUser))
	r.Add(NodeDeleteUser, "Delete User", isAdmin, twoStep(func() form {
		f := newForm("form", NSAdmin, "Deleting a User", "Fill out this form to delete a user.")
		f.field("jid-multi", "accountjids", "The Jabber ID(s) to delete", true)
		return f
	}, a.deleteUsers))
	r.Add(NodeChangeUserPassword, "Change User Password", isAdmin, twoStep(func() form {
		f := newForm("form", NSAdmin, "Changing a User Password", "Fill out this form to change a user's password.")
		f.field("jid-single", "accountjid", "The Jabber ID for this account", true)
		f.field("text-private", "password", "The password for this account", true)
		return f
	}, a.changePassword))
	r.Add(NodeRegisteredUsersNum, "Get Number of Registered Users", isAdmin,
		func(ctx context.Context, _ jid.JID, _ string, _ *stanza.Element, _ map[string]any) (*stanza.Element, error) {
			users, err := a.h.Accounts().Users(ctx)
			if err != nil {
				return nil, fmt.Errorf("adhoc: list users: %w", err)
			}
			f := newForm("result", NSAdmin, "", "")
			f.field("", "registeredusersnum", "The number of registered users", false, strconv.Itoa(len(users)))
			return completed("", &f), nil
		})
	r.Add(NodeRegisteredUsers, "Get List of Registered Users", isAdmin, twoStep(maxItemsForm("Requesting List of Registered Users"),
		func(ctx context.Context, _ jid.JID, f submitted) (*stanza.Element, error) {
			limit, err := maxItems(f)
			if err != nil {
				return nil, err
			}
			users, err := a.h.Accounts().Users(ctx)
			if err != nil {
				return nil, fmt.Errorf("adhoc: list users: %w", err)
			}
			jids := make([]string, 0, len(users))
			for _, u := range users {
				jids = append(jids, u+"@"+a.h.Name())
			}
			return userList("registereduserjids", "The list of all users", jids, limit), nil
		}))
	r.Add(NodeOnlineUsersNum, "Get Number of Online Users", isAdmin,
		func(context.Context, jid.JID, string, *stanza.Element, map[string]any) (*stanza.Element, error) {
			f := newForm("result", NSAdmin, "", "")
			f.field("", "onlineusersnum", "The number of online users", false, strconv.Itoa(len(a.onlineUsers())))
			return completed("", &f), nil
		})
	r.Add(NodeOnlineUsers, "Get List of Online Users", isAdmin, twoStep(maxItemsForm("Requesting List of Online Users"),
		func(_ context.Context, _ jid.JID, f submitted) (*stanza.Element, error) {
			limit, err := maxItems(f)
			if err != nil {
				return nil, err
			}
			return userList("onlineuserjids", "The list of all online users", a.onlineUsers(), limit), nil
		}))
	r.Add(NodeAnnounce, "Send Announcement to Online Users", isAdmin, twoStep(func() form {
		f := newForm("form", NSAdmin, "Making an Announcement", "Fill out this form to make an announcement to all active users of this service.")
		f.field("text-single", "subject", "Subject", false)
		f.field("text-multi", "announcement", "Announcement", true)
		return f
	}, a.announce))
}

func maxItemsForm(title string) func() form {
	return func() form {
		f := newForm("form", NSAdmin, title, "Fill out this form to request the list.")
		fe := f.field("list-single", "max_items", "Maximum number of items to show", false)
		for _, n := range []string{"25", "50", "75", "100", "150", "200"} {
			option(fe, n, n)
		}
		option(fe, "None", "none")
		return f
	}
}

// maxItems reads the max_items field: 0 for "none" or absent (no limit).
func maxItems(f submitted) (int, error) {
	v := f.get("max_items")
	if v == "" || v == "none" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, badPayload("max_items must be a number or none")
	}
	return n, nil
}

func userList(v, label string, jids []string, limit int) *stanza.Element {
	if limit > 0 && len(jids) > limit {
		jids = jids[:limit]
	}
	f := newForm("result", NSAdmin, "", "")
	f.field("jid-multi", v, label, false, jids...)
	return completed("", &f)
}

// onlineUsers returns the bare JIDs with at least one bound session, sorted.
func (a *Adhoc) onlineUsers() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range a.h.AllSessions() {
		b := s.JID().Bare().String()
		if b != "" && !seen[b] {
			seen[b] = true
			out = append(out, b)
		}
	}
	slices.Sort(out)
	return out
}

// localUser parses a JID submitted in a form and checks it belongs to this host.
func (a *Adhoc) localUser(s string) (jid.JID, error) {
	j, err := jid.Parse(s)
	if err != nil || j.Local() == "" {
		return jid.JID{}, badPayload(fmt.Sprintf("%q is not a user JID", s))
	}
	if j.Domain() != a.h.Name() {
		return jid.JID{}, badPayload(fmt.Sprintf("%s is not an account of %s", j.Bare(), a.h.Name()))
	}
	return j.Bare(), nil
}

func (a *Adhoc) addUser(ctx context.Context, from jid.JID, f submitted) (*stanza.Element, error) {
	user, err := a.localUser(f.get("accountjid"))
	if err != nil {
		return nil, err
	}
	pw := f.get("password")
	if pw == "" {
		return nil, badPayload("a password is required")
	}
	if v, ok := f["password-verify"]; ok && len(v) > 0 && strings.TrimSpace(v[0]) != pw {
		return nil, badPayload("the passwords do not match")
	}
	switch err := a.h.CreateUser(ctx, user, pw); {
	case errors.Is(err, account.ErrExists):
		return nil, stanza.ErrText(stanza.Conflict, "the account already exists")
	case errors.Is(err, account.ErrInvalidUser), errors.Is(err, account.ErrInvalidPassword):
		return nil, badPayload(err.Error())
	case err != nil:
		return nil, fmt.Errorf("adhoc: create %s: %w", user, err)
	}
	a.h.Logger().Info("account created by admin", "user", user.String(), "admin", from.Bare().String())
	return completed("User "+user.String()+" added.", nil), nil
}

func (a *Adhoc) deleteUsers(ctx context.Context, from jid.JID, f submitted) (*stanza.Element, error) {
	jids := f.all("accountjids")
	if len(jids) == 0 {
		return nil, badPayload("no account given")
	}
	users := make([]jid.JID, 0, len(jids))
	for _, s := range jids {
		u, err := a.localUser(s)
		if err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	var deleted, missing []string
	for _, u := range users {
		switch err := a.h.DeleteUser(ctx, u); {
		case errors.Is(err, account.ErrNotFound):
			missing = append(missing, u.String())
			continue
		case err != nil:
			return nil, fmt.Errorf("adhoc: delete %s: %w", u, err)
		}
		a.h.Logger().Info("account deleted by admin", "user", u.String(), "admin", from.Bare().String())
		deleted = append(deleted, u.String())
	}
	c := stanza.New(NS, "command", "status", StatusCompleted)
	if len(deleted) > 0 {
		c.AddChild(stanza.New(NS, "note", "type", "info")).AddText("Deleted: " + strings.Join(deleted, ", "))
	}
	if len(missing) > 0 {
		c.AddChild(stanza.New(NS, "note", "type", "error")).AddText("No such account: " + strings.Join(missing, ", "))
	}
	return c, nil
}

func (a *Adhoc) changePassword(ctx context.Context, from jid.JID, f submitted) (*stanza.Element, error) {
	user, err := a.localUser(f.get("accountjid"))
	if err != nil {
		return nil, err
	}
	pw := f.get("password")
	if pw == "" {
		return nil, badPayload("a password is required")
	}
	switch err := a.h.Accounts().SetPassword(ctx, user.Local(), pw); {
	case errors.Is(err, account.ErrNotFound):
		return nil, stanza.ErrText(stanza.ItemNotFound, "no such account")
	case errors.Is(err, account.ErrInvalidPassword):
		return nil, badPayload(err.Error())
	case err != nil:
		return nil, fmt.Errorf("adhoc: set password of %s: %w", user, err)
	}
	a.h.Logger().Info("password changed by admin", "user", user.String(), "admin", from.Bare().String())
	return completed("Password of "+user.String()+" changed.", nil), nil
}

// announce sends a headline message to every bound session of the host
// (XEP-0133 §4.23: only users who currently have a session).
func (a *Adhoc) announce(ctx context.Context, from jid.JID, f submitted) (*stanza.Element, error) {
	lines := f["announcement"]
	body := strings.TrimSpace(strings.Join(lines, "\n"))
	if body == "" {
		return nil, badPayload("the announcement is empty")
	}
	subject := f.get("subject")
	n := 0
	for _, s := range a.h.AllSessions() {
		m := stanza.New(stanza.NSClient, "message", "type", "headline", "from", a.h.Name(), "to", s.JID().String())
		if subject != "" {
			m.AddChild(stanza.New(stanza.NSClient, "subject")).AddText(subject)
		}
		m.AddChild(stanza.New(stanza.NSClient, "body")).AddText(body)
		if a.h.Deliver(ctx, s, m) == nil {
			n++
		}
	}
	a.h.Logger().Info("announcement sent", "admin", from.Bare().String(), "sessions", n)
	return completed(fmt.Sprintf("Announcement sent to %d sessions.", n), nil), nil
}
