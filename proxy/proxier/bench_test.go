package proxier

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/weftmesh/weft/pilot/telemetry/netprog"
	"github.com/weftmesh/weft/proxy/conntrack"
	"github.com/weftmesh/weft/proxy/internal/fixtures"
	"github.com/weftmesh/weft/proxy/iptables"
	"github.com/weftmesh/weft/proxy/metrics"
)

// discard drops exported spans: the benchmark measures weft-proxy's cost of
// recording them, not a collector's.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkEndpointChangeSync is one EndpointSlice change → one partial sync
// (plan, restore into the fake kernel, metrics, trace) with telemetry off
// (no-op meter and tracer, weft-proxy without an OTLP endpoint) and on (the
// SDK meter and a tracer recording a weft-proxy.sync span per change), to
// show what telemetry costs a sync:
//
//	go test -run '^$' -bench EndpointChangeSync ./proxy/proxier/
func BenchmarkEndpointChangeSync(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("services=%d/telemetry=%v", n, on), func(b *testing.B) { benchSync(b, n, on) })
		}
	}
}

func benchSync(b *testing.B, n int, telemetry bool) {
	w := fixtures.Scale("bench", n)
	cfg := Config{
		Tracker: w.Tracker(), ClusterCIDR: fixtures.ClusterCIDR, NodeIPs: fixtures.NodeIPs,
		MinSyncPeriod: time.Second, SyncPeriod: 30 * time.Second,
		IPTables: iptables.NewFake(), Conntrack: &conntrack.Fake{}, Clock: clocktesting.NewFakeClock(time.Unix(5000, 0)),
	}
	meter := noop.NewMeterProvider().Meter("bench")
	if telemetry {
		meter = sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader())).Meter("bench")
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}), sdktrace.WithIDGenerator(netprog.IDGenerator()))
		b.Cleanup(func() {
			if err := tp.Shutdown(context.Background()); err != nil {
				b.Error(err)
			}
		})
		cfg.Tracing = netprog.NewSyncRecorder(netprog.SyncConfig{TracerProvider: tp, Node: fixtures.NodeName})
	}
	m, err := metrics.New(meter)
	if err != nil {
		b.Fatal(err)
	}
	cfg.Metrics = m
	p, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	p.Synced()
	ctx := context.Background()
	if err := p.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	clock := cfg.Clock.(*clocktesting.FakeClock)
	b.ResetTimer()
	for i := range b.N {
		k := i % n
		eps := []fixtures.EP{fixtures.EP(fmt.Sprintf("10.250.%d.%d", (i/250)%250, i%250+1))}
		es := fixtures.Slice("bench", fmt.Sprintf("svc-%d", k), "http", 8080, v1.ProtocolTCP, eps...)
		es.UID, es.ResourceVersion = types.UID("uid-"+strconv.Itoa(k)), strconv.Itoa(i+2)
		cfg.Tracker.SetSlice(es)
		clock.Step(time.Second)
		if err := p.Sync(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
