package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MTLSMode says how a sidecar treats inbound connections. The values and
// their meaning are Istio's PeerAuthentication.MutualTLS.Mode
// (https://istio.io/latest/docs/reference/config/security/peer_authentication/#PeerAuthentication-MutualTLS-Mode),
// minus UNSET: leaving the field out means "inherit from the parent scope".
//
// +kubebuilder:validation:Enum=STRICT;PERMISSIVE;DISABLE
type MTLSMode string

const (
	// MTLSStrict accepts only mutual TLS from mesh workloads; plaintext is
	// refused.
	MTLSStrict MTLSMode = "STRICT"
	// MTLSPermissive accepts both mutual TLS and plaintext, detected per
	// connection, so workloads can join the mesh one at a time. It is the
	// default, as in Istio.
	MTLSPermissive MTLSMode = "PERMISSIVE"
	// MTLSDisable accepts plaintext only; clients in the mesh then send
	// plaintext to the workload.
	MTLSDisable MTLSMode = "DISABLE"
)

// MeshTLS sets the mutual TLS mode of the workloads it selects. Scope is
// given by where it lives and whether it selects: in weft-system without a
// selector it is mesh-wide, in another namespace without a selector it covers
// that namespace, with a selector it covers the matching pods of its
// namespace. The most specific scope wins (workload > namespace > mesh); among
// policies of equal scope the oldest wins.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=mtls,categories=weft
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MeshTLS struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired mutual TLS behaviour.
	// +optional
	Spec MeshTLSSpec `json:"spec,omitempty"`

	// Status reports whether pilot accepted the policy.
	// +optional
	Status MeshTLSStatus `json:"status,omitempty"`
}

// MeshTLSSpec is the user's intent, validated by the API server with CEL
// (https://kubernetes.io/docs/reference/using-api/cel/) so that a policy that
// would be ignored is rejected on write instead.
//
// +kubebuilder:validation:XValidation:rule="!has(self.portLevelMTLS) || has(self.selector)",message="portLevelMTLS requires a selector: port numbers only make sense for a set of workloads"
type MeshTLSSpec struct {
	// Selector picks the pods of this namespace the policy applies to. Leave
	// it out for a namespace-wide (or, in weft-system, mesh-wide) policy.
	// +optional
	// +kubebuilder:validation:XValidation:rule="(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) && size(self.matchExpressions) > 0)",message="selector must not be empty; leave it out to select every workload in the namespace"
	Selector *metav1.LabelSelector `json:"selector,omitempty"`

	// Mode is the mutual TLS mode. Leave it out to inherit the mode of the
	// parent scope (namespace, then mesh, then PERMISSIVE).
	// +optional
	Mode MTLSMode `json:"mode,omitempty"`

	// PortLevelMTLS overrides Mode for individual container ports (the
	// Service's targetPort, as the sidecar sees it), keyed by port number.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[1-9][0-9]{0,4}$') && int(k) <= 65535)",message="portLevelMTLS keys must be port numbers between 1 and 65535"
	PortLevelMTLS map[string]MTLSMode `json:"portLevelMTLS,omitempty"`
}

// MeshTLSStatus follows the Kubernetes API conventions for conditions
// (https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#typical-status-properties).
type MeshTLSStatus struct {
	// ObservedGeneration is the generation pilot last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions say whether the policy is in effect (type Accepted) and,
	// when it is not, why (for example, an older policy of the same scope
	// wins).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// MeshTLSList is a list of MeshTLS, as every Kubernetes kind needs for LIST
// and WATCH.
//
// +kubebuilder:object:root=true
type MeshTLSList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MeshTLS `json:"items"`
}
