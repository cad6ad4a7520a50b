package xds

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
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

// BenchmarkPushTelemetry is one EndpointSlice change pushed to every
// proxy and ACKed by it, with telemetry off (no providers, as pilot runs
// without a collector) and on (metrics to a reader, every change traced,
// spans batched to nowhere), to show what telemetry costs a change:
//
//	go test -run '^$' -bench PushTelemetry -count 6 ./pilot/xds/ | tee /tmp/push.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /telemetry /tmp/push.txt
//
// The ACKs go through the status tracker as go-control-plane's callbacks
// would call it (a response, then its ACK, for every type whose version
// changed), so the per-response metric and the span ending at the ACK are
// timed: they run on the streams' goroutines in pilot, not in the push,
// but they are telemetry's cost of the change.
//
// Besides wall time it reports cpu-ns/op, the process's CPU time (every
// goroutine, the span batcher's and the GC's included): on a machine
// shared with other work, wall time mostly measures the neighbours.
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
	s.tel.start(b.Context()) // as Run does, with or without providers
	acks := &acker{s: s}
	for i, p := range pods {
		conn := s.connect(b.Context(), &corev3.Node{Id: p.Name + "." + p.Namespace}, p, spiffeid.RequireFromString("spiffe://cluster.local/x"), true)
		acks.add(int64(i), conn)
	}
	acks.answer()
	runtime.GC()
	b.ResetTimer()
	cpu0 := processCPU(b)
	for n := range b.N {
		extra := mt.Pod(svcs[0].Namespace, "extra", "sa", "10.200.0.1", "x", true)
		es := mt.Slice(svcs[0])
		if n%2 == 0 {
			es = mt.Slice(svcs[0], extra)
		}
		es.UID, es.ResourceVersion = "uid-0", strconv.Itoa(n)
		st.UpsertEndpointSlice(es)
		s.pushAll(b.Context())
		if got := acks.answer(); got == 0 {
			b.Fatal("the change reached no proxy")
		}
	}
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// processCPU is the user+system CPU time of this process so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// acker plays go-control-plane's delta stream callbacks for every proxy:
// a response for each type whose version changed since the last one sent,
// then the proxy's ACK of it.
type acker struct {
	s       *Server
	streams []*ackStream
}

type ackStream struct {
	key   streamKey
	proxy *proxy
	sent  map[string]string // type URL → version
	nonce int
}

var benchTypes = []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType}

func (a *acker) add(id int64, p *proxy) {
	st := &ackStream{key: streamKey{delta: true, id: id}, proxy: p, sent: map[string]string{}}
	// The stream's first request names the node.
	a.s.status.received(st.key, &corev3.Node{Id: p.nodeID}, "", "", "", false)
	a.streams = append(a.streams, st)
}

// answer sends and ACKs what changed; it returns how many responses.
func (a *acker) answer() int {
	n := 0
	for _, st := range a.streams {
		last := st.proxy.last
		if last == nil {
			continue
		}
		for _, url := range benchTypes {
			v := last.versions[url]
			if last.counts[url] == 0 || st.sent[url] == v {
				continue
			}
			st.nonce++
			nonce := strconv.Itoa(st.nonce)
			a.s.status.sent(st.key, url, nonce, v)
			a.s.status.received(st.key, nil, url, nonce, "", false)
			st.sent[url] = v
			n++
		}
	}
	return n
}
