package injector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// InjectPath is where the webhook server serves the injector; the
// MutatingWebhookConfiguration's clientConfig.service.path points here.
const InjectPath = "/inject"

// HandlerConfig wires the admission handler to its inputs.
type HandlerConfig struct {
	// Injection is passed to Mutate unchanged.
	Injection Config
	// Namespaces reads the pod's Namespace (a cache in production).
	Namespaces client.Reader
	// Fallback, if set, is asked when Namespaces does not know the
	// namespace yet (a cache that lags a namespace created just now).
	Fallback client.Reader
	// Metrics counts decisions and refusals (nil: not counted).
	Metrics *Metrics
	// TracerProvider creates SpanMutate; nil means the global one (a no-op
	// unless telemetry.Setup installed an exporter and set it).
	TracerProvider trace.TracerProvider
}

// Handler is the thin admission edge around Mutate: decode, look up the
// namespace, mutate, answer with a JSON patch. Bad input is refused with a
// 400 and a message naming the problem (the API server shows it to the
// user as "admission webhook ... denied the request: ..."), never a 500.
type Handler struct {
	cfg     HandlerConfig
	decoder admission.Decoder
	tracer  trace.Tracer
}

// NewHandler checks the configuration and builds a Handler.
func NewHandler(cfg HandlerConfig) (*Handler, error) {
	if err := cfg.Injection.Validate(); err != nil {
		return nil, fmt.Errorf("injection config: %w", err)
	}
	if cfg.Namespaces == nil {
		return nil, errors.New("handler needs a namespace reader")
	}
	if cfg.Metrics == nil {
		m, err := NewMetrics(nil)
		if err != nil {
			return nil, err
		}
		cfg.Metrics = m
	}
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("register core types: %w", err)
	}
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = otel.GetTracerProvider()
	}
	return &Handler{cfg: cfg, decoder: admission.NewDecoder(scheme), tracer: cfg.TracerProvider.Tracer(TracerName)}, nil
}

// Handle implements admission.Handler. Every review is one SpanMutate,
// continuing the API server's trace when its request carried a
// traceparent (see TraceContext).
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	ctx, span := h.tracer.Start(ctx, SpanMutate, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attrNamespace.String(req.Namespace), AttrAdmissionUID.String(string(req.UID))))
	var v verdict
	resp := h.handle(ctx, req, &v)
	v.end(span)
	return resp
}

func (h *Handler) handle(ctx context.Context, req admission.Request, v *verdict) admission.Response {
	log := logr.FromContextOrDiscard(ctx).WithValues("namespace", req.Namespace, "name", req.Name, "uid", req.UID)
	h.cfg.Metrics.request(ctx)
	if req.Kind.Group != "" || req.Kind.Kind != "Pod" || req.Operation != admissionv1.Create {
		// A widened webhook rule must not break unrelated requests.
		v.decision, v.reason = DecisionIgnored, "not_pod_create"
		return admission.Allowed("weft-injector only mutates pods on create")
	}
	var pod corev1.Pod
	if err := h.decoder.Decode(req, &pod); err != nil {
		h.cfg.Metrics.refused(ctx, RefusalDecode)
		v.refuse(RefusalDecode, err)
		log.Info("refusing pod that cannot be decoded", "error", err.Error())
		return refuse(fmt.Errorf("weft-injector cannot decode the pod: %w", err))
	}
	v.pod = &pod
	ns, err := h.namespace(ctx, req.Namespace)
	if err != nil {
		h.cfg.Metrics.refused(ctx, RefusalNamespace)
		v.refuse(RefusalNamespace, err)
		log.Error(err, "read namespace")
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("weft-injector: read namespace %s: %w", req.Namespace, err))
	}
	res, err := Mutate(&pod, ns, h.cfg.Injection)
	if err != nil {
		h.cfg.Metrics.refused(ctx, RefusalMutate)
		v.refuse(RefusalMutate, err)
		log.Info("refusing pod", "error", err.Error())
		return refuse(fmt.Errorf("weft-injector: %w", err))
	}
	h.cfg.Metrics.decided(ctx, res.Decision)
	v.decided(res.Decision)
	log = log.WithValues("pod", podName(&pod), "inject", res.Decision.Inject, "reason", res.Decision.Reason)
	if !res.Decision.Inject {
		log.V(1).Info("not injecting", "detail", res.Decision.Detail)
		return admission.Allowed(res.Decision.Detail)
	}
	mutated, err := json.Marshal(res.Pod)
	if err != nil {
		h.cfg.Metrics.refused(ctx, RefusalMutate)
		v.refuse(RefusalMutate, err)
		return refuse(fmt.Errorf("weft-injector: encode mutated pod: %w", err))
	}
	log.Info("injected sidecar", "detail", res.Decision.Detail)
	return admission.PatchResponseFromRaw(req.Object.Raw, mutated)
}

// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get

// namespace reads the pod's Namespace, asking the fallback reader when the
// cache has not seen it yet.
func (h *Handler) namespace(ctx context.Context, name string) (*corev1.Namespace, error) {
	var ns corev1.Namespace
	err := h.cfg.Namespaces.Get(ctx, types.NamespacedName{Name: name}, &ns)
	if apierrors.IsNotFound(err) && h.cfg.Fallback != nil {
		err = h.cfg.Fallback.Get(ctx, types.NamespacedName{Name: name}, &ns)
	}
	if err != nil {
		return nil, fmt.Errorf("get namespace %s: %w", name, err)
	}
	return &ns, nil
}

// refuse answers 400 Bad Request: the pod, not the injector, is at fault.
func refuse(err error) admission.Response {
	resp := admission.Errored(http.StatusBadRequest, err)
	resp.Result.Reason = metav1.StatusReasonBadRequest
	return resp
}
