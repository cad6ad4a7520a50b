package xds

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/weftmesh/weft/pilot/model"
	mt "github.com/weftmesh/weft/pilot/model/modeltest"
	"github.com/weftmesh/weft/pilot/telemetry/netprog"
)

// discard is a span exporter that drops everything: the benchmark measures
// pilot's cost of recording, not a collector's.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkPushTelemetry is BenchmarkPush with the network-programming
// bookkeeping on (every slice change traced, every proxy ACKing each push)
// and off, to show what telemetry costs a push:
//
//	go test -run '^$' -bench PushTelemetry -benchtime 200x ./pilot/xds/
func BenchmarkPushTelemetry(b *testing.B) {
	for _, size := range []struct{ proxies, services int }{{100, 100}, {1000, 100}, {100, 1000}} {
		for _, on := range []bool{false, true} {
			name := fmt.Sprintf("proxies=%d/services=%d/telemetry=%v", size.proxies, size.services, on)
			b.Run(name, func(b *testing.B) { benchPush(b, size.proxies, size.services, on) })
		}
	}
}

func benchPush(b *testing.B, proxies, services int, telemetry bool) {
	st := model.NewStore(model.StoreConfig{})
	var svcs []*model.Service
	var pods []*model.Pod
	for i := range services {
		ns := fmt.Sprintf("ns-%d", i%10)
		svc := mt.Service(ns, fmt.Sprintf("svc-%d", i), fmt.Sprintf("10.96.%d.%d", i/250, i%250+1), fmt.Sprintf("app-%d", i), mt.Port("http", 80, 8080))
		st.UpsertService(svc)
		svcs = append(svcs, svc)
	}
	for k := range proxies {
		i := k % services
		p := mt.Pod(svcs[i].Namespace, fmt.Sprintf("pod-%d", k), "sa", fmt.Sprintf("10.1.%d.%d", k/250, k%250+1), fmt.Sprintf("app-%d", i), true)
		st.UpsertPod(p)
		pods = append(pods, p)
	}
	for i, svc := range svcs {
		var backing []*model.Pod
		for k := i; k < len(pods); k += services {
			backing = append(backing, pods[k])
		}
		st.UpsertEndpointSlice(mt.Slice(svc, backing...))
	}
	cfg := Config{Model: st, Authenticator: headerAuthenticator{}}
	if telemetry {
		cfg.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}), sdktrace.WithIDGenerator(netprog.IDGenerator()))
		defer func() { _ = tp.Shutdown(context.Background()) }()
		cfg.TracerProvider = tp
	}
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if telemetry {
		s.tel.start(b.Context())
	}
	var conns []*proxy
	for _, p := range pods {
		conns = append(conns, s.connect(b.Context(), &corev3.Node{Id: p.Name + "." + p.Namespace}, p, spiffeid.RequireFromString("spiffe://cluster.local/x"), true))
	}
	b.ResetTimer()
	for n := range b.N {
		extra := mt.Pod(svcs[0].Namespace, "extra", "sa", "10.200.0.1", "x", true)
		es := mt.Slice(svcs[0])
		if n%2 == 0 {
			es = mt.Slice(svcs[0], extra)
		}
		es.UID, es.ResourceVersion = "uid-0", strconv.Itoa(n)
		st.UpsertEndpointSlice(es)
		s.pushAll(b.Context())
		if telemetry {
			// Every proxy ACKs what it was sent, as Envoy would, and the
			// span of each affected proxy ends. That runs in
			// go-control-plane's stream callbacks, not in the push, but it
			// is telemetry's cost of the change, so it is timed.
			for _, p := range conns {
				if p.last == nil {
					continue
				}
				for url, v := range p.last.versions {
					s.tel.np.Answered(p.nodeID, url, v, false, "")
				}
			}
		}
	}
}
