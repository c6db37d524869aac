package plugin

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/internal/plugin/plugintest"
	"github.com/metronome-xmpp/metronome/storage/memory"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

// BenchmarkWASMHookMessage measures one WebAssembly hook on the message
// path: the wordfilter example's pre-message/bare handler on a chat
// message without a filtered word, which checks the type and scans the
// raw stanza and lets it continue. It includes everything
// the server pays per message: taking an instance from the pool,
// serializing the event and the stanza into guest memory, the call with
// its deadline, and the verdict.
func BenchmarkWASMHookMessage(b *testing.B) {
	benchHook(b, "examples/plugins/wordfilter", `{"words":["darn","heck"],"types":["chat"]}`, "pre-message/bare")
}

// BenchmarkWASMHookEmpty is the same call into a handler that returns at
// once (the probe test plugin's pre-message/full hook): the fixed cost of
// crossing into a plugin.
func BenchmarkWASMHookEmpty(b *testing.B) {
	benchHook(b, "internal/plugin/testdata/probe", `{}`, "pre-message/full")
}

// BenchmarkWASMHookParse is a hook that parses the stanza in the plugin
// (the probe's pre-message/bare hook): what a plugin pays for looking
// inside every message.
func BenchmarkWASMHookParse(b *testing.B) {
	benchHook(b, "internal/plugin/testdata/probe", `{}`, "pre-message/bare")
}

func benchHook(b *testing.B, pkg, options, hook string) {
	wasm, err := os.ReadFile(plugintest.Build(b, pkg))
	if err != nil {
		b.Fatal(err)
	}
	mb, err := os.ReadFile(filepath.Join(plugintest.ModuleRoot(b), pkg, ManifestFile))
	if err != nil {
		b.Fatal(err)
	}
	m, err := ParseManifest(mb)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	e, err := NewEngine(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	c, err := e.Compile(ctx, wasm, sha256Hex(wasm), 64<<20)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Release()
	h := &scratchHost{name: "localhost", log: slog.New(slog.DiscardHandler), drv: memory.New()}
	cfg, err := m.ApplyConfig([]byte(options))
	if err != nil {
		b.Fatal(err)
	}
	pl := newPool(c, m, h, cfg, Limits{CallTimeout: time.Second, InitTimeout: 10 * time.Second, MaxFailures: 5, Instances: 1})
	defer pl.close()
	regs, err := pl.start(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var fn event.Handler
	for _, r := range regs.hooks {
		if r.name == hook {
			fn = pl.handler(r.handler)
		}
	}
	st, err := xmlstream.Parse([]byte(`<message xmlns="jabber:client" from="romeo@localhost/orchard" to="juliet@localhost" type="chat" id="m1"><body>Wherefore art thou?</body></message>`))
	if err != nil {
		b.Fatal(err)
	}
	ev := &event.Event{Name: hook, Host: "localhost", Stanza: st,
		From: jid.MustParse("romeo@localhost/orchard"), To: jid.MustParse("juliet@localhost")}
	if v := fn(ctx, ev); v.Stopped() {
		b.Fatal("the hook stopped the message")
	}
	b.ReportAllocs()
	for b.Loop() {
		fn(ctx, ev)
	}
	if pl.failures.Load() != 0 {
		b.Fatalf("%d failed calls", pl.failures.Load())
	}
}
