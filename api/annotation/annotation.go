// Package annotation holds the labels, annotations and small formats that
// Weft writes into Kubernetes objects and that more than one component
// reads: the injector writes them, weft-redirect (the chained CNI plugin),
// weft-agent, pilot, meshctl and the e2e suite read them. Keeping the names
// in one place is what keeps those components agreeing (see docs DESIGN.md,
// "Names, ports, conventions").
//
// Labels and annotations follow the Kubernetes syntax rules
// (https://kubernetes.io/docs/concepts/overview/working-with-objects/annotations/).
package annotation

// Labels select which pods get a sidecar. Labels (not annotations) are used
// because the MutatingWebhookConfiguration can only select on labels
// (namespaceSelector/objectSelector), so the API server never calls the
// injector for pods that cannot be meshed.
const (
	// InjectionLabel on a Namespace turns injection on for every pod in it
	// (value InjectionEnabled) or off even for pods that ask for it at the
	// webhook level (value InjectionDisabled; weft-system carries it).
	InjectionLabel = "weft-injection"
	// InjectionEnabled is the InjectionLabel value that meshes a namespace.
	InjectionEnabled = "enabled"
	// InjectionDisabled is the InjectionLabel value that keeps a namespace
	// out of the mesh.
	InjectionDisabled = "disabled"

	// InjectLabel on a Pod ("true" or "false") overrides the namespace's
	// choice for that pod, like Istio's sidecar.istio.io/inject.
	InjectLabel = "sidecar.weft.dev/inject"
	// RevisionLabel on a Namespace or Pod names the control-plane revision
	// whose injector owns it, so two revisions can run side by side during
	// an upgrade (canary control planes, as with Istio's istio.io/rev).
	RevisionLabel = "weft.dev/rev"
	// DefaultRevision is the revision of an injector started without
	// --revision.
	DefaultRevision = "default"
)

// Annotations set by the injector.
const (
	// StatusAnnotation records what the injector added to a pod, as the JSON
	// of SidecarStatus. weft-redirect reads it to program the pod's iptables
	// and skips pods without it; its presence also makes injection
	// idempotent.
	StatusAnnotation = "sidecar.weft.dev/status"
)

// Annotations users put on pods to tune injection and traffic capture.
const (
	// RewriteAppProbersAnnotation set to "false" keeps the pod's HTTP and
	// TCP probes pointing at the app instead of at weft-agent (see
	// AppProbers). Only useful when inbound mTLS is not STRICT.
	RewriteAppProbersAnnotation = "sidecar.weft.dev/rewrite-app-probers"

	// ExcludeInboundPortsAnnotation is a comma-separated list of inbound
	// ports that bypass the sidecar (e.g. "8081,9000").
	ExcludeInboundPortsAnnotation = "traffic.weft.dev/exclude-inbound-ports"
	// ExcludeOutboundPortsAnnotation is a comma-separated list of
	// destination ports whose outbound traffic bypasses the sidecar.
	ExcludeOutboundPortsAnnotation = "traffic.weft.dev/exclude-outbound-ports"
	// ExcludeOutboundIPRangesAnnotation is a comma-separated list of CIDRs
	// (a bare IP means a single address) whose outbound traffic bypasses the
	// sidecar, e.g. a cloud metadata endpoint.
	ExcludeOutboundIPRangesAnnotation = "traffic.weft.dev/exclude-outbound-ip-ranges"

	// ProxyCPUAnnotation overrides the sidecar's CPU request (a Kubernetes
	// quantity such as "100m").
	ProxyCPUAnnotation = "proxy.weft.dev/cpu"
	// ProxyMemoryAnnotation overrides the sidecar's memory request ("128Mi").
	ProxyMemoryAnnotation = "proxy.weft.dev/memory"
	// ProxyCPULimitAnnotation sets the sidecar's CPU limit.
	ProxyCPULimitAnnotation = "proxy.weft.dev/cpu-limit"
	// ProxyMemoryLimitAnnotation sets the sidecar's memory limit.
	ProxyMemoryLimitAnnotation = "proxy.weft.dev/memory-limit"
)
