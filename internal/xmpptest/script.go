package xmpptest

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

// A script is a conversation in the style of Prosody's scansion:
//
//	# comment: what the scenario checks
//	[Client] romeo
//		jid: romeo@localhost/orchard
//		password: password          (default "password")
//	---
//	romeo connects
//	romeo sends:
//		<message to="juliet@localhost" type="chat"><body>hi</body></message>
//	juliet receives:
//		<message from="${romeo's full JID}" type="chat"><body>hi</body></message>
//	juliet receives (any order):
//		<presence from="..."/>
//		<presence from="..."/>
//	romeo receives nothing
//	romeo disconnects              (closes the stream; "romeo is killed" drops TCP)
//
// Blocks are the indented lines after a directive; they may hold several
// elements. ${romeo's full JID} and ${romeo's JID} (bare) are substituted.
// Accounts of every [Client] are created before the conversation.
type Script struct {
	Name    string
	Clients []ScriptClient
	Steps   []Step
}

// ScriptClient is one [Client] block.
type ScriptClient struct {
	Name, JID, Password string
}

// Step is one directive.
type Step struct {
	Line   int
	Client string
	Action string // connects, disconnects, killed, sends, receives, receives-any, nothing
	Body   string
}

// ParseScript reads a script file.
func ParseScript(path string) (*Script, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := &Script{Name: filepath.Base(path)}
	var cur *ScriptClient
	var step *Step
	header := true
	sca := bufio.NewScanner(f)
	sca.Buffer(make([]byte, 1<<20), 1<<20)
	line := 0
	bad := func(msg string) error { return fmt.Errorf("%s:%d: %s", path, line, msg) }
	for sca.Scan() {
		line++
		raw := sca.Text()
		trimmed := strings.TrimSpace(raw)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		indented := raw[0] == '\t' || raw[0] == ' '
		if header {
			switch {
			case trimmed == "---":
				header = false
			case strings.HasPrefix(trimmed, "[Client]"):
				sc.Clients = append(sc.Clients, ScriptClient{Name: strings.TrimSpace(strings.TrimPrefix(trimmed, "[Client]")), Password: "password"})
				cur = &sc.Clients[len(sc.Clients)-1]
			case indented && cur != nil:
				k, v, ok := strings.Cut(trimmed, ":")
				if !ok {
					return nil, bad("expected key: value")
				}
				switch strings.TrimSpace(k) {
				case "jid":
					cur.JID = strings.TrimSpace(v)
				case "password":
					cur.Password = strings.TrimSpace(v)
				default:
					return nil, bad("unknown client key " + k)
				}
			default:
				return nil, bad("unexpected line in header")
			}
			continue
		}
		if indented {
			if step == nil || (step.Action != "sends" && step.Action != "receives" && step.Action != "receives-any") {
				return nil, bad("indented line without a sends/receives directive")
			}
			step.Body += trimmed + "\n"
			continue
		}
		name, rest, ok := strings.Cut(trimmed, " ")
		if !ok {
			return nil, bad("expected '<client> <action>'")
		}
		var action string
		switch strings.TrimSpace(rest) {
		case "connects":
			action = "connects"
		case "disconnects":
			action = "disconnects"
		case "is killed":
			action = "killed"
		case "sends:":
			action = "sends"
		case "receives:":
			action = "receives"
		case "receives (any order):":
			action = "receives-any"
		case "receives nothing":
			action = "nothing"
		default:
			return nil, bad("unknown action " + rest)
		}
		sc.Steps = append(sc.Steps, Step{Line: line, Client: name, Action: action})
		step = &sc.Steps[len(sc.Steps)-1]
	}
	if err := sca.Err(); err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, c := range sc.Clients {
		if c.JID == "" {
			return nil, fmt.Errorf("%s: client %s has no jid", path, c.Name)
		}
		known[c.Name] = true
	}
	for _, s := range sc.Steps {
		if !known[s.Client] {
			return nil, fmt.Errorf("%s:%d: unknown client %q", path, s.Line, s.Client)
		}
	}
	return sc, nil
}

// RunScripts runs every dir/*.scs script as a subtest, each against a fresh server.
func RunScripts(t *testing.T, dir string, opts ...Option) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.scs"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("xmpptest: no scripts in %s", dir)
	}
	sort.Strings(files)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".scs"), func(t *testing.T) {
			sc, err := ParseScript(f)
			if err != nil {
				t.Fatal(err)
			}
			RunScript(t, sc, opts...)
		})
	}
}

// RunScript runs one parsed script against a fresh server.
func RunScript(t *testing.T, sc *Script, opts ...Option) {
	t.Helper()
	srv := NewServer(t, opts...)
	vars := map[string]string{}
	created := map[string]bool{}
	clients := map[string]*Client{}
	conf := map[string]ScriptClient{}
	for _, c := range sc.Clients {
		conf[c.Name] = c
		bare := c.JID
		if i := strings.IndexByte(bare, '/'); i >= 0 {
			bare = bare[:i]
		}
		if !created[bare] {
			srv.CreateUser(t, bare, c.Password)
			created[bare] = true
		}
	}
	for _, st := range sc.Steps {
		where := fmt.Sprintf("%s:%d", sc.Name, st.Line)
		c := clients[st.Client]
		if st.Action != "connects" && c == nil {
			t.Fatalf("%s: %s is not connected", where, st.Client)
		}
		switch st.Action {
		case "connects":
			cc, err := srv.Connect(conf[st.Client].JID, conf[st.Client].Password, false)
			if err != nil {
				t.Fatalf("%s: %s connects: %v", where, st.Client, err)
			}
			t.Cleanup(cc.Close)
			clients[st.Client] = cc
			vars[st.Client+"'s full JID"] = cc.JID.String()
			vars[st.Client+"'s JID"] = cc.JID.Bare().String()
		case "disconnects":
			c.Close()
			delete(clients, st.Client)
		case "killed":
			c.Kill()
			delete(clients, st.Client)
		case "sends":
			c.Send(t, subst(st.Body, vars))
		case "receives", "receives-any":
			wants := parseBlock(t, where, subst(st.Body, vars))
			if st.Action == "receives" {
				for _, w := range wants {
					got, err := c.RecvTimeout(Timeout)
					if err != nil {
						t.Fatalf("%s: %s: expected\n\t%s\nbut %v", where, st.Client, w, err)
					}
					if err := Match(w, got, nil); err != nil {
						t.Fatalf("%s: %s received\n\t%s\nexpected\n\t%s\n%v", where, st.Client, got, w, err)
					}
				}
				continue
			}
			var got []*stanza.Element
			for range wants {
				g, err := c.RecvTimeout(Timeout)
				if err != nil {
					t.Fatalf("%s: %s: expected %d stanzas, got %d: %v", where, st.Client, len(wants), len(got), err)
				}
				got = append(got, g)
			}
			used := make([]bool, len(got))
		next:
			for _, w := range wants {
				for i, g := range got {
					if !used[i] && Match(w, g, nil) == nil {
						used[i] = true
						continue next
					}
				}
				var b strings.Builder
				for _, g := range got {
					b.WriteString("\n\t" + g.String())
				}
				t.Fatalf("%s: %s: nothing matched\n\t%s\namong%s", where, st.Client, w, b.String())
			}
		case "nothing":
			if el, err := c.RecvTimeout(300 * time.Millisecond); err == nil {
				t.Fatalf("%s: %s received unexpected\n\t%s", where, st.Client, el)
			}
		}
	}
}

func parseBlock(t *testing.T, where, body string) []*stanza.Element {
	root, err := xmlstream.ParseNS([]byte("<block xmlns=\""+stanza.NSClient+"\">"+body+"</block>"), stanza.NSClient)
	if err != nil {
		t.Fatalf("%s: bad XML in script: %v", where, err)
	}
	var out []*stanza.Element
	for c := range root.Elements {
		out = append(out, c)
	}
	if len(out) == 0 {
		t.Fatalf("%s: empty block", where)
	}
	return out
}
