//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/telemetry/netprog"
	"github.com/weftmesh/weft/pilot/telemetry/tracestore"
	"github.com/weftmesh/weft/tests/e2e/framework"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	var b strings.Builder
	fmt.Fprintf(&b, "  %-22s %-11s %-55s %10s %10s  %s\n", "span", "service", "node / proxy", "offset", "duration", "status")
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
		fmt.Fprintf(&b, "  %-22s %-11s %-55s %10s %10s  %s\n", sp.Name, sp.Service, where,
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
