// Package v1alpha1 holds Weft's mesh CRDs in the API group mesh.weft.dev.
//
// MeshTLS is Weft's PeerAuthentication: it says whether a workload's sidecar
// requires, accepts or refuses mutual TLS on inbound connections. It follows
// Istio's security.istio.io/v1 PeerAuthentication
// (https://istio.io/latest/docs/reference/config/security/peer_authentication/)
// so operators can carry their knowledge over: mesh scope is the root
// namespace weft-system, namespace scope is a policy without a selector, and
// workload scope is a policy with a selector.
//
// TrafficPolicy adds to the Gateway API for mesh (GAMMA) what it lacks:
// load balancing, circuit breaking, outlier detection, retries and fault
// injection for a Service. AuthorizationPolicy says who may call a workload
// (ALLOW, DENY, and AUDIT for dry runs), after Istio's AuthorizationPolicy.
// Telemetry turns the sidecars' tracing and access logs on or off per
// namespace (mesh-wide in the root namespace), after Istio's Telemetry.
//
// +kubebuilder:object:generate=true
// +groupName=mesh.weft.dev
package v1alpha1
