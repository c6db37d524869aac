// Command probe is a test plugin that exercises every host function and
// misbehaves on request (config option mode), for the runtime's tests.
package main

import (
	"errors"
	"strings"

	"github.com/metronome-xmpp/metronome/sdk"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

const ns = "urn:metronome:probe"

type config struct {
	Mode     string `json:"mode"`
	Greeting string `json:"greeting"`
}

var (
	cfg  config
	sink [][]byte
)

func init() { sdk.Main(setup) }

func setup(p *sdk.Plugin) error {
	if err := p.Config(&cfg); err != nil {
		return err
	}
	switch cfg.Mode {
	case "undeclared":
		// message/full is not in the manifest: the host refuses the plugin.
		_ = p.Hook("message/full", sdk.PrioDefault, func(*sdk.Event) sdk.Verdict { return sdk.Continue })
	case "badinit":
		return errors.New("refusing to start")
	}
	if err := p.AddFeature(ns); err != nil {
		return err
	}
	if err := p.OnIQ("host", "get", ns, "query", sdk.PrioDefault, query); err != nil {
		return err
	}
	if err := p.OnIQ("host", "set", ns, "store", sdk.PrioDefault, store); err != nil {
		return err
	}
	if err := p.OnIQ("host", "get", ns, "fetch", sdk.PrioDefault, fetch); err != nil {
		return err
	}
	// Messages: "shout" in a body is upper-cased, "forbidden" bounced,
	// anything else continues untouched (the benchmark's path).
	if err := p.Hook("pre-message/full", sdk.PrioDefault, func(*sdk.Event) sdk.Verdict { return sdk.Continue }); err != nil {
		return err
	}
	return p.Hook("pre-message/bare", sdk.PrioRewrite, message)
}

func query(ev *sdk.Event) sdk.Verdict {
	switch cfg.Mode {
	case "loop":
		//lint:ignore SA5002 spinning is the point: the host must interrupt it
		for {
		}
	case "hog":
		for {
			sink = append(sink, make([]byte, 1<<20))
		}
	case "panic":
		panic("probe: asked to panic")
	}
	return ev.ReplyResult(stanza.New(ns, "query").AddText(cfg.Greeting + " " + ev.Host))
}

func store(ev *sdk.Event) sdk.Verdict {
	q := ev.Stanza().Child(ns, "store")
	st := sdk.OpenStore(q.Attr("store"))
	user := ev.From
	if err := st.Set(user, "k", []byte(q.Text())); err != nil {
		return ev.ReplyError(stanza.ErrText(stanza.Forbidden, err.Error()))
	}
	v, err := st.Get(user, "k")
	if err != nil {
		return ev.ReplyError(stanza.ErrText(stanza.InternalServerError, err.Error()))
	}
	if _, err := st.Get(user, "missing"); !errors.Is(err, sdk.ErrNotFound) {
		return ev.ReplyError(stanza.ErrText(stanza.InternalServerError, "missing key found"))
	}
	return ev.ReplyResult(stanza.New(ns, "store").AddText(string(v)))
}

func fetch(ev *sdk.Event) sdk.Verdict {
	u := ev.Stanza().Child(ns, "fetch").Attr("url")
	status, body, err := sdk.Fetch(sdk.HTTPRequest{Method: "GET", URL: u})
	if err != nil {
		return ev.ReplyError(stanza.ErrText(stanza.Forbidden, err.Error()))
	}
	if status != 200 {
		return ev.ReplyError(stanza.ErrText(stanza.ServiceUnavailable, "status "+string(rune('0'+status/100))))
	}
	return ev.ReplyResult(stanza.New(ns, "fetch").AddText(string(body)))
}

func message(ev *sdk.Event) sdk.Verdict {
	st := ev.Stanza()
	if st == nil {
		return sdk.Continue
	}
	body := st.ChildText("", "body")
	switch {
	case strings.Contains(body, "forbidden"):
		return sdk.Error(stanza.ErrText(stanza.PolicyViolation, "probe says no"))
	case strings.Contains(body, "shout"):
		c := st.Copy()
		c.RemoveChildren("", "body")
		c.AddChild(stanza.New(stanza.NSClient, "body").AddText(strings.ToUpper(body)))
		if err := ev.Replace(c); err != nil {
			sdk.Log(sdk.LevelError, "replace: "+err.Error())
		}
	}
	return sdk.Continue
}

func main() {}
