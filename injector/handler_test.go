package injector

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/pilot/telemetry"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

var podKind = metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}

func podRequest(t *testing.T, pod *corev1.Pod, ns string) admission.Request {
	t.Helper()
	raw, err := json.Marshal(pod)
	require.NoError(t, err)
	return rawRequest(raw, ns)
}

func rawRequest(raw []byte, ns string) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "req-1", Kind: podKind, Operation: admissionv1.Create, Namespace: ns,
		Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Object:   runtime.RawExtension{Raw: raw},
	}}
}

func fakeReader(objs ...client.Object) client.Reader {
	return fake.NewClientBuilder().WithObjects(objs...).Build()
}

func newTestHandler(t *testing.T, cfg HandlerConfig) *Handler {
	t.Helper()
	cfg.Injection = testConfig()
	h, err := NewHandler(cfg)
	require.NoError(t, err)
	return h
}

// applyPatch applies the response's JSON patch to the request's pod.
func applyPatch(t *testing.T, raw []byte, resp admission.Response) *corev1.Pod {
	t.Helper()
	ops, err := json.Marshal(resp.Patches)
	require.NoError(t, err)
	patch, err := jsonpatch.DecodePatch(ops)
	require.NoError(t, err)
	out, err := patch.Apply(raw)
	require.NoError(t, err)
	var pod corev1.Pod
	require.NoError(t, json.Unmarshal(out, &pod))
	return &pod
}

func TestHandlerPatchMatchesMutate(t *testing.T) {
	for _, name := range []string{"plain", "init-containers", "probes", "excluded-ports"} {
		t.Run(name, func(t *testing.T) {
			ns, pod := readCase(t, "testdata/in/"+name+".yaml")
			h := newTestHandler(t, HandlerConfig{Namespaces: fakeReader(ns)})
			req := podRequest(t, pod, ns.Name)
			resp := h.Handle(context.Background(), req)
			require.True(t, resp.Allowed, "%+v", resp.Result)
			require.NotNil(t, resp.PatchType)
			assert.Equal(t, admissionv1.PatchTypeJSONPatch, *resp.PatchType)

			want, err := Mutate(pod, ns, testConfig())
			require.NoError(t, err)
			assert.Empty(t, cmp.Diff(want.Pod, applyPatch(t, req.Object.Raw, resp)))
		})
	}
}

func TestHandlerAdmitsSkippedPodsUnchanged(t *testing.T) {
	ns, pod := readCase(t, "testdata/in/opted-out.yaml")
	h := newTestHandler(t, HandlerConfig{Namespaces: fakeReader(ns)})
	resp := h.Handle(context.Background(), podRequest(t, pod, ns.Name))
	assert.True(t, resp.Allowed)
	assert.Empty(t, resp.Patches)
	assert.Nil(t, resp.PatchType)
	assert.Contains(t, resp.Result.Message, "sidecar.weft.dev/inject=false")
}

func TestHandlerRefusesBadInputWith400(t *testing.T) {
	ns, bad := readCase(t, "testdata/in/bad-resources.yaml")
	h := newTestHandler(t, HandlerConfig{Namespaces: fakeReader(ns)})
	cases := map[string]struct {
		req  admission.Request
		want string
	}{
		"not JSON":         {rawRequest([]byte(`{"spec": `), "shop"), "cannot decode the pod"},
		"wrong field type": {rawRequest([]byte(`{"apiVersion":"v1","kind":"Pod","spec":{"containers":"app"}}`), "shop"), "cannot decode the pod"},
		"empty object":     {rawRequest(nil, "shop"), "cannot decode the pod"},
		"bad annotation":   {podRequest(t, bad, "shop"), `proxy.weft.dev/cpu="lots" is not a quantity`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			resp := h.Handle(context.Background(), c.req)
			assert.False(t, resp.Allowed)
			require.NotNil(t, resp.Result)
			assert.EqualValues(t, http.StatusBadRequest, resp.Result.Code)
			assert.Equal(t, metav1.StatusReasonBadRequest, resp.Result.Reason)
			assert.Contains(t, resp.Result.Message, c.want)
			assert.Contains(t, resp.Result.Message, "weft-injector")
		})
	}
}

func TestHandlerIgnoresOtherRequests(t *testing.T) {
	h := newTestHandler(t, HandlerConfig{Namespaces: fakeReader()})
	req := rawRequest([]byte(`{}`), "shop")
	req.Operation = admissionv1.Update
	assert.True(t, h.Handle(context.Background(), req).Allowed)
	req = rawRequest([]byte(`{}`), "shop")
	req.Kind = metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	assert.True(t, h.Handle(context.Background(), req).Allowed)
}

func TestHandlerNamespaceFallback(t *testing.T) {
	ns, pod := readCase(t, "testdata/in/plain.yaml")
	h := newTestHandler(t, HandlerConfig{Namespaces: fakeReader(), Fallback: fakeReader(ns)})
	resp := h.Handle(context.Background(), podRequest(t, pod, ns.Name))
	assert.True(t, resp.Allowed)
	assert.NotEmpty(t, resp.Patches, "namespace found through the fallback reader")

	h = newTestHandler(t, HandlerConfig{Namespaces: fakeReader()})
	resp = h.Handle(context.Background(), podRequest(t, pod, ns.Name))
	assert.False(t, resp.Allowed)
	assert.Contains(t, resp.Result.Message, "read namespace shop")
}

func TestHandlerMetrics(t *testing.T) {
	ctx := context.Background()
	tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "weft-injector"})
	require.NoError(t, err)
	defer func() { require.NoError(t, tel.Shutdown(ctx)) }()
	m, err := NewMetrics(tel.MeterProvider)
	require.NoError(t, err)

	ns, pod := readCase(t, "testdata/in/plain.yaml")
	_, skipped := readCase(t, "testdata/in/opted-out.yaml")
	h := newTestHandler(t, HandlerConfig{Namespaces: fakeReader(ns), Metrics: m})
	h.Handle(ctx, podRequest(t, pod, "shop"))
	h.Handle(ctx, podRequest(t, skipped, "shop"))
	h.Handle(ctx, rawRequest([]byte("nope"), "shop"))

	rec := httptest.NewRecorder()
	tel.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	text := string(body)
	assert.Contains(t, text, "weft_injector_requests_total 3")
	assert.Contains(t, text, `weft_injector_injections_total{reason="namespace_enabled"} 1`)
	assert.Contains(t, text, `weft_injector_skips_total{reason="pod_opt_out"} 1`)
	assert.Contains(t, text, `weft_injector_refusals_total{reason="decode"} 1`)
}
