// Package explain is meshctl explain: one verdict on what happens to a
// request from a pod to a Service or pod, and why. Collect gathers the
// facts — the source pod and its sidecar's real Envoy config, the
// destination's Service, EndpointSlices and pods, a destination sidecar's
// inbound config, MeshTLS and AuthorizationPolicies, and weft-cni-node's
// redirect-rule findings — and Evaluate (pure) walks the request through
// them step by step: capture, listener, route, cluster, endpoints, mutual
// TLS, authorization.
package explain

import (
	"net/netip"

	"github.com/weftmesh/weft/api/annotation"
	"github.com/weftmesh/weft/meshctl/envoy"
	"github.com/weftmesh/weft/pilot/model"
	corev1 "k8s.io/api/core/v1"
)

// Facts are everything Evaluate reasons from.
type Facts struct {
	TrustDomain   string
	ClusterDomain string
	RootNamespace string
	// Path and Method are the HTTP request's, for route and policy
	// matching.
	Path, Method string

	Source Source
	Dest   Dest
	// Endpoints are the destination's ready and not-ready endpoints (for
	// a pod destination: the pod itself).
	Endpoints []Endpoint
	// Policies are the MeshTLS policies of the mesh.
	Policies []*model.TLSPolicy
	// Authz decides authorization.
	Authz Authorizer
	// Inbound is the config dump of one meshed endpoint's sidecar (its
	// inbound listener confirms the mTLS mode in force); InboundPod names
	// it, InboundErr says why it could not be read.
	Inbound    *envoy.ConfigDump
	InboundPod string
	InboundErr string
}

// Source is the client pod.
type Source struct {
	Pod *corev1.Pod
	// Sidecar is the parsed status annotation; nil without a sidecar.
	Sidecar *annotation.SidecarStatus
	// Envoy is its sidecar's config dump; EnvoyErr why it is missing.
	Envoy    *envoy.ConfigDump
	EnvoyErr string
	// RedirectMissing holds weft-cni-node's RedirectRulesMissing message
	// for this pod, if it reported one; CheckerOnNode says a checker runs
	// on the pod's node at all.
	RedirectMissing string
	CheckerOnNode   bool
}

// Dest is what the request is addressed to.
type Dest struct {
	// Service or Pod is set.
	Service *corev1.Service
	Port    *corev1.ServicePort
	Pod     *corev1.Pod
	// IP and PortNumber are what the client connects to: the Service's
	// cluster IP and port, or the pod's IP and the given port.
	IP         netip.Addr
	PortNumber int32
}

// Endpoint is one backend of the destination.
type Endpoint struct {
	IP   netip.Addr
	Port int32
	// Pod is the backing pod (nil for endpoints that are not pods).
	Pod                *corev1.Pod
	Ready, Terminating bool
}
