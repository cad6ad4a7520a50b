package generator_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/generator/envoytest"
	"github.com/weftmesh/weft/pilot/model"
	es "github.com/weftmesh/weft/pilot/telemetry/envoystats"
)

// Labels of a request from productpage-v1 to reviews-v1 (the pair's pods)
// over mesh mTLS.
var (
	pairClientPrincipal = "spiffe://cluster.local/ns/" + ns + "/sa/productpage"
	pairService         = "reviews." + ns + ".svc.cluster.local"
)

// requestMetricNames are every request metric as scraped (histograms by
// their _count series).
var requestMetricNames = []string{
	es.PrometheusName(es.MetricRequests),
	es.PrometheusName(es.MetricRequestDuration) + "_count",
	es.PrometheusName(es.MetricRequestBytes) + "_count",
	es.PrometheusName(es.MetricResponseBytes) + "_count",
	es.PrometheusName(es.MetricTCPConnectionsClosed),
	es.PrometheusName(es.MetricTCPSentBytes),
	es.PrometheusName(es.MetricTCPReceivedBytes),
}

// TestRequestMetricsWithEnvoy sends requests through a real client
// sidecar and server sidecar and reads both ends' /stats/prometheus: the
// server names the source and destination workload; the client records
// no request metrics, only its cluster stats; a caller outside the mesh
// cannot forge its identity into the server's labels or the app's
// headers; the server's app sees the client sidecar's x-weft-* headers
// (not what the client app sent), and no app gets one back.
func TestRequestMetricsWithEnvoy(t *testing.T) {
	bin, ok := envoytest.Binary()
	if !ok {
		t.Skip("no envoy binary (make envoy)")
	}
	p := startMeshPair(t, bin, "http", nil)

	const n = 3
	for range n {
		req, err := http.NewRequest(http.MethodGet, p.serviceURL+"/reviews/1", nil)
		if err != nil {
			t.Fatal(err)
		}
		// The client app tries to pass for another workload.
		req.Header.Set(generator.HeaderSourceWorkload, "spoofed-by-app")
		noExchangeHeaders(t, "the client app's response", do(t, req).Header)
		wantExchangeHeaders(t, p.app.lastHeaders(), "productpage-v1", ns, pairService)
	}
	destination := map[string]string{
		es.TagReporter: es.ReporterDestination, es.TagConnectionSecurityPolicy: es.SecurityMutualTLS,
		es.TagSourceWorkload: "productpage-v1", es.TagSourceWorkloadNamespace: ns, es.TagSourcePrincipal: pairClientPrincipal,
		es.TagDestinationWorkload: "reviews-v1", es.TagDestinationWorkloadNamespace: ns, es.TagDestinationService: pairService,
		es.TagRequestProtocol: "HTTP/1.1", es.TagResponseCode: "200",
	}
	waitSample(t, p.server, es.PrometheusName(es.MetricRequests), destination, n)
	for _, h := range []string{es.MetricRequestDuration, es.MetricRequestBytes, es.MetricResponseBytes} {
		waitSample(t, p.server, es.PrometheusName(h)+"_count", destination, n)
	}
	// The client's view is Envoy's cluster stats, tagged by the
	// bootstrap; request metrics would have shown up by now (its
	// histograms flush with the server's, every second).
	if got := sumSamples(t, p.client, "envoy_cluster_upstream_rq", map[string]string{
		es.TagWorkload: "productpage-v1", es.TagDirection: "outbound", es.TagDestinationServiceName: "reviews",
		"envoy_response_code": "200",
	}); got != n {
		t.Errorf("client's envoy_cluster_upstream_rq to reviews with 200 = %v, want %d", got, n)
	}
	time.Sleep(1500 * time.Millisecond)
	if got := scrape(t, p.client, requestMetricNames...); len(got) != 0 {
		t.Errorf("the client sidecar records request metrics: %v", got)
	}

	t.Run("a plaintext caller is unknown whatever it claims", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodPost, p.podURL+"/reviews/1", strings.NewReader("body"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(generator.HeaderSourceWorkload, "forged")
		req.Header.Set(generator.HeaderSourceNamespace, "forged-ns")
		req.Header.Set(generator.HeaderDestinationService, "forged.example.com")
		noExchangeHeaders(t, "the plaintext caller's response", do(t, req).Header)
		noExchangeHeaders(t, "the server app's request", p.app.lastHeaders())
		waitSample(t, p.server, es.PrometheusName(es.MetricRequests), map[string]string{
			es.TagReporter: es.ReporterDestination, es.TagSourceWorkload: es.Unknown, es.TagSourceWorkloadNamespace: es.Unknown,
			es.TagSourcePrincipal: es.Unknown, es.TagDestinationWorkload: "reviews-v1", es.TagDestinationWorkloadNamespace: ns,
			es.TagDestinationService: pairService, es.TagRequestProtocol: "HTTP/1.1", es.TagResponseCode: "200",
			es.TagConnectionSecurityPolicy: es.SecurityNone,
		}, 1)
		if total := sumSamples(t, p.server, es.PrometheusName(es.MetricRequests), nil); total != n+1 {
			t.Errorf("server counted %v requests in all, want %d: each once", total, n+1)
		}
	})
}

// TestRequestMetricsDisabledWithEnvoy: a namespace Telemetry turns the
// server's recording off while clients keep sending the headers (they
// follow the mesh-wide setting): the server records nothing, and its app
// sees the client's headers as it would with recording on.
func TestRequestMetricsDisabledWithEnvoy(t *testing.T) {
	bin, ok := envoytest.Binary()
	if !ok {
		t.Skip("no envoy binary (make envoy)")
	}
	off := &model.TelemetryPolicy{Namespace: ns, Name: "default", Settings: model.TelemetrySettings{MetricsDisabled: model.Some(true)}}
	p := startMeshPairWith(t, bin, pairConfig{portName: "http", objects: model.Objects{Telemetry: []*model.TelemetryPolicy{off}}})
	const n = 3
	for range n {
		req, err := http.NewRequest(http.MethodGet, p.serviceURL+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		noExchangeHeaders(t, "the client app's response", do(t, req).Header)
		wantExchangeHeaders(t, p.app.lastHeaders(), "productpage-v1", ns, pairService)
	}
	inbound := map[string]string{es.TagWorkload: "reviews-v1", es.TagDirection: "inbound", "envoy_response_code": "200"}
	deadline := time.Now().Add(15 * time.Second)
	for sumSamples(t, p.server, "envoy_cluster_upstream_rq", inbound) != n && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if got := sumSamples(t, p.server, "envoy_cluster_upstream_rq", inbound); got != n {
		t.Fatalf("server's inbound envoy_cluster_upstream_rq with 200 = %v, want %d", got, n)
	}
	time.Sleep(1500 * time.Millisecond) // a stats flush
	for _, e := range []*envoytest.Envoy{p.client, p.server} {
		if got := scrape(t, e, requestMetricNames...); len(got) != 0 {
			t.Errorf("request metrics recorded with metrics disabled: %v", got)
		}
	}
}

// TestRequestMetricsWithoutClientHeadersWithEnvoy: with request metrics
// off mesh-wide, clients send no headers; a namespace that records
// anyway names every mTLS caller "unknown" (its principal still names
// it) and the destination Service by the port, and so do the headers its
// app sees.
func TestRequestMetricsWithoutClientHeadersWithEnvoy(t *testing.T) {
	bin, ok := envoytest.Binary()
	if !ok {
		t.Skip("no envoy binary (make envoy)")
	}
	on := &model.TelemetryPolicy{Namespace: ns, Name: "default", Settings: model.TelemetrySettings{MetricsDisabled: model.Some(false)}}
	p := startMeshPairWith(t, bin, pairConfig{portName: "http", telemetry: generator.Telemetry{RequestMetricsDisabled: true},
		objects: model.Objects{Telemetry: []*model.TelemetryPolicy{on}}})
	const n = 2
	for range n {
		req, err := http.NewRequest(http.MethodGet, p.serviceURL+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		do(t, req)
		wantExchangeHeaders(t, p.app.lastHeaders(), es.Unknown, es.Unknown, pairService)
	}
	waitSample(t, p.server, es.PrometheusName(es.MetricRequests), map[string]string{
		es.TagReporter: es.ReporterDestination, es.TagConnectionSecurityPolicy: es.SecurityMutualTLS,
		es.TagSourceWorkload: es.Unknown, es.TagSourceWorkloadNamespace: es.Unknown, es.TagSourcePrincipal: pairClientPrincipal,
		es.TagDestinationWorkload: "reviews-v1", es.TagDestinationWorkloadNamespace: ns, es.TagDestinationService: pairService,
		es.TagRequestProtocol: "HTTP/1.1", es.TagResponseCode: "200",
	}, n)
}

// TestRequestMetricsDeniedWithEnvoy: a request the server's RBAC denies
// never reaches the route table, yet the logger reads the client's
// headers from the request itself, so the denial counts with its source.
func TestRequestMetricsDeniedWithEnvoy(t *testing.T) {
	bin, ok := envoytest.Binary()
	if !ok {
		t.Skip("no envoy binary (make envoy)")
	}
	denyAll := &model.AuthzPolicy{Namespace: ns, Name: "allow-nothing", Action: model.AuthzAllow}
	p := startMeshPairWith(t, bin, pairConfig{portName: "http", objects: model.Objects{Authz: []*model.AuthzPolicy{denyAll}}})
	resp, err := http.Get(p.serviceURL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("GET through the mesh: %s, want 403 from the server's RBAC", resp.Status)
	}
	waitSample(t, p.server, es.PrometheusName(es.MetricRequests), map[string]string{
		es.TagReporter: es.ReporterDestination, es.TagConnectionSecurityPolicy: es.SecurityMutualTLS,
		es.TagSourceWorkload: "productpage-v1", es.TagSourceWorkloadNamespace: ns, es.TagSourcePrincipal: pairClientPrincipal,
		es.TagDestinationWorkload: "reviews-v1", es.TagDestinationWorkloadNamespace: ns, es.TagDestinationService: pairService,
		es.TagRequestProtocol: "HTTP/1.1", es.TagResponseCode: "403",
	}, 1)
}

// TestTCPMetricsWithEnvoy: the stats logger also works on TCP proxies (at
// connection close) on the server's side; peer workloads are unknown
// there, the server still knows the caller's SPIFFE ID.
func TestTCPMetricsWithEnvoy(t *testing.T) {
	bin, ok := envoytest.Binary()
	if !ok {
		t.Skip("no envoy binary (make envoy)")
	}
	p := startMeshPair(t, bin, "tcp-reviews", nil)
	req, err := http.NewRequest(http.MethodGet, p.serviceURL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Close = true // the loggers run when the connection closes
	do(t, req)
	destination := map[string]string{
		es.TagReporter: es.ReporterDestination, es.TagSourceWorkload: es.Unknown, es.TagSourceWorkloadNamespace: es.Unknown,
		es.TagSourcePrincipal: pairClientPrincipal, es.TagDestinationWorkload: "reviews-v1",
		es.TagDestinationWorkloadNamespace: ns, es.TagDestinationService: pairService, es.TagRequestProtocol: es.ProtocolTCP,
		es.TagConnectionSecurityPolicy: es.SecurityMutualTLS,
	}
	waitSample(t, p.server, es.PrometheusName(es.MetricTCPConnectionsClosed), destination, 1)
	for _, s := range scrape(t, p.server, es.PrometheusName(es.MetricTCPSentBytes), es.PrometheusName(es.MetricTCPReceivedBytes)) {
		if s.value <= 0 {
			t.Errorf("%s %v = %v, want the request's bytes", s.name, s.labels, s.value)
		}
	}
	if got := scrape(t, p.client, requestMetricNames...); len(got) != 0 {
		t.Errorf("the client sidecar records request metrics: %v", got)
	}
}

func do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s", req.Method, req.URL, resp.Status)
	}
	return resp
}

// noExchangeHeaders: no x-weft-* header in h, which what names.
func noExchangeHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	if h == nil {
		t.Fatalf("%s: none", what)
	}
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "x-weft-") {
			t.Errorf("%s has %s: %q", what, k, h.Get(k))
		}
	}
}

// wantExchangeHeaders: the x-weft-* headers of h are the three request
// headers with these values.
func wantExchangeHeaders(t *testing.T, h http.Header, workload, namespace, service string) {
	t.Helper()
	got := map[string]string{}
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "x-weft-") {
			got[strings.ToLower(k)] = strings.Join(h.Values(k), ",")
		}
	}
	want := map[string]string{
		generator.HeaderSourceWorkload:     workload,
		generator.HeaderSourceNamespace:    namespace,
		generator.HeaderDestinationService: service,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the server app's x-weft-* request headers (-want +got):\n%s", diff)
	}
}

// sumSamples adds the samples of name whose labels include want.
func sumSamples(t *testing.T, e *envoytest.Envoy, name string, want map[string]string) float64 {
	t.Helper()
	sum := 0.0
	for _, s := range scrape(t, e, name) {
		match := true
		for k, v := range want {
			match = match && s.labels[k] == v
		}
		if match {
			sum += s.value
		}
	}
	return sum
}
