package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Telemetry switches the sidecars' tracing, access logs and request metrics
// on or off, and sets the trace sampling rate, for the namespace it lives
// in; in the root
// namespace (weft-system) it applies to the whole mesh. It is the part of
// Istio's Telemetry API
// (https://istio.io/latest/docs/reference/config/telemetry/) that Weft's
// data plane supports, so operators can change telemetry at runtime, over
// xDS, without restarting pods.
//
// Precedence, field by field (a field left out inherits): the pod label
// telemetry.weft.dev/access-log (access logs only) > the namespace's
// Telemetry > the root namespace's Telemetry > pilot's flags
// (--access-log, --access-log-namespaces, --tracing-collector,
// --tracing-sampling, --request-metrics). Tracing needs pilot's --tracing-collector: without
// it a Telemetry cannot turn tracing on, and pilot says so in the status
// (ResolvedRefs=False, reason NoTracingCollector).
//
// There is no workload selector: the outbound half of a sidecar's config
// is shared by every proxy of a namespace (pilot builds it once per
// namespace scope), so a per-workload tracing setting would cost a copy per
// workload. Per-workload access logs keep using the pod label.
//
// One Telemetry per namespace is in force: with several, the oldest
// (creationTimestamp, then name) wins and the others report Accepted=False
// with reason Conflicted.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories=weft
// +kubebuilder:printcolumn:name="Tracing-Disabled",type=boolean,JSONPath=`.spec.tracing.disabled`
// +kubebuilder:printcolumn:name="Sampling",type=number,JSONPath=`.spec.tracing.randomSamplingPercentage`
// +kubebuilder:printcolumn:name="Access-Log-Disabled",type=boolean,JSONPath=`.spec.accessLogging.disabled`
// +kubebuilder:printcolumn:name="Metrics-Disabled",type=boolean,JSONPath=`.spec.metrics.disabled`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Telemetry struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired telemetry of the namespace (or mesh).
	// +optional
	Spec TelemetrySpec `json:"spec,omitempty"`

	// Status reports whether pilot applied the Telemetry.
	// +optional
	Status PolicyStatus `json:"status,omitempty"`
}

// TelemetrySpec holds the settings; each one left out inherits from the
// parent scope (root namespace, then pilot's flags).
type TelemetrySpec struct {
	// Tracing sets whether sidecars start and report spans, and how many.
	// +optional
	Tracing *TracingSpec `json:"tracing,omitempty"`

	// AccessLogging sets whether sidecars write JSON access logs (inbound
	// requests and connections, on the sidecar's stdout).
	// +optional
	AccessLogging *AccessLoggingSpec `json:"accessLogging,omitempty"`

	// Metrics sets whether sidecars record the request metrics
	// (envoy_weft_requests_total and the rest, on 15090).
	// +optional
	Metrics *MetricsSpec `json:"metrics,omitempty"`
}

// TracingSpec is the tracing of Envoy's OpenTelemetry tracer in every HTTP
// connection manager of the sidecars in scope.
//
// +kubebuilder:validation:XValidation:rule="has(self.disabled) || has(self.randomSamplingPercentage)",message="tracing needs disabled or randomSamplingPercentage; leave tracing out to inherit"
type TracingSpec struct {
	// Disabled true: the sidecars neither start nor report spans (a
	// traceparent header still passes through unchanged). False turns
	// tracing on where a parent scope turned it off. Left out: inherit.
	// +optional
	Disabled *bool `json:"disabled,omitempty"`

	// RandomSamplingPercentage is the share of requests, in percent, that
	// start a trace when they carry no sampled traceparent (a caller's
	// sampled traceparent is always followed). 0 to 100, decimals allowed
	// (0.5). Left out: inherit (pilot's --tracing-sampling, default 1).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	RandomSamplingPercentage *float64 `json:"randomSamplingPercentage,omitempty"`
}

// AccessLoggingSpec turns access logs on or off. Leave the whole block out
// to inherit; inside it, disabled is required so that an empty block
// cannot be read two ways.
type AccessLoggingSpec struct {
	// Disabled true: no access logs; false: access logs on (unless a pod
	// opts out with the label telemetry.weft.dev/access-log: "false").
	// +kubebuilder:validation:Required
	Disabled *bool `json:"disabled,omitempty"`
}

// MetricsSpec turns the request metrics on or off: all of them, where
// Istio's Telemetry overrides single metrics and tags. Envoy's own stats
// (cluster, listener and HTTP connection manager stats, tagged by the
// sidecar's bootstrap) are not affected: they cannot be turned off.
//
// The server's sidecar records the metrics, so a namespace's setting
// applies to requests its workloads receive. The request headers a
// client's sidecar adds so that servers can name it follow the mesh-wide
// setting only (the root namespace's Telemetry, else pilot's
// --request-metrics): a client cannot know whether the server's namespace
// records. Leave the whole block out to inherit; inside it, disabled is
// required so that an empty block cannot be read two ways.
type MetricsSpec struct {
	// Disabled true: no request metrics; false: request metrics on where
	// a parent scope turned them off.
	// +kubebuilder:validation:Required
	Disabled *bool `json:"disabled,omitempty"`
}

// TelemetryList is a list of Telemetry, for LIST and WATCH.
//
// +kubebuilder:object:root=true
type TelemetryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Telemetry `json:"items"`
}
