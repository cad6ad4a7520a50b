package generator_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/generator/envoytest"
)

// tracingVariant is one tracing configuration of the mesh pair.
type tracingVariant struct {
	name string
	// percent is Tracing.SamplingPercent; negative: tracing off.
	percent float64
	// edit changes the generated resources of both sides.
	edit func(*generator.Resources)
	// spansPerRequest is how many spans each request must export
	// (checked exactly when not negative).
	spansPerRequest int
	// sidecarsTracing is how many spans a sampled request leaves (the
	// exports of a random sample are checked to be a multiple).
	sidecarsTracing int
}

// tracingVariants are compared by BenchmarkTracing and
// BenchmarkTracingLoad: no tracing; tracing as generated (the detour to
// a traced internal listener) at 1% and at 100%; and, to price what the
// detour avoids, Envoy's tracer on the connection managers that see
// every request (Weft's config before the detour, as Istio configures
// sidecars) at 1%.
var tracingVariants = []tracingVariant{
	{name: "off", percent: -1, spansPerRequest: 0},
	{name: "on-1pct", percent: 1, spansPerRequest: -1, sidecarsTracing: 2},
	{name: "on-100pct", percent: 100, spansPerRequest: 2},
	{name: "tracer-on-every-request-1pct", percent: 1, edit: tracerOnEveryRequest, spansPerRequest: -1, sidecarsTracing: 2},
}

// tracerOnEveryRequest moves the tracer of the traced internal listeners
// onto the outbound and inbound connection managers, sampling 1%, and
// drops the detour routes and internal listeners.
func tracerOnEveryRequest(res *generator.Resources) {
	var tracing *hcmv3.HttpConnectionManager_Tracing
	isDetour := func(r *routev3.Route) bool { return strings.HasPrefix(r.GetRoute().GetCluster(), "traced|") }
	dropDetours := func(rc *routev3.RouteConfiguration) {
		for _, vh := range rc.GetVirtualHosts() {
			vh.Routes = slices.DeleteFunc(vh.Routes, isDetour)
		}
	}
	var listeners []*listenerv3.Listener
	for _, l := range res.Listeners {
		if l.GetInternalListener() == nil {
			listeners = append(listeners, l)
			continue
		}
		repack(l.GetFilterChains()[0].GetFilters()[0], func(h *hcmv3.HttpConnectionManager) {
			tracing = h.GetTracing()
		}, nil)
	}
	tracing.RandomSampling = &typev3.Percent{Value: 1}
	for _, l := range listeners {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				repack(f, func(h *hcmv3.HttpConnectionManager) {
					h.Tracing = tracing
					dropDetours(h.GetRouteConfig())
				}, func(*tcpproxyv3.TcpProxy) {})
			}
		}
	}
	for _, rc := range res.Routes {
		dropDetours(rc)
	}
	res.Listeners, res.ScopedRoutes = listeners, nil
}

// rotated is vs rotated left by $WEFT_BENCH_ROTATE (default 0), for
// BenchmarkTracingLoad. Go's -count repeats each sub-benchmark back to
// back, which on a shared machine lets one noisy minute land on one
// variant: interleave instead by running the benchmark binary several
// times with -count=1 and WEFT_BENCH_ROTATE=0,1,2,..., so that each run
// starts with another variant.
func rotated(vs []tracingVariant) []tracingVariant {
	n, _ := strconv.Atoi(os.Getenv("WEFT_BENCH_ROTATE"))
	n = (n%len(vs) + len(vs)) % len(vs)
	return slices.Concat(vs[n:], vs[:n])
}

// BenchmarkTracing is the per-request cost of the sidecars' tracer on the
// path client sidecar → server sidecar (mTLS, HTTP/1.1 keep-alive, one
// worker thread each, sequential requests, no traceparent from the app),
// with spans exported over OTLP/gRPC to a receiver in the test. Every
// variant's pair runs side by side and they take turns in blocks
// (interleavePairs, which reports CPU per request and the same-round
// difference to "off"); b.N is the requests per variant. Variants that
// must export a fixed number of spans per request fail otherwise, so a
// broken tracer config cannot pass for a cheap one.
func BenchmarkTracing(b *testing.B) {
	bin, ok := envoytest.Binary()
	if !ok {
		b.Skip("no envoy binary (make envoy)")
	}
	names := make([]string, len(tracingVariants))
	pairs := make([]*meshPair, len(tracingVariants))
	receivers := make([]*otlpReceiver, len(tracingVariants))
	for i, v := range tracingVariants {
		names[i] = v.name
		pairs[i], receivers[i] = startTracedPair(b, bin, v)
	}
	n := interleavePairs(b, names, pairs)
	for i, v := range tracingVariants {
		checkSpans(b, receivers[i], v, n)
	}
}

// BenchmarkTracingLoad is BenchmarkTracing under concurrent load, as in
// the cluster's data-plane benchmark: 16 keep-alive connections sharing
// 1000 requests per second (paced, not closed-loop), b.N requests in
// all (-benchtime=20000x is 20 s). It reports the Envoys' CPU per
// request (envoy-, client-, server-cpu-us/op, from the scheduler as in
// interleavePairs) and the latency percentiles p50-us and p99-us; ns/op
// is the pacing.
func BenchmarkTracingLoad(b *testing.B) {
	bin, ok := envoytest.Binary()
	if !ok {
		b.Skip("no envoy binary (make envoy)")
	}
	const conns, qps = 16, 1000
	for _, v := range rotated(tracingVariants) {
		b.Run(v.name, func(b *testing.B) {
			p, rec := startTracedPair(b, bin, v)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns}}
			warm := pacedLoad(client, p.serviceURL+"/", conns, qps, 500)
			if warm.err != nil {
				b.Fatal(warm.err)
			}
			before := pairCPU(b, p)
			b.ResetTimer()
			res := pacedLoad(client, p.serviceURL+"/", conns, qps, b.N)
			b.StopTimer()
			if res.err != nil {
				b.Fatal(res.err)
			}
			reportPairCPU(b, p, before, b.N)
			slices.Sort(res.latencies)
			b.ReportMetric(float64(res.latencies[len(res.latencies)/2].Microseconds()), "p50-us")
			b.ReportMetric(float64(res.latencies[len(res.latencies)*99/100].Microseconds()), "p99-us")
			checkSpans(b, rec, v, 500+b.N)
		})
	}
}

// startTracedPair starts the mesh pair with v's tracing, reporting to a
// fresh receiver, with Envoy's default export batching (5 spans or 5 s).
func startTracedPair(b *testing.B, bin string, v tracingVariant) (*meshPair, *otlpReceiver) {
	b.Helper()
	rec := startOTLPReceiver(b)
	var tel generator.Telemetry
	if v.percent >= 0 {
		tel.Tracing = &generator.Tracing{CollectorHost: "127.0.0.1", CollectorPort: rec.port, SamplingPercent: v.percent}
	}
	return startMeshPairWith(b, bin, pairConfig{portName: "http", edit: v.edit, telemetry: tel}), rec
}

func getOK(client *http.Client, url string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// pairCPU is the time on CPU both Envoys used so far, in ns (runTime).
func pairCPU(b *testing.B, p *meshPair) [2]int64 {
	return [2]int64{runTime(b, p.client.Pid), runTime(b, p.server.Pid)}
}

// reportPairCPU reports the CPU per request since before, in µs.
func reportPairCPU(b *testing.B, p *meshPair, before [2]int64, n int) {
	now := pairCPU(b, p)
	perReq := func(ns int64) float64 { return float64(ns) / 1e3 / float64(n) }
	client, server := now[0]-before[0], now[1]-before[1]
	b.ReportMetric(perReq(client+server), "envoy-cpu-us/op")
	b.ReportMetric(perReq(client), "client-cpu-us/op")
	b.ReportMetric(perReq(server), "server-cpu-us/op")
}

// checkSpans waits for the exports of n requests (Envoy flushes every 5
// spans or 5 s) and checks their number, so a variant that exports
// nothing, or too much, cannot pass; it reports spans per request. The
// framework's first call of a benchmark (b.N = 1, discarded) is not
// checked, to save the wait.
func checkSpans(b *testing.B, rec *otlpReceiver, v tracingVariant, n int) {
	b.Helper()
	if b.N == 1 {
		return // the framework's probe run; the measured run checks
	}
	var spans []receivedSpan
	switch {
	case v.spansPerRequest > 0:
		want := v.spansPerRequest * n
		spans = rec.waitSpans(b, 15*time.Second, func(s []receivedSpan) bool { return len(s) >= want })
		time.Sleep(200 * time.Millisecond) // a late surplus would show
		if spans = rec.received(); len(spans) != want {
			b.Fatalf("%s: %d spans exported for %d requests, want %d", v.name, len(spans), n, want)
		}
	case v.spansPerRequest == 0:
		time.Sleep(6 * time.Second) // past one flush interval
		if spans = rec.received(); len(spans) != 0 {
			b.Fatalf("%s: %d spans exported, want none: %v", v.name, len(spans), spans[0])
		}
	default:
		time.Sleep(6 * time.Second)
		// Every tracing sidecar exports a sampled request's span; another
		// count is only possible mid-flush.
		spans = rec.waitSpans(b, 6*time.Second, func(s []receivedSpan) bool { return len(s)%v.sidecarsTracing == 0 })
	}
	b.ReportMetric(float64(len(spans))/float64(n), v.name+"-spans/req")
}

// loadResult is what pacedLoad measured.
type loadResult struct {
	latencies []time.Duration
	err       error
}

// pacedLoad sends n GETs over conns connections at qps requests per
// second in all (each connection sends at qps/conns, waiting for its
// answer before the next, so it falls behind rather than piling up when
// the proxies are slow).
func pacedLoad(client *http.Client, url string, conns, qps, n int) loadResult {
	interval := time.Duration(conns) * time.Second / time.Duration(qps)
	var (
		mu   sync.Mutex
		res  loadResult
		wg   sync.WaitGroup
		sent atomic.Int64
	)
	start := time.Now()
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := start.Add(time.Duration(c) * interval / time.Duration(conns))
			var lat []time.Duration
			for sent.Add(1) <= int64(n) {
				time.Sleep(time.Until(next))
				next = next.Add(interval)
				t0 := time.Now()
				if err := getOK(client, url); err != nil {
					mu.Lock()
					res.err = err
					mu.Unlock()
					return
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			res.latencies = append(res.latencies, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return res
}
