package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AuthorizationAction is what a matching AuthorizationPolicy does, after
// Istio's AuthorizationPolicy.Action
// (https://istio.io/latest/docs/reference/config/security/authorization-policy/#AuthorizationPolicy-Action).
//
// +kubebuilder:validation:Enum=ALLOW;DENY;AUDIT
type AuthorizationAction string

const (
	// ActionAllow admits requests that match a rule. As soon as one ALLOW
	// policy selects a workload, requests that match no ALLOW policy are
	// denied (default deny).
	ActionAllow AuthorizationAction = "ALLOW"
	// ActionDeny refuses requests that match a rule; DENY is evaluated
	// before ALLOW.
	ActionDeny AuthorizationAction = "DENY"
	// ActionAudit is a dry-run DENY: a matching request is served, but the
	// sidecar counts it as one it would have denied (Envoy RBAC shadow
	// rules: envoy_http_rbac_shadow_denied{envoy_rbac_http_prefix="audit_"}
	// on :15090) and logs a "weft-audit would deny" line, so a policy can
	// be tried on live traffic before it is enforced.
	ActionAudit AuthorizationAction = "AUDIT"
)

// AuthorizationPolicy says who may call the workloads it selects, enforced
// by their sidecars on inbound connections with Envoy's RBAC filters
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/configuration/http/http_filters/rbac_filter
// and .../listeners/network_filters/rbac_filter). Its shape and semantics
// follow Istio's security.istio.io/v1 AuthorizationPolicy
// (https://istio.io/latest/docs/reference/config/security/authorization-policy/):
//
//   - scope: with a selector, the matching pods of its namespace; without,
//     every workload of its namespace; in weft-system without a selector,
//     the whole mesh;
//   - evaluation: a request matching any DENY policy is refused (403 for
//     HTTP, connection closed for TCP); otherwise, if any ALLOW policy
//     selects the workload, the request must match one of them; AUDIT
//     policies never refuse, they only count and log;
//   - a policy with no rules matches nothing: an ALLOW policy without rules
//     is "deny all" for the workloads it selects.
//
// Sources are identified by the SPIFFE ID of the peer's mutual TLS
// certificate. Plaintext clients (workloads without a sidecar, allowed by a
// PERMISSIVE MeshTLS) have no identity: rules with principals or namespaces
// never match them, so ALLOW rules with sources refuse them and DENY rules
// with sources let them through; deny them with notPrincipals: ["*"], or
// make the workload STRICT. MeshTLS stays the only place that decides
// whether plaintext is accepted at all.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=authz,categories=weft
// +kubebuilder:printcolumn:name="Action",type=string,JSONPath=`.spec.action`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AuthorizationPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the access policy. An empty spec is ALLOW with no rules: deny
	// everything to the selected workloads.
	// +optional
	Spec AuthorizationPolicySpec `json:"spec,omitempty"`

	// Status reports whether pilot applied the policy.
	// +optional
	Status PolicyStatus `json:"status,omitempty"`
}

// AuthorizationPolicySpec selects workloads and lists rules.
type AuthorizationPolicySpec struct {
	// Selector picks the pods of this namespace the policy applies to (in
	// weft-system: of every namespace). Leave it out for every workload of
	// the namespace (in weft-system: of the mesh).
	// +optional
	// +kubebuilder:validation:XValidation:rule="(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) && size(self.matchExpressions) > 0)",message="selector must not be empty; leave it out to select every workload in the namespace"
	Selector *metav1.LabelSelector `json:"selector,omitempty"`

	// Action is ALLOW (the default), DENY or AUDIT.
	// +optional
	// +kubebuilder:default=ALLOW
	Action AuthorizationAction `json:"action,omitempty"`

	// Rules match requests; the policy applies when any rule matches. No
	// rules: the policy matches nothing.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	Rules []AuthorizationRule `json:"rules,omitempty"`
}

// AuthorizationRule matches a request when one of From and one of To match
// (an empty list matches everything).
type AuthorizationRule struct {
	// From lists sources; one must match.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	From []Source `json:"from,omitempty"`
	// To lists operations; one must match.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	To []Operation `json:"to,omitempty"`
}

// Source matches the caller. Within a Source every set field must match.
//
// +kubebuilder:validation:XValidation:rule="has(self.principals) || has(self.notPrincipals) || has(self.namespaces) || has(self.notNamespaces)",message="a source needs principals, notPrincipals, namespaces or notNamespaces"
type Source struct {
	// Principals are SPIFFE IDs of callers: "spiffe://<td>/ns/<ns>/sa/<sa>"
	// (or Istio's form without "spiffe://"); a leading or trailing "*" is a
	// suffix or prefix wildcard and "*" alone is any authenticated caller.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=512
	// +listType=set
	Principals []string `json:"principals,omitempty"`
	// NotPrincipals are SPIFFE IDs the caller must not have (same syntax);
	// ["*"] matches callers without an identity (plaintext).
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=512
	// +listType=set
	NotPrincipals []string `json:"notPrincipals,omitempty"`
	// Namespaces of callers (the ns segment of their SPIFFE ID).
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:items:MaxLength=63
	// +listType=set
	Namespaces []string `json:"namespaces,omitempty"`
	// NotNamespaces the caller must not come from.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:items:MaxLength=63
	// +listType=set
	NotNamespaces []string `json:"notNamespaces,omitempty"`
}

// Operation matches what is called. Within an Operation every set field must
// match. Methods and paths are HTTP-only: on TCP ports an ALLOW rule that
// needs them never matches and a DENY (or AUDIT) rule ignores them, so TCP
// is never let through by a rule it cannot be checked against.
type Operation struct {
	// Methods are HTTP methods (exact, upper case).
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Pattern=`^[A-Z]+$`
	// +kubebuilder:validation:items:MaxLength=32
	// +listType=set
	Methods []string `json:"methods,omitempty"`
	// Paths are URL paths without the query: exact, "/prefix*", "*suffix"
	// or "*".
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=1024
	// +listType=set
	Paths []string `json:"paths,omitempty"`
	// Ports are the workload's (container) ports.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=65535
	// +listType=set
	Ports []int32 `json:"ports,omitempty"`
}

// AuthorizationPolicyList is a list of AuthorizationPolicy, for LIST and
// WATCH.
//
// +kubebuilder:object:root=true
type AuthorizationPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AuthorizationPolicy `json:"items"`
}
