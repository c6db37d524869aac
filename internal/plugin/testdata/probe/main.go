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
	if err := p.OnIQ("host", "get", ns, "roomconfig", sdk.PrioDefault, roomConfig); err != nil {
		return err
	}
	if err := p.Hook(sdk.EventRoomConfigForm, sdk.PrioDefault, configForm); err != nil {
		return err
	}
	if err := p.Hook(sdk.EventRoomConfigSubmit, sdk.PrioDefault, configSubmit); err != nil {
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

// Room configuration: the field x-probe#level (default "low"; "forbidden"
// is rejected), and x-probe#refused, which reports what the host answered
// to fields the probe does not own (want "denied").
const levelField = "x-probe#level"

func configForm(ev *sdk.Event) sdk.Verdict {
	level := "low"
	if v, err := ev.FieldValues(levelField); err == nil && len(v) == 1 {
		level = v[0]
	}
	if err := ev.AddField(sdk.Field(levelField, "text-single", "Probe level ("+ev.To+")", level)); err != nil {
		sdk.Log(sdk.LevelError, "add field: "+err.Error())
	}
	refused := "denied"
	for _, name := range []string{"x-other#field", "muc#roomconfig_roomname", "x-probe"} {
		if err := ev.AddField(sdk.Field(name, "boolean", "", "1")); !errors.Is(err, sdk.ErrDenied) {
			refused = name + ": " + errText(err)
		}
		if _, err := ev.FieldValues(name); !errors.Is(err, sdk.ErrDenied) {
			refused = name + " read: " + errText(err)
		}
	}
	// Not a data form field.
	if err := ev.AddField(stanza.New(ns, "field", "var", levelField)); !errors.Is(err, sdk.ErrInvalid) {
		refused = "foreign namespace: " + errText(err)
	}
	if err := ev.SetField(levelField, "x"); !errors.Is(err, sdk.ErrState) {
		refused = "set during the form: " + errText(err)
	}
	if err := ev.AddField(sdk.Field("x-probe#refused", "fixed", "", refused)); err != nil {
		sdk.Log(sdk.LevelError, "add field: "+err.Error())
	}
	return sdk.Continue
}

func configSubmit(ev *sdk.Event) sdk.Verdict {
	if err := ev.SetField("x-other#field", "1"); !errors.Is(err, sdk.ErrDenied) {
		return sdk.Error(stanza.ErrText(stanza.InternalServerError, "foreign field set: "+errText(err)))
	}
	v, err := ev.FieldValues(levelField)
	switch {
	case errors.Is(err, sdk.ErrNotFound):
		return sdk.Continue
	case err != nil:
		return sdk.Error(stanza.ErrText(stanza.InternalServerError, err.Error()))
	case len(v) != 1 || v[0] == "":
		return sdk.Error(stanza.ErrText(stanza.BadRequest, "probe level: one value"))
	case v[0] == "forbidden":
		return sdk.Error(stanza.ErrText(stanza.NotAcceptable, "probe refuses this level"))
	}
	if err := ev.SetField(levelField, v...); err != nil {
		return sdk.Error(stanza.ErrText(stanza.InternalServerError, err.Error()))
	}
	return sdk.Continue
}

// roomConfig answers <roomconfig room='…' field='…'/> with the room's values
// (sdk.RoomConfig), one <value/> each, or an error naming the errno.
func roomConfig(ev *sdk.Event) sdk.Verdict {
	q := ev.Stanza().Child(ns, "roomconfig")
	v, err := sdk.RoomConfig(q.Attr("room"), q.Attr("field"))
	if err != nil {
		return ev.ReplyError(stanza.ErrText(stanza.ItemNotFound, err.Error()))
	}
	out := stanza.New(ns, "roomconfig")
	for _, s := range v {
		out.AddChild(stanza.New(ns, "value")).AddText(s)
	}
	return ev.ReplyResult(out)
}

func errText(err error) string {
	if err == nil {
		return "accepted"
	}
	return err.Error()
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
