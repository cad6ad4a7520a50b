package cli

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/meshctl/internal/fakekube"
	"github.com/weftmesh/weft/meshctl/internal/fakestore"
	"github.com/weftmesh/weft/meshctl/internal/golden"
	"github.com/weftmesh/weft/meshctl/trace"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// collectorPod is a running collector pod whose trace store is ready.
func collectorPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: trace.CollectorNamespace, Name: name, Labels: map[string]string{"app": "weft-otel-collector"}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
			{Name: "otel-collector", Ready: true}, {Name: trace.StoreContainer, Ready: true}}},
	}
}

// withStore is a fake mesh with the collector, its port 16686 forwarded to
// a fake store holding the fixture traces.
func withStore(t *testing.T) (*fakekube.Cluster, *fakestore.Store, *httptest.Server) {
	t.Helper()
	c := fakekube.Mesh(fakekube.MeshOptions{Now: now})
	_, err := c.Kube.CoreV1().Pods(trace.CollectorNamespace).Create(context.Background(), collectorPod("weft-otel-collector-5c9f-abcde"), createOpts)
	require.NoError(t, err)
	store := fakestore.New(fakestore.Fixture()...)
	srv := httptest.NewServer(store)
	t.Cleanup(srv.Close)
	require.NoError(t, c.Forwards.Set("weft-system/weft-otel-collector-5c9f-abcde:16686", srv.URL))
	return c, store, srv
}

func TestTraceList(t *testing.T) {
	c, store, _ := withStore(t)
	r := run(t, c, "", "trace")
	require.Equal(t, 0, r.code, r.errOut)
	golden.Check(t, "trace-list.txt", []byte(r.out))
	assert.Contains(t, store.Requests, "/api/traces?limit=20&name=endpointslice.change")
	assert.Equal(t, 0, c.Forwards.Open, "the port-forward is closed")

	r = run(t, c, "", "trace", "--all", "--service", "httpbin", "-o", "json")
	require.Equal(t, 0, r.code, r.errOut)
	golden.Check(t, "trace-list.json", []byte(r.out))
	assert.Contains(t, store.Requests, "/api/traces?limit=20&service=httpbin")

	r = run(t, c, "", "trace", "--service", "nobody")
	require.Equal(t, 0, r.code, r.errOut)
	assert.Equal(t, "no traces with root span \"endpointslice.change\" and service \"nobody\" in the store (meshctl trace --all lists every trace)\n", r.out)
}

func TestTraceTimeline(t *testing.T) {
	c, _, _ := withStore(t)
	// The command prints the trace package's timeline, golden there.
	r := run(t, c, "", "trace", strings.ToUpper(fakestore.NetprogID))
	require.Equal(t, 0, r.code, r.errOut)
	golden.Check(t, "../../trace/testdata/netprog.txt", []byte(r.out))
	assert.Contains(t, r.out, "3 nodes programmed in max 412ms, 4 proxies ACKed in max 1.2s, 1 NACKed\n")

	r = run(t, c, "", "trace", fakestore.NetprogID, "-o", "json")
	require.Equal(t, 0, r.code, r.errOut)
	golden.Check(t, "../../trace/testdata/netprog.json", []byte(r.out))

	r = run(t, c, "", "trace", fakestore.NetprogID, "-o", "yaml")
	require.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.out, "nodesMaxSeconds: 0.412")
}

func TestTraceErrors(t *testing.T) {
	c, store, srv := withStore(t)
	r := run(t, c, "", "trace", "00000000000000000000000000000001")
	oneLineError(t, r, 1, "error: trace 00000000000000000000000000000001 is not in the trace store (it keeps recent traces only; meshctl trace --all lists them)")

	r = run(t, c, "", "trace", "abc")
	oneLineError(t, r, 2, `error: trace ID "abc" is not 32 hex digits`)
	r = run(t, c, "", "trace", "--limit", "0")
	oneLineError(t, r, 2, "error: --limit 0: want a positive number")
	r = run(t, c, "", "trace", "a", "b")
	oneLineError(t, r, 2, "accepts at most 1 arg(s)")

	store.Status = http.StatusServiceUnavailable
	r = run(t, c, "", "trace")
	oneLineError(t, r, 1, "error: trace store answered 503 Service Unavailable: fake store failure")

	srv.Close()
	r = run(t, c, "", "trace")
	oneLineError(t, r, 1, "error: cannot reach the trace store in pod weft-system/weft-otel-collector-5c9f-abcde port 16686: ")
	assert.Empty(t, r.out)

	r = run(t, fakekube.Mesh(fakekube.MeshOptions{Now: now}), "", "trace")
	oneLineError(t, r, 1, "error: telemetry collector not installed (no pod app=weft-otel-collector in namespace weft-system): "+trace.InstallHint)
}
