package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TrafficPolicy shapes the traffic clients send to one or more Services in
// its namespace: how a client's sidecar balances load over the Service's
// endpoints, how much it lets queue up (circuit breaking), when it ejects an
// endpoint (outlier detection), how it retries, and which faults it injects
// to test resilience. It fills the gaps of the Gateway API for mesh (GAMMA)
// the way Istio's DestinationRule and VirtualService do
// (https://istio.io/latest/docs/reference/config/networking/destination-rule/),
// attached with Gateway API policy attachment
// (https://gateway-api.sigs.k8s.io/reference/policy-attachment/): targetRefs
// name Services of the policy's namespace. When several TrafficPolicies
// target one Service the oldest wins (then the name), and the others report
// Accepted=False with reason Conflicted.
//
// Settings apply in every client sidecar: load balancing, connection pool
// and outlier detection on the Service's outbound clusters; retry and fault
// on the routes of the Service (the default route, or the HTTPRoute rules
// attached to it; a rule's own timeouts and retry take precedence).
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=tp,categories=weft
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TrafficPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired traffic behaviour.
	Spec TrafficPolicySpec `json:"spec"`

	// Status reports whether pilot applied the policy.
	// +optional
	Status PolicyStatus `json:"status,omitempty"`
}

// TrafficPolicySpec is validated by the API server (OpenAPI and CEL) so a
// policy that could not be applied is refused on write.
type TrafficPolicySpec struct {
	// TargetRefs are the Services (group "", kind Service) of this namespace
	// the policy applies to.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	TargetRefs []PolicyTargetReference `json:"targetRefs"`

	// LoadBalancer picks the endpoint for each request or connection.
	// +optional
	LoadBalancer *LoadBalancer `json:"loadBalancer,omitempty"`

	// ConnectionPool limits connections and requests to the Service from
	// each client sidecar; requests beyond the limits fail fast with 503
	// (Envoy circuit breaking,
	// https://www.envoyproxy.io/docs/envoy/v1.37.0/intro/arch_overview/upstream/circuit_breaking).
	// +optional
	ConnectionPool *ConnectionPool `json:"connectionPool,omitempty"`

	// OutlierDetection ejects endpoints that keep failing from the load
	// balancing set for a while
	// (https://www.envoyproxy.io/docs/envoy/v1.37.0/intro/arch_overview/upstream/outlier).
	// +optional
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`

	// Retry replaces the mesh's default retry policy (connect failures and
	// refused streams, twice) on the Service's HTTP routes.
	// +optional
	Retry *RetryPolicy `json:"retry,omitempty"`

	// Fault injects delays and aborts into requests to the Service, in the
	// client's sidecar, to test how callers cope
	// (https://www.envoyproxy.io/docs/envoy/v1.37.0/configuration/http/http_filters/fault_filter).
	// +optional
	Fault *FaultInjection `json:"fault,omitempty"`
}

// PolicyTargetReference names a Service of the policy's namespace, as Gateway
// API's LocalPolicyTargetReference does
// (https://gateway-api.sigs.k8s.io/reference/spec/#localpolicytargetreference).
//
// +kubebuilder:validation:XValidation:rule="self.group == \"\" && self.kind == 'Service'",message="only Services (group \"\", kind Service) can be targeted"
type PolicyTargetReference struct {
	// Group is the target's API group: "" (core).
	// +kubebuilder:validation:MaxLength=253
	Group string `json:"group"`
	// Kind is the target's kind: Service.
	// +kubebuilder:validation:MaxLength=63
	Kind string `json:"kind"`
	// Name is the Service's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// LoadBalancerAlgorithm names an Envoy load balancing policy
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/intro/arch_overview/upstream/load_balancing/load_balancers).
//
// +kubebuilder:validation:Enum=LeastRequest;RoundRobin;Random
type LoadBalancerAlgorithm string

const (
	// LoadBalancerLeastRequest picks the less loaded of two random
	// endpoints; the mesh default.
	LoadBalancerLeastRequest LoadBalancerAlgorithm = "LeastRequest"
	// LoadBalancerRoundRobin cycles through the endpoints.
	LoadBalancerRoundRobin LoadBalancerAlgorithm = "RoundRobin"
	// LoadBalancerRandom picks an endpoint at random.
	LoadBalancerRandom LoadBalancerAlgorithm = "Random"
)

// LoadBalancer is the load balancing setting of a Service.
type LoadBalancer struct {
	// Algorithm is the load balancing algorithm.
	Algorithm LoadBalancerAlgorithm `json:"algorithm"`
}

// ConnectionPool are circuit-breaker thresholds per client sidecar and
// Service port. Unset fields stay unlimited, as in Istio.
type ConnectionPool struct {
	// MaxConnections bounds TCP connections to all endpoints.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxConnections *int32 `json:"maxConnections,omitempty"`
	// MaxPendingRequests bounds requests waiting for a connection.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxPendingRequests *int32 `json:"maxPendingRequests,omitempty"`
	// MaxRequests bounds concurrent requests (HTTP/2 streams or HTTP/1.1
	// requests in flight).
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxRequests *int32 `json:"maxRequests,omitempty"`
	// MaxRetries bounds concurrent retries.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxRetries *int32 `json:"maxRetries,omitempty"`
	// MaxRequestsPerConnection closes an upstream connection after that
	// many requests (1 disables keep-alive).
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxRequestsPerConnection *int32 `json:"maxRequestsPerConnection,omitempty"`
}

// OutlierDetection ejects an endpoint after consecutive errors.
type OutlierDetection struct {
	// Consecutive5xxErrors ejects an endpoint after that many 5xx responses
	// (or connection failures) in a row; zero disables it.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Consecutive5xxErrors *int32 `json:"consecutive5xxErrors,omitempty"`
	// Interval between ejection sweeps; default 10s.
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`
	// BaseEjectionTime is the minimum ejection time, multiplied by the
	// number of times the endpoint was ejected; default 30s.
	// +optional
	BaseEjectionTime *metav1.Duration `json:"baseEjectionTime,omitempty"`
	// MaxEjectionPercent bounds the share of endpoints ejected at once;
	// default 10.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MaxEjectionPercent *int32 `json:"maxEjectionPercent,omitempty"`
}

// RetryPolicy says when and how often a client sidecar retries
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/config/route/v3/route_components.proto#envoy-v3-api-msg-config-route-v3-retrypolicy).
//
// +kubebuilder:validation:XValidation:rule="!has(self.retryOn) || !self.retryOn.exists(c, c == 'retriable-status-codes') || (has(self.codes) && size(self.codes) > 0)",message="retriable-status-codes needs codes"
type RetryPolicy struct {
	// Attempts is the number of retries after the first try; 0 disables
	// retries.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	Attempts int32 `json:"attempts"`
	// PerTryTimeout bounds each try, including the first.
	// +optional
	PerTryTimeout *metav1.Duration `json:"perTryTimeout,omitempty"`
	// RetryOn lists Envoy retry conditions (x-envoy-retry-on values); default
	// connect-failure, refused-stream, unavailable, cancelled and 503s
	// (retriable-status-codes with codes [503] unless Codes says otherwise).
	// +optional
	// +kubebuilder:validation:MaxItems=12
	// +listType=set
	// +kubebuilder:validation:items:Enum="5xx";"gateway-error";"reset";"reset-before-request";"connect-failure";"envoy-ratelimited";"retriable-4xx";"refused-stream";"retriable-status-codes";"http3-post-connect-failure";"cancelled";"deadline-exceeded";"internal";"resource-exhausted";"unavailable"
	RetryOn []string `json:"retryOn,omitempty"`
	// Codes are the HTTP status codes retried (retriable-status-codes).
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=set
	// +kubebuilder:validation:items:Minimum=400
	// +kubebuilder:validation:items:Maximum=599
	Codes []int32 `json:"codes,omitempty"`
	// Backoff is the base interval of the exponential back-off between
	// tries; default 25ms.
	// +optional
	Backoff *metav1.Duration `json:"backoff,omitempty"`
}

// FaultInjection delays or aborts a share of the requests, optionally only
// those carrying given headers (say, one test user).
//
// +kubebuilder:validation:XValidation:rule="has(self.delay) || has(self.abort)",message="a fault needs a delay or an abort"
type FaultInjection struct {
	// Delay holds requests before forwarding them.
	// +optional
	Delay *FaultDelay `json:"delay,omitempty"`
	// Abort answers requests with an error status instead of forwarding.
	// +optional
	Abort *FaultAbort `json:"abort,omitempty"`
	// Headers restrict the fault to requests carrying all of these headers
	// with exactly these values.
	// +optional
	// +kubebuilder:validation:MaxItems=8
	// +listType=map
	// +listMapKey=name
	Headers []HeaderValue `json:"headers,omitempty"`
}

// FaultDelay is a fixed delay applied to Percentage of the requests.
type FaultDelay struct {
	// FixedDelay is how long a delayed request is held.
	FixedDelay metav1.Duration `json:"fixedDelay"`
	// Percentage of requests delayed; default 100.
	// +optional
	Percentage *Percent `json:"percentage,omitempty"`
}

// FaultAbort answers Percentage of the requests with HTTPStatus.
type FaultAbort struct {
	// HTTPStatus is the status code of aborted requests.
	// +kubebuilder:validation:Minimum=200
	// +kubebuilder:validation:Maximum=599
	HTTPStatus int32 `json:"httpStatus"`
	// Percentage of requests aborted; default 100.
	// +optional
	Percentage *Percent `json:"percentage,omitempty"`
}

// Percent is a share of requests in percent, with up to four decimals
// ("0.5", "50", "100").
//
// +kubebuilder:validation:Pattern=`^(100(\.0{1,4})?|[0-9]{1,2}(\.[0-9]{1,4})?)$`
type Percent string

// HeaderValue is an exact header match.
type HeaderValue struct {
	// Name is the header name (case-insensitive).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$`
	Name string `json:"name"`
	// Value is the exact value.
	// +kubebuilder:validation:MaxLength=4096
	Value string `json:"value"`
}

// PolicyStatus follows the Kubernetes API conventions for conditions
// (https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#typical-status-properties):
// pilot writes Accepted (and, for TrafficPolicy, ResolvedRefs) with a reason
// users can act on.
type PolicyStatus struct {
	// ObservedGeneration is the generation pilot last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions say whether the policy is in effect and why not.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// TrafficPolicyList is a list of TrafficPolicy, for LIST and WATCH.
//
// +kubebuilder:object:root=true
type TrafficPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TrafficPolicy `json:"items"`
}
