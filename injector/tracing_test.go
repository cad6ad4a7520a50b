package injector

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/pilot/telemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// recordingHandler is a Handler whose spans land in the returned exporter.
func recordingHandler(t *testing.T, cfg HandlerConfig) (*Handler, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { require.NoError(t, tp.Shutdown(context.Background())) })
	cfg.TracerProvider = tp
	return newTestHandler(t, cfg), exp
}

func attrs(s tracetest.SpanStub) map[attribute.Key]string {
	out := map[attribute.Key]string{}
	for _, kv := range s.Attributes {
		out[kv.Key] = kv.Value.Emit()
	}
	return out
}

func TestHandlerSpanPerReview(t *testing.T) {
	ns, pod := readCase(t, "testdata/in/plain.yaml")
	_, skipped := readCase(t, "testdata/in/opted-out.yaml")
	_, bad := readCase(t, "testdata/in/bad-resources.yaml")
	h, exp := recordingHandler(t, HandlerConfig{Namespaces: fakeReader(ns)})
	ctx := context.Background()
	h.Handle(ctx, podRequest(t, pod, "shop"))
	h.Handle(ctx, podRequest(t, skipped, "shop"))
	h.Handle(ctx, podRequest(t, bad, "shop"))
	h.Handle(ctx, rawRequest([]byte("nope"), "shop"))

	spans := exp.GetSpans()
	require.Len(t, spans, 4, "one span per review")
	for _, s := range spans {
		assert.Equal(t, SpanMutate, s.Name)
		assert.Equal(t, trace.SpanKindServer, s.SpanKind)
		assert.False(t, s.Parent.IsValid(), "no trace context came with the request: a root")
	}
	injected := attrs(spans[0])
	assert.Equal(t, map[attribute.Key]string{
		"k8s.namespace.name": "shop", AttrGenerateName: "web-7d9c5b-", AttrAdmissionUID: "req-1",
		AttrDecision: DecisionInjected, AttrReason: string(ReasonNamespaceEnabled),
	}, injected)
	assert.Equal(t, codes.Ok, spans[0].Status.Code)

	skip := attrs(spans[1])
	assert.Equal(t, DecisionSkipped, skip[AttrDecision])
	assert.Equal(t, string(ReasonPodOptOut), skip[AttrReason])
	assert.Equal(t, codes.Ok, spans[1].Status.Code)

	for i, reason := range map[int]string{2: RefusalMutate, 3: RefusalDecode} {
		got := attrs(spans[i])
		assert.Equal(t, DecisionRefused, got[AttrDecision], "span %d", i)
		assert.Equal(t, reason, got[AttrReason], "span %d", i)
		assert.Equal(t, codes.Error, spans[i].Status.Code, "span %d", i)
		assert.NotEmpty(t, spans[i].Status.Description)
	}
	assert.Equal(t, "greedy", attrs(spans[2])["k8s.pod.name"], "a named pod is named")
}

// TestTraceContextContinuesAPIServerTrace: the webhook's WithContextFunc
// reads the API server's traceparent, so the review's span is its child.
func TestTraceContextContinuesAPIServerTrace(t *testing.T) {
	ns, pod := readCase(t, "testdata/in/plain.yaml")
	h, exp := recordingHandler(t, HandlerConfig{Namespaces: fakeReader(ns)})
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	hook := &admission.Webhook{Handler: h, WithContextFunc: TraceContext}
	body := admissionReviewBody(t, podRequest(t, pod, "shop"))
	req := httptest.NewRequest(http.MethodPost, InjectPath, body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	rec := httptest.NewRecorder()
	hook.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	spans := exp.GetSpans()
	require.Len(t, spans, 1)
	assert.Equal(t, traceID, spans[0].SpanContext.TraceID().String())
	assert.Equal(t, parentID, spans[0].Parent.SpanID().String())
	assert.True(t, spans[0].Parent.IsRemote())
}

// TestNoSpansWithoutEndpoint: with the provider telemetry.Setup returns
// when no OTLP endpoint is configured, the handler's spans do not record.
func TestNoSpansWithoutEndpoint(t *testing.T) {
	ctx := context.Background()
	tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "weft-injector", Getenv: func(string) string { return "" }})
	require.NoError(t, err)
	defer func() { require.NoError(t, tel.Shutdown(ctx)) }()
	assert.False(t, tel.OTLPTraces)

	ns, pod := readCase(t, "testdata/in/plain.yaml")
	h := newTestHandler(t, HandlerConfig{Namespaces: fakeReader(ns), TracerProvider: tel.TracerProvider})
	assert.True(t, h.Handle(ctx, podRequest(t, pod, "shop")).Allowed)
	_, span := h.tracer.Start(ctx, SpanMutate)
	defer span.End()
	assert.False(t, span.IsRecording(), "the injector's tracer records nothing without an endpoint")
	assert.False(t, span.SpanContext().IsValid())
}

// admissionReviewBody is the API server's request body for req.
func admissionReviewBody(t *testing.T, req admission.Request) *bytes.Reader {
	t.Helper()
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  &req.AdmissionRequest,
	}
	data, err := json.Marshal(review)
	require.NoError(t, err)
	return bytes.NewReader(data)
}
