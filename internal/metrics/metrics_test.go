package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/storage/memory"
)

func TestExposition(t *testing.T) {
	r := &Registry{}
	c := r.NewCounter("x_total", "Things.\nCounted.", "kind")
	c.Counter(`a"b\c`).Add(3)
	c.Counter("z").Inc()
	h := r.NewHistogram("lat_seconds", "Latency.")
	hist := h.Histogram()
	hist.Observe(30 * time.Microsecond)
	hist.Observe(3 * time.Millisecond)
	hist.Observe(time.Minute)
	r.NewGaugeFunc("g", "A gauge.", func() float64 { return 2.5 })
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"# HELP x_total Things.\\nCounted.\n# TYPE x_total counter\n",
		`x_total{kind="a\"b\\c"} 3` + "\n",
		`x_total{kind="z"} 1` + "\n",
		"# TYPE lat_seconds histogram\n",
		`lat_seconds_bucket{le="5e-05"} 1` + "\n",
		`lat_seconds_bucket{le="0.005"} 2` + "\n",
		`lat_seconds_bucket{le="5"} 2` + "\n",
		`lat_seconds_bucket{le="+Inf"} 3` + "\n",
		"lat_seconds_count 3\n",
		"lat_seconds_sum 60.00303\n",
		"g 2.5\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("exposition lacks %q:\n%s", want, out)
		}
	}
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() {
		StanzaIn("message")
		StanzaOut("presence")
		ObserveRoute(time.Microsecond)
		AuthFailed()
		SessionOpened("tcp")
		SessionClosed("tcp")
	}); n != 0 {
		t.Errorf("%v allocations per call", n)
	}
}

func TestSnapshot(t *testing.T) {
	before := Take()
	StanzaIn("iq")
	StanzaOut("weird")
	SessionOpened("websocket")
	s := Take()
	if s.StanzasIn["iq"] != before.StanzasIn["iq"]+1 || s.StanzasOut["other"] != before.StanzasOut["other"]+1 ||
		s.Sessions["websocket"] != before.Sessions["websocket"]+1 {
		t.Errorf("snapshot %+v after %+v", s, before)
	}
	SessionClosed("websocket")
}

func TestMeasureDriver(t *testing.T) {
	d := MeasureDriver(memory.New())
	ctx := context.Background()
	before := StorageDuration.Histogram("keyval", "read").Count()
	kv := d.KeyVal("h", "s")
	if _, err := kv.Get(ctx, "nobody"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get = %v", err)
	}
	if err := kv.Set(ctx, "u", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if got := StorageDuration.Histogram("keyval", "read").Count(); got != before+1 {
		t.Errorf("reads observed: %d, want %d", got, before+1)
	}
	if _, ok := kv.(storage.BulkSetter); !ok {
		t.Error("the wrapper hides the driver's BulkSetter")
	}
	if _, err := d.Archive("h", "a").Append(ctx, "u", storage.Item{Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if StorageErrors.Counter("keyval", "read").Value() != 0 {
		t.Error("not-found counted as an error")
	}
}

func BenchmarkStanzaIn(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		StanzaIn("message")
	}
}

func BenchmarkObserveRoute(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		ObserveRoute(700 * time.Nanosecond)
	}
}
