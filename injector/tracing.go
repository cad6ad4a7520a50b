package injector

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	corev1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/pilot/telemetry"
)

// TracerName is the instrumentation scope of the injector's spans.
const TracerName = "github.com/weftmesh/weft/injector"

// SpanMutate is one admission review (docs/observability.md). Its status
// is Error when the pod was refused.
const SpanMutate = "injector.mutate"

// Attributes of SpanMutate. The namespace and pod use the OpenTelemetry
// Kubernetes conventions; a pod created by a controller has only a
// generateName at admission.
const (
	attrNamespace    = attribute.Key("k8s.namespace.name")
	attrPodName      = attribute.Key("k8s.pod.name")
	AttrGenerateName = attribute.Key("weft.injector.generate_name")
	AttrAdmissionUID = attribute.Key("weft.injector.admission_uid")
	// AttrDecision is one of the Decision* values.
	AttrDecision = attribute.Key("weft.injector.decision")
	// AttrReason is the Decide Reason, or the Refusal* reason when refused.
	AttrReason = attribute.Key("weft.injector.reason")
)

// Values of AttrDecision.
const (
	DecisionInjected = "injected" // the sidecar was added
	DecisionSkipped  = "skipped"  // admitted unchanged (Decide said no)
	DecisionRefused  = "refused"  // denied: the pod cannot be injected (or its namespace not read)
	DecisionIgnored  = "ignored"  // not a pod CREATE (a widened webhook rule)
)

// verdict collects what Handle decided, for SpanMutate.
type verdict struct {
	pod              *corev1.Pod
	decision, reason string
	err              error
}

func (v *verdict) refuse(reason string, err error) {
	v.decision, v.reason, v.err = DecisionRefused, reason, err
}

func (v *verdict) decided(d Decision) {
	v.decision, v.reason = DecisionSkipped, string(d.Reason)
	if d.Inject {
		v.decision = DecisionInjected
	}
}

// end records the verdict on span and ends it.
func (v *verdict) end(span trace.Span) {
	if v.pod != nil {
		if v.pod.Name != "" {
			span.SetAttributes(attrPodName.String(v.pod.Name))
		}
		if v.pod.GenerateName != "" {
			span.SetAttributes(AttrGenerateName.String(v.pod.GenerateName))
		}
	}
	span.SetAttributes(AttrDecision.String(v.decision), AttrReason.String(v.reason))
	telemetry.EndSpan(span, v.err)
}

// TraceContext continues the API server's trace: with its tracing enabled
// (APIServerTracing) the API server sends a W3C traceparent with every
// webhook call, and SpanMutate becomes a child of the pod's create.
// It is the webhook's WithContextFunc.
func TraceContext(ctx context.Context, r *http.Request) context.Context {
	return propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(r.Header))
}
