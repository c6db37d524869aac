package event

import (
	"context"
	"testing"

	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

func TestOrderAndVerdicts(t *testing.T) {
	b := NewBus("test", nil)
	var order []string
	add := func(name string, prio int, v Verdict) func() {
		return b.Hook("e", prio, name, func(context.Context, *Event) Verdict {
			order = append(order, name)
			return v
		})
	}
	add("low", PrioFallback, Continue)
	add("first-default", PrioDefault, Continue)
	unhook := add("second-default", PrioDefault, Continue)
	add("policy", PrioPolicy, Continue)
	if v := b.Fire(context.Background(), &Event{Name: "e"}); v.Stopped() {
		t.Fatal("nobody stopped the chain")
	}
	want := []string{"policy", "first-default", "second-default", "low"}
	if len(order) != len(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want %v", order, want)
		}
	}
	unhook()
	order = nil
	add("stopper", PrioRewrite, Error(stanza.Err(stanza.NotAllowed)))
	v := b.Fire(context.Background(), &Event{Name: "e"})
	if e, ok := v.Err(); !ok || e.Condition != stanza.NotAllowed || len(order) != 2 {
		t.Fatalf("verdict %+v after %v", v, order)
	}
	if h := b.Handlers("e"); len(h) != 4 || h[0].Owner != "policy" {
		t.Fatalf("handlers %+v", h)
	}
}

func TestPanicBecomesInternalServerError(t *testing.T) {
	b := NewBus("test", nil)
	b.Hook("e", 0, "bad", func(context.Context, *Event) Verdict { panic("boom") })
	v := b.Fire(context.Background(), &Event{Name: "e"})
	if e, ok := v.Err(); !ok || e.Condition != stanza.InternalServerError {
		t.Fatalf("verdict %+v", v)
	}
}

func TestKey(t *testing.T) {
	k := NewKey[int]("n")
	ev := k.Event("h", 42)
	if n, ok := k.Data(ev); !ok || n != 42 || ev.Name != "n" || ev.Host != "h" {
		t.Fatalf("%+v", ev)
	}
	if _, ok := NewKey[string]("n").Data(ev); ok {
		t.Fatal("wrong payload type accepted")
	}
}

func BenchmarkFire10Handlers(b *testing.B) {
	bus := NewBus("bench", nil)
	for i := 0; i < 10; i++ {
		bus.Hook("e", i, "m", func(context.Context, *Event) Verdict { return Continue })
	}
	ev := &Event{Name: "e"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		bus.Fire(ctx, ev)
	}
}
