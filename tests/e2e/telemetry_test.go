//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/api/v1alpha1"
	"github.com/weftmesh/weft/meshctl/dashboard"
	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/telemetry/envoystats"
	"github.com/weftmesh/weft/pilot/telemetry/netprog"
	"github.com/weftmesh/weft/pilot/telemetry/tracestore"
	"github.com/weftmesh/weft/tests/e2e/framework"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
)

// The chart's telemetry collector (telemetry.collector.enabled) and the
// trace store in its pod.
const (
	collectorSelector = "app=weft-otel-collector"
	traceStoreName    = "trace-store"
	traceStorePort    = "16686"
)

// traceStore reads the trace store's query API through the API server's
// pod proxy, so the test needs no port-forward and works on any cluster.
type traceStore struct{ pod string }

// requireTraceStore fails (not skips) when the collector is not installed:
// the suite runs against the local cluster's values, which enable it.
func requireTraceStore(t *testing.T) traceStore {
	t.Helper()
	requireMesh(t)
	ctx := context.Background()
	var pod string
	_, err := eventually(time.Minute, func() error {
		pods, err := clients(t).CoreV1().Pods("weft-system").List(ctx, metav1.ListOptions{LabelSelector: collectorSelector})
		if err != nil {
			return err
		}
		if len(pods.Items) == 0 {
			return fmt.Errorf("no pod %s in weft-system", collectorSelector)
		}
		for _, p := range pods.Items {
			for _, cs := range p.Status.ContainerStatuses {
				if cs.Name == traceStoreName && cs.Ready && p.DeletionTimestamp == nil {
					pod = p.Name
					return nil
				}
			}
		}
		return fmt.Errorf("no collector pod with a ready %s container", traceStoreName)
	})
	require.NoError(t, err, "the telemetry collector is not running: install Weft with telemetry.collector.enabled=true "+
		"(the local cluster's values file does; meshctl upgrade --set telemetry.collector.enabled=true)")
	return traceStore{pod: pod}
}

// get fetches path (with query parameters) and decodes a 200 answer into
// into; it returns the HTTP status.
func (s traceStore) get(ctx context.Context, path string, params map[string]string, into any) (int, error) {
	req := cluster.Client.CoreV1().RESTClient().Get().Namespace("weft-system").Resource("pods").
		Name(s.pod + ":" + traceStorePort).SubResource("proxy").Suffix(path)
	for k, v := range params {
		req = req.Param(k, v)
	}
	var code int
	body, err := req.Do(ctx).StatusCode(&code).Raw()
	if code != http.StatusOK {
		return code, fmt.Errorf("GET %s: status %d: %s", path, code, strings.TrimSpace(string(body)))
	}
	if err != nil {
		return code, fmt.Errorf("GET %s: %w", path, err)
	}
	return code, json.Unmarshal(body, into)
}

// trace fetches one trace; a 404 (not received yet) is an error too.
func (s traceStore) trace(ctx context.Context, id string) ([]tracestore.Span, error) {
	var tr tracestore.TraceResponse
	if _, err := s.get(ctx, "/api/traces/"+id, nil, &tr); err != nil {
		return nil, err
	}
	return tr.Spans, nil
}

// TestTelemetry: what a user of the local cluster sees of the mesh's
// telemetry, end to end through the real collector and trace store.
func TestTelemetry(t *testing.T) {
	store := requireTraceStore(t)
	ctx := context.Background()
	ns, _, curl := meshedApps(t, "e2e-telemetry", true)

	t.Run("a meshed pod's start is one agent.start trace, with pilot signing its CSR in it", func(t *testing.T) {
		var spans []tracestore.Span
		var problem error
		took, _ := eventually(90*time.Second, func() error {
			var err error
			if spans, err = agentStartTrace(ctx, store, curl); err != nil {
				problem = err
				return err
			}
			problem = agentStartComplete(spans, curl)
			return problem
		})
		require.NoError(t, problem, "start trace of %s/%s", curl.Namespace, curl.Name)
		t.Logf("start trace in the store %v after the pod was ready:\n%s", took.Round(100*time.Millisecond), timeline(spans))
	})

	t.Run("a scale-up is one trace from the slice change to every node's rules and every proxy's ACK", func(t *testing.T) {
		nodes := proxyNodes(t)
		scale(t, ns, "httpbin", 3)
		_, err := cluster.WaitPodsReady(ctx, ns, "app=httpbin", 3, 2*time.Minute)
		require.NoError(t, err)
		slice := readySlice(t, ns, "httpbin", 3)
		change := netprog.Change{UID: string(slice.UID), ResourceVersion: slice.ResourceVersion}
		traceID := change.TraceID().String()
		t.Logf("slice %s/%s resourceVersion %s → trace %s", ns, slice.Name, slice.ResourceVersion, traceID)

		var spans []tracestore.Span
		var problem error
		took, _ := eventually(2*time.Minute, func() error {
			var err error
			if spans, err = store.trace(ctx, traceID); err != nil {
				problem = err
				return err
			}
			problem = netprogComplete(spans, nodes, generator.NodeID(ns, curl.Name))
			return problem
		})
		require.NoError(t, problem, "trace %s of the last change of slice %s/%s", traceID, ns, slice.Name)
		t.Logf("trace complete in the store %v after the pods were ready; timeline:\n%s", took.Round(100*time.Millisecond), timeline(spans))
	})

	t.Run("Envoy stats on 15090 count curl → httpbin by workload on both sides", func(t *testing.T) {
		const n = 5
		url := "http://httpbin:8000/status/200"
		outbound := []string{"envoy_cluster_upstream_rq{", `workload="curl"`, `workload_namespace="` + ns + `"`,
			`direction="outbound"`, `destination_service_name="httpbin"`, `destination_service_namespace="` + ns + `"`, `envoy_response_code="200"`}
		inbound := []string{"envoy_cluster_upstream_rq{", `workload="httpbin"`, `workload_namespace="` + ns + `"`,
			`direction="inbound"`, `envoy_response_code="200"`}
		servers, err := cluster.WaitPodsReady(ctx, ns, "app=httpbin", 3, time.Minute)
		require.NoError(t, err)
		outBefore, err := envoyStat(ctx, curl, "127.0.0.1", outbound...)
		require.NoError(t, err)
		inBefore := inboundStat(t, curl, servers, inbound)

		s, err := load(ctx, curl, "curl", n, url)
		require.NoError(t, err)
		require.Equal(t, n, s.Codes["200"], "codes %s errors %v", keys(s.Codes), s.Errors)

		outAfter, err := envoyStat(ctx, curl, "127.0.0.1", outbound...)
		require.NoError(t, err)
		inAfter := inboundStat(t, curl, servers, inbound)
		assert.Equal(t, float64(n), outAfter-outBefore, "curl's sidecar: outbound requests to httpbin with 200, labelled %v", outbound[1:])
		assert.Equal(t, float64(n), inAfter-inBefore, "httpbin's sidecars: inbound requests with 200, labelled %v", inbound[1:])
	})

	t.Run("request metrics: httpbin's sidecars name curl and httpbin, curl's records none", func(t *testing.T) {
		const n = 5
		// Istio's labels (pilot/telemetry/envoystats/requests.go); the
		// trust domain and cluster domain are the cluster's. Only the
		// server's sidecar records (reporter="destination").
		requests := envoystats.PrometheusName(envoystats.MetricRequests) + "{"
		destination := []string{requests, `reporter="destination"`, `connection_security_policy="mutual_tls"`,
			`source_workload="curl"`, `source_workload_namespace="` + ns + `"`, `source_principal="spiffe://`, `/ns/` + ns + `/sa/curl"`,
			`destination_workload="httpbin"`, `destination_workload_namespace="` + ns + `"`,
			`destination_service="httpbin.` + ns + `.svc.`, `response_code="200"`}
		// The client's side is Envoy's cluster stats.
		outbound := []string{"envoy_cluster_upstream_rq{", `workload="curl"`, `direction="outbound"`,
			`destination_service_name="httpbin"`, `destination_service_namespace="` + ns + `"`, `envoy_response_code="200"`}
		servers, err := cluster.WaitPodsReady(ctx, ns, "app=httpbin", 3, time.Minute)
		require.NoError(t, err)
		dstBefore := inboundStat(t, curl, servers, destination)
		outBefore, err := envoyStat(ctx, curl, "127.0.0.1", outbound...)
		require.NoError(t, err)

		s, err := load(ctx, curl, "curl", n, "http://httpbin:8000/status/200")
		require.NoError(t, err)
		require.Equal(t, n, s.Codes["200"], "codes %s errors %v", keys(s.Codes), s.Errors)

		dstAfter := inboundStat(t, curl, servers, destination)
		outAfter, err := envoyStat(ctx, curl, "127.0.0.1", outbound...)
		require.NoError(t, err)
		assert.Equal(t, float64(n), dstAfter-dstBefore, "httpbin's sidecars (reporter=destination), labelled %v", destination)
		assert.Equal(t, float64(n), outAfter-outBefore, "curl's sidecar: cluster stats, labelled %v", outbound[1:])
		own, err := envoyStat(ctx, curl, "127.0.0.1", requests)
		require.NoError(t, err)
		assert.Zero(t, own, "curl's sidecar records request metrics; only the server's sidecar does")
		// meshctl dashboard reads the same requests through its stats
		// filter, by the Service curl addressed.
		all := inboundStat(t, curl, servers, []string{requests, `destination_service="httpbin.` + ns + `.svc.`})
		assert.GreaterOrEqual(t, all, float64(n))
		assert.Equal(t, all, dashboardServed(t, curl, servers, dashboard.Service{Namespace: ns, Name: "httpbin"}),
			"httpbin's requests as meshctl dashboard reads them")
		h, err := echoHeaders(ctx, curl, "http://httpbin:8000/headers")
		require.NoError(t, err)
		wantWeftHeaders(t, h, ns, "httpbin")
	})

	t.Run("a traced request has spans from both sidecars in one trace", func(t *testing.T) {
		traceID, parent := randomHex(16), randomHex(8)
		header := "traceparent: 00-" + traceID + "-" + parent + "-01"
		out, _, err := cluster.Exec(ctx, curl.Namespace, curl.Name, "curl", "curl", "-f", "-timeout", "5s", "-H", header, "http://httpbin:8000/headers")
		require.NoError(t, err)
		assert.Contains(t, out, traceID, "httpbin saw the propagated trace context")

		var spans []tracestore.Span
		var problem error
		took, _ := eventually(90*time.Second, func() error {
			var err error
			if spans, err = store.trace(ctx, traceID); err != nil {
				problem = err
				return err
			}
			problem = sidecarSpansLinked(spans, parent)
			return problem
		})
		require.NoError(t, problem, "trace %s", traceID)
		t.Logf("both sidecars' spans in the store after %v:\n%s", took.Round(100*time.Millisecond), timeline(spans))
	})

	t.Run("a namespace Telemetry with metrics disabled: httpbin's sidecars record no request metrics", func(t *testing.T) {
		tel := telemetryResource("no-metrics", "  metrics: {disabled: true}\n")
		apply(t, ns, tel)
		t.Cleanup(func() { remove(t, ns, tel) })
		url := "http://httpbin:8000/status/200"
		requests := []string{envoystats.PrometheusName(envoystats.MetricRequests) + "{", `destination_workload="httpbin"`}
		inbound := []string{"envoy_cluster_upstream_rq{", `workload="httpbin"`, `direction="inbound"`, `envoy_response_code="200"`}
		servers, err := cluster.WaitPodsReady(ctx, ns, "app=httpbin", 3, time.Minute)
		require.NoError(t, err)
		// In force on new connections once two batches in a row leave the
		// counters alone (the previous subtest saw them count): the three
		// replicas' sidecars take the new listener at slightly different
		// times. Connections curl's sidecar pooled on an old filter chain
		// are served by it until it drains, hence waitDrained after.
		quiet := 0
		waitFor(t, "request metrics off in "+ns, 90*time.Second, func() error {
			before := inboundStat(t, curl, servers, requests)
			s, err := load(ctx, curl, "curl", 6, url)
			if err != nil {
				return err
			}
			if s.Codes["200"] != 6 {
				return fmt.Errorf("codes %s errors %v", keys(s.Codes), s.Errors)
			}
			if after := inboundStat(t, curl, servers, requests); after != before {
				quiet = 0
				return fmt.Errorf("httpbin's sidecars still count: %v → %v", before, after)
			}
			if quiet++; quiet < 2 {
				return fmt.Errorf("one quiet batch, waiting for a second")
			}
			return nil
		})
		waitDrained(t, curl, ns)

		// The stats logger's series live in its filter chain's scope: when
		// a chain of the old listener finishes draining, its series vanish
		// and the sum drops. A drop during the measurement says nothing,
		// so measure again; a rise is a failure at once.
		const n = 5
		for attempt := 1; ; attempt++ {
			reqBefore, inBefore := inboundStat(t, curl, servers, requests), inboundStat(t, curl, servers, inbound)
			s, err := load(ctx, curl, "curl", n, url)
			require.NoError(t, err)
			require.Equal(t, n, s.Codes["200"], "codes %s errors %v", keys(s.Codes), s.Errors)
			reqAfter, inAfter := inboundStat(t, curl, servers, requests), inboundStat(t, curl, servers, inbound)
			require.LessOrEqual(t, reqAfter, reqBefore, "new %s samples on httpbin's sidecars with metrics disabled", requests[0])
			if reqAfter < reqBefore && attempt < 5 {
				t.Logf("a drained chain's series vanished during attempt %d (%v → %v): measuring again", attempt, reqBefore, reqAfter)
				continue
			}
			assert.Equal(t, reqBefore, reqAfter, "request metrics on httpbin's sidecars after %d attempts", attempt)
			assert.Equal(t, float64(n), inAfter-inBefore, "httpbin's sidecars: Envoy's inbound cluster stats still count, labelled %v", inbound[1:])
			break
		}
		// curl's sidecar keeps sending the headers (they follow the
		// mesh-wide setting), and httpbin sees them as with recording on.
		h, err := echoHeaders(ctx, curl, "http://httpbin:8000/headers")
		require.NoError(t, err)
		wantWeftHeaders(t, h, ns, "httpbin")
	})
}

// dashboardServed reads the servers' stats as meshctl dashboard does (its
// StatsFilter, ParsePodStats) and sums the requests they served for svc.
func dashboardServed(t *testing.T, from corev1.Pod, servers []corev1.Pod, svc dashboard.Service) float64 {
	t.Helper()
	query, err := url.ParseQuery(dashboard.StatsFilter)
	require.NoError(t, err)
	sum := 0.0
	for _, p := range servers {
		out, _, err := cluster.Exec(context.Background(), from.Namespace, from.Name, "curl", "curl", "-timeout", "5s",
			"http://"+p.Status.PodIP+":15090/stats/prometheus?"+query.Encode())
		require.NoError(t, err, "stats of %s", p.Name)
		st, err := dashboard.ParsePodStats([]byte(out))
		require.NoError(t, err, "stats of %s", p.Name)
		if c := st.Served[svc]; c != nil {
			sum += c.Requests
		}
	}
	return sum
}

// wantWeftHeaders: the server app saw exactly the three headers the
// client's sidecar sets on mTLS requests, naming curl and the Service
// it addressed (the app sees them whether its namespace records or not).
func wantWeftHeaders(t *testing.T, h map[string][]string, ns, service string) {
	t.Helper()
	got := map[string]string{}
	for k, v := range h {
		if k = strings.ToLower(k); strings.HasPrefix(k, "x-weft-") {
			got[k] = strings.Join(v, ",")
		}
	}
	assert.Len(t, got, 3, "x-weft-* headers httpbin got: %v", got)
	assert.Equal(t, "curl", got["x-weft-source-workload"], "httpbin's x-weft-source-workload")
	assert.Equal(t, ns, got["x-weft-source-namespace"], "httpbin's x-weft-source-namespace")
	assert.True(t, strings.HasPrefix(got["x-weft-destination-service"], service+"."+ns+".svc."),
		"httpbin's x-weft-destination-service: %q", got["x-weft-destination-service"])
}

// proxyNodes are the nodes with a ready weft-proxy: each must report a sync.
func proxyNodes(t *testing.T) []string {
	t.Helper()
	pods, err := clients(t).CoreV1().Pods("weft-system").List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=weft-proxy"})
	require.NoError(t, err)
	var nodes []string
	for _, p := range pods.Items {
		if framework.PodReady(p) {
			nodes = append(nodes, p.Spec.NodeName)
		}
	}
	require.NotEmpty(t, nodes, "no ready weft-proxy")
	sort.Strings(nodes)
	return nodes
}

// readySlice waits for the Service's EndpointSlice to list want ready
// endpoints and returns it.
func readySlice(t *testing.T, ns, service string, want int) discoveryv1.EndpointSlice {
	t.Helper()
	var slice discoveryv1.EndpointSlice
	_, err := eventually(time.Minute, func() error {
		list, err := clients(t).DiscoveryV1().EndpointSlices(ns).List(context.Background(),
			metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + service})
		if err != nil {
			return err
		}
		if len(list.Items) != 1 {
			return fmt.Errorf("%d slices for %s", len(list.Items), service)
		}
		ready := 0
		for _, e := range list.Items[0].Endpoints {
			if e.Conditions.Ready != nil && *e.Conditions.Ready {
				ready++
			}
		}
		if ready != want {
			return fmt.Errorf("%d ready endpoints, want %d", ready, want)
		}
		slice = list.Items[0]
		return nil
	})
	require.NoError(t, err)
	return slice
}

// netprogComplete says what a network-programming trace still lacks: its
// root, a sync span from every node, and an ACKed push span for every
// proxy the root counts as affected (the client among them).
func netprogComplete(spans []tracestore.Span, nodes []string, client string) error {
	var root *tracestore.Span
	synced := map[string]bool{}
	var pushes []tracestore.Span
	for i, sp := range spans {
		switch sp.Name {
		case netprog.SpanChange:
			if sp.ParentSpanID == "" {
				root = &spans[i]
			}
		case netprog.SpanSync:
			synced[sp.Attributes[string(netprog.AttrNode)]] = true
		case netprog.SpanPush:
			pushes = append(pushes, sp)
		}
	}
	if root == nil {
		return fmt.Errorf("no root %s span yet (%d spans)", netprog.SpanChange, len(spans))
	}
	for _, n := range nodes {
		if !synced[n] {
			return fmt.Errorf("no %s span from node %s (have %v)", netprog.SpanSync, n, synced)
		}
	}
	affected := root.Attributes[string(netprog.AttrAffected)]
	if affected == "0" || affected != fmt.Sprint(len(pushes)) {
		return fmt.Errorf("root counts %s affected proxies, the trace has %d %s spans", affected, len(pushes), netprog.SpanPush)
	}
	var proxies []string
	for _, p := range pushes {
		if st := p.Attributes[string(netprog.AttrStatus)]; st != string(netprog.ACK) || p.Status.Code != tracestore.StatusOK {
			return fmt.Errorf("push to %s ended %s (%s %s)", p.Attributes[string(netprog.AttrProxyID)], st, p.Status.Code, p.Status.Message)
		}
		proxies = append(proxies, p.Attributes[string(netprog.AttrProxyID)])
	}
	if !slices.Contains(proxies, client) {
		return fmt.Errorf("no push to the client's proxy %s among %v", client, proxies)
	}
	for _, sp := range spans {
		if sp.ParentSpanID != "" && sp.ParentSpanID != root.SpanID {
			return fmt.Errorf("span %s %s has parent %s, not the root %s", sp.Name, sp.SpanID, sp.ParentSpanID, root.SpanID)
		}
	}
	if root.Status.Code != tracestore.StatusOK {
		return fmt.Errorf("root status %s %s", root.Status.Code, root.Status.Message)
	}
	return nil
}

// sidecarSpansLinked checks a request traced from curl: the client
// sidecar's span continues the caller's context (parent) and httpbin's
// sidecar's span is its child.
func sidecarSpansLinked(spans []tracestore.Span, parent string) error {
	var client, server *tracestore.Span
	for i, sp := range spans {
		switch {
		case sp.Service == "curl" && sp.Kind == tracestore.KindClient:
			client = &spans[i]
		case sp.Service == "httpbin" && sp.Kind == tracestore.KindServer:
			server = &spans[i]
		}
	}
	var services []string
	for _, sp := range spans {
		services = append(services, sp.Service+"/"+sp.Kind)
	}
	switch {
	case client == nil:
		return fmt.Errorf("no CLIENT span of service curl (have %v)", services)
	case server == nil:
		return fmt.Errorf("no SERVER span of service httpbin (have %v)", services)
	case client.ParentSpanID != parent:
		return fmt.Errorf("curl's span has parent %q, want the traceparent's %s", client.ParentSpanID, parent)
	case server.ParentSpanID != client.SpanID:
		return fmt.Errorf("httpbin's span has parent %q, want curl's span %s", server.ParentSpanID, client.SpanID)
	}
	return nil
}

// inboundStat sums an inbound stat over every server's sidecar.
func inboundStat(t *testing.T, from corev1.Pod, servers []corev1.Pod, fragments []string) float64 {
	t.Helper()
	sum := 0.0
	for _, p := range servers {
		v, err := envoyStat(context.Background(), from, p.Status.PodIP, fragments...)
		require.NoError(t, err, "stats of %s", p.Name)
		sum += v
	}
	return sum
}

// timeline renders spans as the lead's issue note shows a trace: span,
// service, where (node or proxy), offset from the root's start, duration,
// outcome.
func timeline(spans []tracestore.Span) string {
	if len(spans) == 0 {
		return "(no spans)"
	}
	// The root's start, else the earliest (spans come sorted by start).
	origin := spans[0].Start
	for _, sp := range spans {
		if sp.ParentSpanID == "" {
			origin = sp.Start
			break
		}
	}
	width := len("span")
	for _, sp := range spans {
		width = max(width, len(sp.Name))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  %-*s %-11s %-55s %10s %10s  %s\n", width, "span", "service", "node / proxy", "offset", "duration", "status")
	for _, sp := range spans {
		where := sp.Attributes[string(netprog.AttrNode)]
		if id := sp.Attributes[string(netprog.AttrProxyID)]; id != "" {
			where = id
		}
		if where == "" {
			where = sp.Resource["k8s.pod.name"]
		}
		outcome := sp.Status.Code
		if st := sp.Attributes[string(netprog.AttrStatus)]; st != "" {
			outcome = st
		}
		fmt.Fprintf(&b, "  %-*s %-11s %-55s %10s %10s  %s\n", width, sp.Name, sp.Service, where,
			sp.Start.Sub(origin).Round(100*time.Microsecond), sp.End.Sub(sp.Start).Round(100*time.Microsecond), outcome)
	}
	return b.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// telemetryResource is a mesh.weft.dev Telemetry named name.
func telemetryResource(name, spec string) string {
	return "apiVersion: mesh.weft.dev/v1alpha1\nkind: Telemetry\nmetadata: {name: " + name + "}\nspec:\n" + spec
}

// echoHeaders sends one request from pod's curl (extra: curl flags such as
// -H) and returns the request headers httpbin saw.
func echoHeaders(ctx context.Context, pod corev1.Pod, url string, extra ...string) (map[string][]string, error) {
	out, err := fetch(ctx, pod, url, extra...)
	if err != nil {
		return nil, err
	}
	var r struct{ Headers map[string][]string }
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return nil, fmt.Errorf("decode %q: %w", out, err)
	}
	return r.Headers, nil
}

// telemetryAccepted reads a Telemetry's Accepted condition, as pilot wrote
// it for the object's current generation.
func telemetryAccepted(ctx context.Context, ns, name string) (metav1.Condition, error) {
	dyn, err := dynamic.NewForConfig(cluster.Config)
	if err != nil {
		return metav1.Condition{}, err
	}
	u, err := dyn.Resource(v1alpha1.TelemetryResource).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return metav1.Condition{}, err
	}
	var tel v1alpha1.Telemetry
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &tel); err != nil {
		return metav1.Condition{}, err
	}
	for _, c := range tel.Status.Conditions {
		if c.Type == "Accepted" && c.ObservedGeneration == tel.Generation {
			return c, nil
		}
	}
	return metav1.Condition{}, fmt.Errorf("no Accepted condition for generation %d yet: %+v", tel.Generation, tel.Status.Conditions)
}

// accessLogLines returns the JSON access log lines of pod's sidecar whose
// path contains token.
func accessLogLines(ctx context.Context, pod corev1.Pod, token string) ([]map[string]any, error) {
	logs, err := cluster.Client.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: sidecarName}).DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	for _, line := range strings.Split(string(logs), "\n") {
		if !strings.HasPrefix(line, "{") || !strings.Contains(line, token) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			return nil, fmt.Errorf("access log line %q: %w", line, err)
		}
		if p, _ := m["path"].(string); strings.Contains(p, token) {
			out = append(out, m)
		}
	}
	return out, nil
}

// TestTelemetryResource: Telemetry resources switch tracing and access
// logs per namespace at runtime, over xDS, without restarting pods. Two
// meshed namespaces: "on" samples every request and logs; "off" neither
// starts nor reports spans and does not log, whatever pilot's flags say.
func TestTelemetryResource(t *testing.T) {
	store := requireTraceStore(t)
	ctx := context.Background()
	nsOn, httpbinOn, curlOn := meshedApps(t, "e2e-telemetry-on", true)
	nsOff, httpbinOff, curlOff := meshedApps(t, "e2e-telemetry-off", true)
	apply(t, nsOn, telemetryResource("default", "  tracing: {randomSamplingPercentage: 100}\n  accessLogging: {disabled: false}\n"))
	apply(t, nsOff, telemetryResource("default", "  tracing: {disabled: true}\n  accessLogging: {disabled: true}\n"))
	const url = "http://httpbin:8000/headers"

	// In force: in "on" every request without a traceparent reaches httpbin
	// with a sampled one (by chance at 1%: three in a row, 1e-6); in "off"
	// a sampled traceparent reaches httpbin unchanged, so neither sidecar
	// made a span of it. One snapshot carries a proxy's tracing and access
	// log, so the access log settings are in force too.
	waitFor(t, "Telemetry in force in "+nsOn, 90*time.Second, func() error {
		for i := range 3 {
			h, err := echoHeaders(ctx, curlOn, url)
			if err != nil {
				return err
			}
			if tp := h["Traceparent"]; len(tp) != 1 || !strings.HasSuffix(tp[0], "-01") {
				return fmt.Errorf("request %d: traceparent %v, want a sampled one", i, tp)
			}
		}
		return nil
	})
	parent := "00-" + randomHex(16) + "-" + randomHex(8) + "-01"
	waitFor(t, "Telemetry in force in "+nsOff, 90*time.Second, func() error {
		for i := range 2 {
			h, err := echoHeaders(ctx, curlOff, url, "-H", "traceparent: "+parent)
			if err != nil {
				return err
			}
			if tp := h["Traceparent"]; len(tp) != 1 || tp[0] != parent {
				return fmt.Errorf("request %d: traceparent %v, want the caller's %s unchanged", i, tp, parent)
			}
		}
		return nil
	})
	waitDrained(t, curlOn, nsOn)
	waitDrained(t, curlOff, nsOff)
	for _, ns := range []string{nsOn, nsOff} {
		waitFor(t, "Telemetry "+ns+"/default Accepted", time.Minute, func() error {
			c, err := telemetryAccepted(ctx, ns, "default")
			if err == nil && c.Status != metav1.ConditionTrue {
				err = fmt.Errorf("Accepted=%s %s: %s", c.Status, c.Reason, c.Message)
			}
			return err
		})
	}

	t.Run("tracing disabled in one namespace: no spans there, while another namespace traces", func(t *testing.T) {
		// Without a traceparent: "off" starts no trace (httpbin gets no
		// traceparent), "on" starts one.
		h, err := echoHeaders(ctx, curlOff, url)
		require.NoError(t, err)
		assert.Empty(t, h["Traceparent"], "%s: a sidecar started a trace with tracing disabled", nsOff)
		h, err = echoHeaders(ctx, curlOn, url)
		require.NoError(t, err)
		require.Len(t, h["Traceparent"], 1, "%s: no trace started", nsOn)
		onTrace := strings.Split(h["Traceparent"][0], "-")[1]
		// With a sampled traceparent: "on" reports both sidecars' spans,
		// "off" none at all, though a sampled caller is always followed
		// where tracing is on. Both requests leave together, so once
		// "on"'s spans are in the store (plus a flush interval), "off"'s
		// would be too.
		offTrace := randomHex(16)
		_, err = echoHeaders(ctx, curlOff, url, "-H", "traceparent: 00-"+offTrace+"-"+randomHex(8)+"-01")
		require.NoError(t, err)

		var spans []tracestore.Span
		var problem error
		took, _ := eventually(90*time.Second, func() error {
			if spans, problem = store.trace(ctx, onTrace); problem != nil {
				return problem
			}
			problem = sidecarSpansLinked(spans, "")
			return problem
		})
		require.NoError(t, problem, "%s: trace %s of a request without traceparent", nsOn, onTrace)
		t.Logf("%s: both sidecars' spans of an unsampled request in the store after %v:\n%s", nsOn, took.Round(100*time.Millisecond), timeline(spans))
		for _, sp := range spans {
			assert.Equal(t, nsOn, sp.Resource["service.namespace"], "span %s %s", sp.Service, sp.Name)
		}
		time.Sleep(10 * time.Second) // Envoy's OpenTelemetry exporter flushes every 5s
		var none tracestore.TraceResponse
		code, err := store.get(ctx, "/api/traces/"+offTrace, nil, &none)
		assert.Equal(t, http.StatusNotFound, code, "%s: spans of trace %s reported with tracing disabled: %v %+v", nsOff, offTrace, err, none.Spans)
	})

	t.Run("access logging turned on by a namespace Telemetry writes JSON lines", func(t *testing.T) {
		token := randomHex(8)
		path := "/anything/" + token
		for _, c := range []corev1.Pod{curlOn, curlOff} {
			s, err := load(ctx, c, "curl", 3, "http://httpbin:8000"+path)
			require.NoError(t, err)
			require.Equal(t, 3, s.Codes["200"], "%s: codes %s errors %v", c.Namespace, keys(s.Codes), s.Errors)
		}
		var lines []map[string]any
		waitFor(t, "access log lines in "+nsOn, 30*time.Second, func() error {
			var err error
			if lines, err = accessLogLines(ctx, httpbinOn, token); err == nil && len(lines) < 3 {
				err = fmt.Errorf("%d of 3 lines", len(lines))
			}
			return err
		})
		assert.Len(t, lines, 3)
		for _, l := range lines {
			assert.Equal(t, "inbound", l["direction"], "%v", l)
			assert.Equal(t, nsOn, l[envoystats.TagWorkloadNamespace], "%v", l)
			assert.Equal(t, "httpbin", l[envoystats.TagWorkload], "%v", l)
			assert.Equal(t, "200", fmt.Sprint(l["response_code"]), "%v", l)
			assert.Equal(t, "GET", l["method"], "%v", l)
			assert.True(t, strings.HasSuffix(fmt.Sprint(l["source_principal"]), "/ns/"+nsOn+"/sa/"+curlOn.Spec.ServiceAccountName),
				"source_principal %v is curl's SPIFFE ID", l["source_principal"])
		}
		// "off" got the same requests at the same time; its log stays
		// empty (Envoy flushes access logs every second).
		time.Sleep(3 * time.Second)
		off, err := accessLogLines(ctx, httpbinOff, token)
		require.NoError(t, err)
		assert.Empty(t, off, "%s: access log lines with accessLogging disabled", nsOff)
	})

	t.Run("a second Telemetry in a namespace is Conflicted and changes nothing", func(t *testing.T) {
		apply(t, nsOn, telemetryResource("zz-newer", "  tracing: {disabled: true}\n"))
		waitFor(t, "Telemetry "+nsOn+"/zz-newer Conflicted", time.Minute, func() error {
			c, err := telemetryAccepted(ctx, nsOn, "zz-newer")
			if err == nil && (c.Status != metav1.ConditionFalse || c.Reason != "Conflicted") {
				err = fmt.Errorf("Accepted=%s %s: %s", c.Status, c.Reason, c.Message)
			}
			return err
		})
		h, err := echoHeaders(ctx, curlOn, url)
		require.NoError(t, err)
		assert.Len(t, h["Traceparent"], 1, "%s: the newer Telemetry's tracing.disabled took effect", nsOn)
	})
}
