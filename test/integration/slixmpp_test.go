package integration

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/testbin"
)

// The scenarios themselves are the Python scripts in slixmpp/; these tests
// start a server for each, create its accounts, and check the lines the
// script prints.

const password = "correct horse battery"

// TestSlixmppRegister: in-band registration (XEP-0077) of a new account
// over the stream, a login on that stream, and a fresh login.
func TestSlixmppRegister(t *testing.T) {
	t.Parallel()
	requireSlixmpp(t)
	s := startServer(t, serverConfig{Registration: true})
	out := s.runScript(t, "register", "--user", "newbie", "--password", "newbie-secret")
	testbin.Line(t, out, "OK register-feature")
	if f := testbin.Field(testbin.Line(t, out, "OK register-form"), "fields"); f != "password,username" {
		t.Errorf("registration form fields %q, want password,username", f)
	}
	testbin.Line(t, out, "OK registered user=newbie")
	if j := testbin.Field(testbin.Line(t, out, "OK login"), "jid"); !strings.HasPrefix(j, "newbie@localhost/") {
		t.Errorf("bound JID %q after registration", j)
	}
	testbin.Line(t, out, "OK relogin jid=newbie@localhost/")

	users, err := s.ctl("user", "list", s.Domain)
	if err != nil || !strings.Contains(users, "newbie@localhost") {
		t.Errorf("metronomectl user list after registration: %v\n%s", err, users)
	}
	s.stop()
}

// TestSlixmppLogin: SASL over STARTTLS and over direct TLS (XEP-0368).
func TestSlixmppLogin(t *testing.T) {
	t.Parallel()
	requireSlixmpp(t)
	s := startServer(t, serverConfig{})
	jid := s.addUser("romeo", password)

	for _, tc := range []struct {
		name string
		args []string
		mech string // "" when any mechanism will do
		tls  string
	}{
		// slixmpp 1.8.3 supports only the tls-unique channel binding. With a
		// forced non-PLUS mechanism it sends the gs2 flag "y", which the
		// server must refuse while it offers -PLUS mechanisms (RFC 5802 §6;
		// see TestSlixmppSCRAMDowngrade). --no-channel-binding makes it act
		// as a client without channel binding (flag "n").
		{"starttls SCRAM-SHA-256", []string{"--mech", "SCRAM-SHA-256", "--no-channel-binding"}, "SCRAM-SHA-256", "starttls"},
		{"direct TLS SCRAM-SHA-256", []string{"--mech", "SCRAM-SHA-256", "--no-channel-binding", "--direct-tls"}, "SCRAM-SHA-256", "direct"},
		// slixmpp's own choice: SCRAM-SHA-*-PLUS with tls-unique first,
		// refused as an unsupported binding type (tls-unique is undefined
		// in TLS 1.3), then a fallback that must succeed.
		{"starttls default mechanism", nil, "", "starttls"},
		{"direct TLS default mechanism", []string{"--direct-tls"}, "", "direct"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := s.runScript(t, "login", append([]string{"--jid", jid, "--password", password}, tc.args...)...)
			l := testbin.Line(t, out, "OK login")
			if j := testbin.Field(l, "jid"); !strings.HasPrefix(j, jid+"/") {
				t.Errorf("bound JID %q, want a resource of %s", j, jid)
			}
			if tc.mech != "" && testbin.Field(l, "mech") != tc.mech {
				t.Errorf("mechanism %q, want %q", testbin.Field(l, "mech"), tc.mech)
			}
			if testbin.Field(l, "tls") != tc.tls {
				t.Errorf("tls %q, want %q", testbin.Field(l, "tls"), tc.tls)
			}
			for _, l := range out {
				// The PLUS attempts may fail, on the binding type only.
				if strings.HasPrefix(l, "INFO romeo sasl-failure") && !strings.Contains(l, "unsupported channel-binding type") {
					t.Errorf("unexpected SASL failure before the login: %s", l)
				}
			}
		})
	}
	s.stop()
}

// TestSlixmppSCRAMDowngrade: a client that can do channel binding but
// selects a non-PLUS SCRAM mechanism (gs2 flag "y") although the server
// offered -PLUS ones is refused, as RFC 5802 §6 requires; slixmpp with
// sasl_mech="SCRAM-SHA-256" does exactly that.
func TestSlixmppSCRAMDowngrade(t *testing.T) {
	t.Parallel()
	requireSlixmpp(t)
	s := startServer(t, serverConfig{})
	jid := s.addUser("romeo", password)
	out := s.runScript(t, "login", "--jid", jid, "--password", password, "--mech", "SCRAM-SHA-256", "--expect-failure")
	if l := testbin.Line(t, out, "OK auth-refused"); testbin.Field(l, "condition") != "not-authorized" {
		t.Errorf("refused with %q, want not-authorized", testbin.Field(l, "condition"))
	}
	testbin.Line(t, out, "OK closed")
	s.stop()
}

// TestSlixmppWrongPassword: a wrong password fails with <not-authorized/>
// and a closed connection, and does not lock the account out.
func TestSlixmppWrongPassword(t *testing.T) {
	t.Parallel()
	requireSlixmpp(t)
	s := startServer(t, serverConfig{})
	jid := s.addUser("juliet", password)

	t.Run("SCRAM-SHA-256", func(t *testing.T) {
		out := s.runScript(t, "login", "--jid", jid, "--password", "wrong password",
			"--mech", "SCRAM-SHA-256", "--no-channel-binding", "--expect-failure")
		if l := testbin.Line(t, out, "OK auth-refused"); testbin.Field(l, "condition") != "not-authorized" || testbin.Field(l, "attempts") != "1" {
			t.Errorf("got %q, want one not-authorized failure", l)
		}
		testbin.Line(t, out, "OK closed")
	})
	t.Run("default mechanism", func(t *testing.T) {
		// slixmpp tries every mechanism in turn; the server may end the
		// stream after its limit of failures, but must refuse them all.
		out := s.runScript(t, "login", "--jid", jid, "--password", "wrong password", "--expect-failure")
		testbin.Line(t, out, "OK auth-refused")
		testbin.Line(t, out, "OK closed")
	})
	t.Run("right password still works", func(t *testing.T) {
		out := s.runScript(t, "login", "--jid", jid, "--password", password)
		testbin.Line(t, out, "OK login jid="+jid+"/")
	})
	s.stop()
}

// TestSlixmppRosterPresence: roster add with push, mutual subscription and
// presence (RFC 6121 §2-4).
func TestSlixmppRosterPresence(t *testing.T) {
	t.Parallel()
	requireSlixmpp(t)
	s := startServer(t, serverConfig{})
	s.addUser("romeo", password)
	s.addUser("juliet", password)
	out := s.runScript(t, "presence", "--user1", "romeo", "--user2", "juliet", "--password", password)
	testbin.Line(t, out, "OK rosters-both")
	s.stop()
}

// TestSlixmppChat: a chat message and its reply between two online users.
func TestSlixmppChat(t *testing.T) {
	t.Parallel()
	requireSlixmpp(t)
	s := startServer(t, serverConfig{})
	s.addUser("romeo", password)
	s.addUser("juliet", password)
	out := s.runScript(t, "chat", "--user1", "romeo", "--user2", "juliet", "--password", password)
	if l := testbin.Line(t, out, "OK juliet got"); testbin.Field(l, "type") != "chat" || !strings.HasPrefix(testbin.Field(l, "from"), "romeo@localhost/") {
		t.Errorf("juliet got %q", l)
	}
	testbin.Line(t, out, "OK romeo got from=juliet@localhost/")
	s.stop()
}

// TestSlixmppOffline: messages to an offline user are stored and delivered
// in order, with XEP-0203 delays, at her next login (XEP-0160).
func TestSlixmppOffline(t *testing.T) {
	t.Parallel()
	requireSlixmpp(t)
	s := startServer(t, serverConfig{})
	s.addUser("romeo", password)
	s.addUser("juliet", password)
	out := s.runScript(t, "offline", "--user1", "romeo", "--user2", "juliet", "--password", password)
	testbin.Line(t, out, "OK offline count=3 in-order")
	testbin.Line(t, out, "OK no-redelivery")
	s.stop()
}

// TestSlixmppCarbonsMAM: carbons between two resources (XEP-0280) and
// archive paging both ways (XEP-0313, XEP-0059) with slixmpp's plugins.
func TestSlixmppCarbonsMAM(t *testing.T) {
	t.Parallel()
	requireSlixmpp(t)
	s := startServer(t, serverConfig{Modules: append([]string{"carbons", "mam"}, defaultModules...)})
	s.addUser("romeo", password)
	s.addUser("juliet", password)
	out := s.runScript(t, "carbons_mam", "--user1", "romeo", "--user2", "juliet", "--password", password)
	testbin.Line(t, out, "OK chamber got a received carbon")
	testbin.Line(t, out, "OK chamber got a sent carbon")
	testbin.Line(t, out, "OK archive paged forwards count=27")
	testbin.Line(t, out, "OK archive paged backwards count=27")
	s.stop()
}

// TestSlixmppGracefulStop: `metronomectl stop` ends a client's stream with
// <system-shutdown/> before the daemon exits.
func TestSlixmppGracefulStop(t *testing.T) {
	t.Parallel()
	requireSlixmpp(t)
	s := startServer(t, serverConfig{})
	jid := s.addUser("romeo", password)
	sc := s.startScript(t, "shutdown", "--jid", jid, "--password", password)
	sc.expect("READY", 30*time.Second)
	s.stop()
	out := sc.wait()
	testbin.Line(t, out, "OK stream-error condition=system-shutdown")
	testbin.Line(t, out, "OK disconnected")
}

// TestSlixmppReload: `metronomectl reload` applies a changed configuration
// without dropping a connected client, and refuses a broken one with a
// message while the server keeps serving.
func TestSlixmppReload(t *testing.T) {
	t.Parallel()
	requireSlixmpp(t)
	const featureVersion = "jabber:iq:version"
	without := serverConfig{Modules: []string{"roster", "presence", "message", "disco"}}
	with := serverConfig{Modules: []string{"roster", "presence", "message", "disco", "version"}}
	s := startServer(t, without)
	jid := s.addUser("romeo", password)
	sc := s.startScript(t, "reload", "--jid", jid, "--password", password)
	sc.expect("READY", 30*time.Second)

	check := func(tag string, wantVersion bool) {
		t.Helper()
		sc.send("CHECK " + tag)
		l := sc.expect("OK check tag="+tag, 15*time.Second)
		if testbin.Field(l, "connected") != "1" || testbin.Field(l, "stream-errors") != "0" {
			t.Errorf("%s: the client lost its connection: %s", tag, l)
		}
		features := strings.Split(testbin.Field(l, "features"), ",")
		has := false
		for _, f := range features {
			has = has || f == featureVersion
		}
		if has != wantVersion {
			t.Errorf("%s: disco#info lists %s: %v, want %v (features %v)", tag, featureVersion, has, wantVersion, features)
		}
		if v := testbin.Field(l, "version"); strings.HasPrefix(v, "error:") == wantVersion {
			t.Errorf("%s: jabber:iq:version answered %q with the version module enabled=%v", tag, v, wantVersion)
		}
	}
	check("before", false)

	s.writeConfig(with)
	if out, err := s.ctl("reload"); err != nil {
		t.Fatalf("metronomectl reload: %v\n%s", err, out)
	}
	check("reloaded", true)

	// A broken configuration: an unknown key. metronomectl reads the file
	// itself (to find the admin socket) and refuses at once, naming the
	// problem.
	broken := serverConfig{Modules: with.Modules, Extra: "[c2s]\nno_such_option = true\n"}
	s.writeConfig(broken)
	out, err := s.ctl("reload")
	if err == nil {
		t.Errorf("metronomectl reload accepted a broken configuration:\n%s", out)
	} else if !strings.Contains(out, "no_such_option") {
		t.Errorf("metronomectl reload refused the broken configuration without naming the bad key:\n%s", out)
	} else {
		t.Logf("metronomectl reload refused, as expected:\n%s", out)
	}
	// The daemon's own check: SIGHUP makes it re-read the same file.
	if err := s.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	l := s.waitLog("reload refused", 10*time.Second)
	if !strings.Contains(l, "no_such_option") {
		t.Errorf("the daemon refused the reload without naming the bad key: %s", l)
	}
	check("refused", true)

	// A broken module option, here the spelling of metronome.example.toml
	// ("allow" instead of "allow_registration"). metronomectl does not
	// decode module options; the daemon does, and must refuse the reload
	// as a whole.
	s.writeConfig(serverConfig{Modules: append(with.Modules, "register"), Extra: "[modules.register]\nallow = true\n"})
	out, err = s.ctl("reload")
	if err == nil {
		t.Errorf("metronomectl reload accepted an unknown module option:\n%s", out)
	} else if !strings.Contains(out, "allow") {
		t.Errorf("the reload was refused without naming the bad option:\n%s", out)
	} else {
		t.Logf("metronomectl reload refused, as expected:\n%s", out)
	}
	check("refused-module-option", true)

	s.writeConfig(broken)
	// status only needs the admin socket, which the broken file still names.
	if out, err := s.ctl("status"); err != nil {
		t.Errorf("metronomectl status with a broken configuration file while the server runs: %v\n%s", err, out)
	}

	// The server still serves, and a client can still connect.
	s.writeConfig(with)
	if out, err := s.ctl("status"); err != nil {
		t.Errorf("metronomectl status after a refused reload: %v\n%s", err, out)
	}
	login := s.runScript(t, "login", "--jid", jid, "--password", password)
	testbin.Line(t, login, "OK login")
	check("after", true)

	sc.send("QUIT")
	sc.wait()
	s.stop()
}

// TestSlixmppStreamResumption: slixmpp's XEP-0198 plugin resumes its
// session after its TCP connection was aborted mid-conversation; every
// message arrives once, in order.
func TestSlixmppStreamResumption(t *testing.T) {
	t.Parallel()
	requireSlixmpp(t)
	s := startServer(t, serverConfig{})
	s.addUser("romeo", password)
	s.addUser("juliet", password)
	out := s.runScript(t, "sm", "--mode", "resume", "--password", password)
	testbin.Line(t, out, "OK enabled")
	testbin.Line(t, out, "OK resumed")
	testbin.Line(t, out, "OK messages count=10 in order, none duplicated")
	testbin.Line(t, out, "OK answer over the resumed stream")
	s.waitLog("session hibernated", 5*time.Second)
	s.waitLog("session resumed", 5*time.Second)
	s.stop()
}

// TestSlixmppStreamRestart restarts the server between a hibernated
// session's messages and its return, gracefully and by SIGKILL: stanzas
// the server acknowledged are delivered after the restart, and the
// messages the hibernated session never got are found offline (after a
// graceful stop) or in the archive (after a crash).
func TestSlixmppStreamRestart(t *testing.T) {
	for _, crash := range []bool{false, true} {
		name := "graceful"
		if crash {
			name = "crash"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			requireSlixmpp(t)
			s := startServer(t, serverConfig{Modules: append([]string{"mam"}, defaultModules...)})
			s.addUser("romeo", password)
			s.addUser("juliet", password)
			s.addUser("nurse", password)
			args := []string{"--mode", "restart", "--password", password}
			if crash {
				args = append(args, "--crash")
			}
			sc := s.startScript(t, "sm", args...)
			sc.expect("READY", 30*time.Second)
			s.restart(crash)
			sc.send("GO")
			out := sc.wait()
			testbin.Line(t, out, "OK acknowledged")
			testbin.Line(t, out, "OK resumption refused after the restart")
			if crash {
				testbin.Line(t, out, "OK juliet found nurse messages in archive count=3")
			} else {
				testbin.Line(t, out, "OK juliet found nurse messages in offline count=3")
			}
			testbin.Line(t, out, "OK acknowledged messages survived count=5")
			s.stop()
		})
	}
}
