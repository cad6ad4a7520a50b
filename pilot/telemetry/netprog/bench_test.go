package netprog

import (
	"context"
	"strconv"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkChangeToThousandProxies is pilot's cost of tracing one slice
// change pushed to and ACKed by 1000 proxies (one span each, a root span,
// batch export to nowhere), without and with a TracerProvider:
//
//	go test -run '^$' -bench ThousandProxies ./pilot/telemetry/netprog/
func BenchmarkChangeToThousandProxies(b *testing.B) {
	for _, traced := range []bool{false, true} {
		b.Run("traced="+strconv.FormatBool(traced), func(b *testing.B) {
			cfg := PushConfig{}
			if traced {
				tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}), sdktrace.WithIDGenerator(IDGenerator()))
				defer func() { _ = tp.Shutdown(context.Background()) }()
				cfg.TracerProvider = tp
			}
			p := NewPushes(cfg)
			ids := make([]string, 1000)
			for i := range ids {
				ids[i] = "pod-" + strconv.Itoa(i) + ".ns"
				p.Pushed(ids[i], 0, map[string]string{eds: "v0"}, nil, nil)
			}
			b.ResetTimer()
			for n := range b.N {
				gen := uint64(n + 1)
				v := strconv.Itoa(n + 1)
				p.Seen(Change{Namespace: "ns", Name: "s", UID: "u", ResourceVersion: v}, gen)
				for _, id := range ids {
					p.Pushed(id, gen, map[string]string{eds: v}, []string{eds}, nil)
				}
				p.RoundDone(gen)
				for _, id := range ids {
					p.Answered(id, eds, v, false, "")
				}
			}
		})
	}
}
