package trace_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/meshctl/internal/fakekube"
	"github.com/weftmesh/weft/meshctl/internal/fakestore"
	"github.com/weftmesh/weft/meshctl/kube"
	"github.com/weftmesh/weft/meshctl/trace"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestClient(t *testing.T) {
	store := fakestore.New(fakestore.Fixture()...)
	srv := httptest.NewServer(store)
	defer srv.Close()
	c := &trace.Client{BaseURL: srv.URL}
	ctx := context.Background()

	all, err := c.List(ctx, trace.Query{})
	require.NoError(t, err)
	require.Len(t, all, 3)
	assert.Equal(t, []string{fakestore.NetprogID, fakestore.RequestID, fakestore.DeleteID}, []string{all[0].TraceID, all[1].TraceID, all[2].TraceID}, "newest first")

	np, err := c.List(ctx, trace.Query{Name: trace.SpanChange, Service: "weft-pilot", Limit: 5})
	require.NoError(t, err)
	require.Len(t, np, 1)
	assert.Equal(t, fakestore.NetprogID, np[0].TraceID)
	assert.Equal(t, "/api/traces?limit=5&name=endpointslice.change&service=weft-pilot", store.Requests[len(store.Requests)-1])

	none, err := c.List(ctx, trace.Query{Service: "nobody"})
	require.NoError(t, err)
	assert.NotNil(t, none)
	assert.Empty(t, none)

	tr, err := c.Get(ctx, fakestore.NetprogID)
	require.NoError(t, err)
	assert.Len(t, tr.Spans, 9)
	for i := 1; i < len(tr.Spans); i++ {
		assert.False(t, tr.Spans[i].Start.Before(tr.Spans[i-1].Start), "sorted by start")
	}

	_, err = c.Get(ctx, "00000000000000000000000000000001")
	var nf *trace.NotFoundError
	require.ErrorAs(t, err, &nf)
	assert.Equal(t, "00000000000000000000000000000001", nf.ID)

	store.Status = http.StatusInternalServerError
	_, err = c.List(ctx, trace.Query{})
	var ae *trace.AnswerError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "trace store answered 500 Internal Server Error: fake store failure", err.Error())

	srv.Close()
	_, err = c.List(ctx, trace.Query{})
	var te *trace.TransportError
	require.ErrorAs(t, err, &te)
}

func TestAttributesOfAnyType(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"traceId":"t","spans":[{"spanId":"a","name":"x","attributes":{"n":3,"b":true,"l":["a","b"],"s":"v"}}]}`))
	}))
	defer srv.Close()
	tr, err := (&trace.Client{BaseURL: srv.URL}).Get(context.Background(), "t")
	require.NoError(t, err)
	assert.Equal(t, trace.Attributes{"n": "3", "b": "true", "l": "a,b", "s": "v"}, tr.Spans[0].Attributes)
}

func TestParseTraceID(t *testing.T) {
	id, err := trace.ParseTraceID(" 4BF92F3577B34DA6A3CE929D0E0E4736 ")
	require.NoError(t, err)
	assert.Equal(t, fakestore.NetprogID, id)
	for _, bad := range []string{"", "4bf9", "4bf92f3577b34da6a3ce929d0e0e473g", "00000000000000000000000000000000"} {
		_, err := trace.ParseTraceID(bad)
		assert.Error(t, err, bad)
	}
}

// collector is a pod of the collector with the trace-store container in
// the given state.
func collector(name string, phase corev1.PodPhase, ready bool, waiting string) *corev1.Pod {
	cs := corev1.ContainerStatus{Name: trace.StoreContainer, Ready: ready}
	if waiting != "" {
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: waiting}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: trace.CollectorNamespace, Name: name, Labels: map[string]string{"app": "weft-otel-collector"}},
		Status: corev1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{
			{Name: "otel-collector", Ready: true}, cs}},
	}
}

func TestStorePod(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		pods []*corev1.Pod
		want string
		err  string
	}{
		{name: "none", err: "telemetry collector not installed (no pod app=weft-otel-collector in namespace weft-system): " + trace.InstallHint},
		{name: "ready", pods: []*corev1.Pod{collector("c-1", corev1.PodPending, false, ""), collector("c-2", corev1.PodRunning, true, "")}, want: "c-2"},
		{name: "pending", pods: []*corev1.Pod{collector("c-1", corev1.PodPending, false, "")},
			err: "trace store not ready: pod weft-system/c-1 is Pending (kubectl -n weft-system describe pod c-1)"},
		{name: "crashing", pods: []*corev1.Pod{collector("c-1", corev1.PodRunning, false, "CrashLoopBackOff"), collector("c-2", corev1.PodFailed, false, "")},
			err: "trace store not ready in any collector pod of weft-system: c-1 has container trace-store waiting: CrashLoopBackOff; c-2 is Failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := fakekube.New()
			for _, p := range c.pods {
				_, err := cl.Kube.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
				require.NoError(t, err)
			}
			pod, err := trace.StorePod(ctx, cl.Client())
			if c.err != "" {
				require.Error(t, err)
				assert.Equal(t, c.err, kube.Message(err))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, pod)
		})
	}
}

func TestForwardedReconnects(t *testing.T) {
	ctx := context.Background()
	cl := fakekube.New(collector("c-1", corev1.PodRunning, true, ""))
	srv := httptest.NewServer(fakestore.New(fakestore.Fixture()...))
	require.NoError(t, cl.Forwards.Set("weft-system/c-1:16686", srv.URL))
	f := trace.NewForwarded(cl.Client())
	defer f.Close()

	_, err := f.Get(ctx, fakestore.NetprogID)
	require.NoError(t, err)
	_, err = f.List(ctx, trace.Query{})
	require.NoError(t, err)
	assert.Equal(t, []string{"weft-system/c-1:16686"}, cl.Forwards.Calls, "one tunnel for both requests")

	// The collector restarted: the old tunnel's port is dead, a new one works.
	srv.Close()
	srv2 := httptest.NewServer(fakestore.New(fakestore.Fixture()...))
	defer srv2.Close()
	require.NoError(t, cl.Forwards.Set("weft-system/c-1:16686", srv2.URL))
	_, err = f.Get(ctx, fakestore.NetprogID)
	require.NoError(t, err)
	assert.Len(t, cl.Forwards.Calls, 2, "reconnected once")
	assert.Equal(t, 1, cl.Forwards.Open, "the broken tunnel was stopped")

	// Unknown IDs are not connection problems.
	_, err = f.Get(ctx, "00000000000000000000000000000001")
	var nf *trace.NotFoundError
	assert.ErrorAs(t, err, &nf)
	assert.Len(t, cl.Forwards.Calls, 2)

	// Nothing listens behind the tunnel: one sentence naming the pod.
	srv2.Close()
	_, err = f.List(ctx, trace.Query{})
	require.Error(t, err)
	assert.Contains(t, kube.Message(err), "cannot reach the trace store in pod weft-system/c-1 port 16686: ")
	assert.Equal(t, 0, cl.Forwards.Open)

	cl.Forwards.Fail("weft-system/c-1:16686", errors.New("pods \"c-1\" not found"))
	_, err = f.List(ctx, trace.Query{})
	assert.Equal(t, `cannot reach the trace store in pod weft-system/c-1 port 16686: pods "c-1" not found`, kube.Message(err))
}
