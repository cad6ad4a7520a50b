// Package check is meshctl check: Collect gathers a snapshot of cluster
// facts (Facts), Evaluate turns it into results with a one-line fix each,
// and Report renders them. Evaluate is pure, so every verdict is tested
// from hand-written facts and golden outputs.
package check

import (
	"time"

	"github.com/weftmesh/weft/install"
)

// Facts is everything the checks look at. Each part carries Err when it
// could not be collected, which the matching check reports.
type Facts struct {
	Now time.Time
	// FailWithin fails certificates that expire within it.
	FailWithin time.Duration
	// Pre selects the pre-install checks; Components are what the install
	// would enable.
	Pre        bool
	Components install.Components

	Server Server
	Nodes  Nodes

	// Pre-install.
	Conflicts []Conflict
	Access    []Access
	Installed bool

	// Post-install.
	Workloads []Workload
	CRDs      CRDs
	Webhook   Webhook
	CA        CA
	Sidecars  Sidecars
	Proxies   Proxies
	Redirect  Redirect
}

// Server is the API server's version.
type Server struct {
	GitVersion   string
	Major, Minor int
	Err          string
}

// Nodes are the cluster's nodes.
type Nodes struct {
	Items []Node
	Err   string
}

// Node is one node.
type Node struct {
	Name    string
	Ready   bool
	PodCIDR string
}

// Conflict is something already in the cluster that does Weft's job.
type Conflict struct {
	// Component is the Weft component it conflicts with (cni, proxy, mesh).
	Component string
	What      string // "DaemonSet kube-system/kube-proxy"
}

// Access is one permission the install needs (SelfSubjectAccessReview).
type Access struct {
	Verb, Group, Resource, Namespace string
	Allowed                          bool
	Err                              string
}

// Workload is a component's Deployment or DaemonSet.
type Workload struct {
	// Component is cni, proxy, dns or mesh; Name the object's name.
	Component, Kind, Name string
	Found                 bool
	Ready                 bool
	Status                string
	// Problems say why pods are not ready (lifecycle.DiagnosePods).
	Problems []string
	Image    string
	Err      string
}

// CRDs are the mesh's CustomResourceDefinitions.
type CRDs struct {
	Items []CRD
	Err   string
}

// CRD is one CRD and whether the API server serves it.
type CRD struct {
	Name        string
	Established bool
}

// Webhook is the injection webhook's state.
type Webhook struct {
	Found bool
	// MissingCABundle lists webhooks without a caBundle.
	MissingCABundle []string
	// Endpoints is the number of ready addresses behind its Service.
	Endpoints int
	Err       string
	// DryRun is the server-side dry-run create of a pod in a namespace
	// labelled for injection: did it come back with the sidecar?
	DryRun DryRun
}

// DryRun is the outcome of the webhook round trip.
type DryRun struct {
	Ran      bool
	Injected bool
	Err      string
	// Skipped says why it did not run (e.g. no permission).
	Skipped string
}

// CA is the mesh CA's certificates.
type CA struct {
	// Source is the Secret read ("weft-system/weft-ca", or cacerts), or
	// the ConfigMap when Secrets cannot be read.
	Source string
	Signer *Cert
	Roots  []Cert
	Err    string
	// Stale lists namespaces whose weft-root-cert lacks a current root.
	Stale []string
	// Published counts the weft-root-cert ConfigMaps compared.
	Published int
}

// Cert is a certificate's identity and validity.
type Cert struct {
	Subject  string    `json:"subject"`
	Serial   string    `json:"serial"`
	NotAfter time.Time `json:"notAfter"`
}

// Sidecars are the meshed pods' sidecar images against the control
// plane's.
type Sidecars struct {
	// Expected is the image the injector injects (its --sidecar-image);
	// PilotImage the control plane's.
	Expected, PilotImage string
	Pods                 []SidecarPod
	Err                  string
}

// SidecarPod is one meshed pod.
type SidecarPod struct {
	Namespace, Name, Image string
}

// Proxies compare the meshed pods that run with the proxies connected to
// pilot (its /debug/syncz).
type Proxies struct {
	Err string
	// Connected maps "<pod>.<namespace>" to the proxy's worst state.
	Connected map[string]ProxyState
	// Running are meshed pods whose sidecar has started.
	Running []string
}

// ProxyState is a proxy's overall sync state.
type ProxyState struct {
	// State is SYNCED, STALE or NACK (the worst of its types).
	State string
	// StaleFor is how long the oldest unacknowledged push has waited.
	StaleFor time.Duration
	Error    string
}

// Redirect is weft-cni-node's check of meshed pods' redirect rules.
type Redirect struct {
	// Checkers are the weft-cni-node pods (none: the CNI is not Weft's).
	Checkers []RedirectChecker
	// Events are RedirectRulesMissing warnings on pods that still exist.
	Events []RedirectEvent
}

// RedirectChecker is one node's weft-cni-node and its
// weft_cni_node_redirect_missing_pods gauge.
type RedirectChecker struct {
	Node, Pod string
	Missing   int
	Err       string
}

// RedirectEvent names a pod the checker found without rules.
type RedirectEvent struct {
	Namespace, Pod, Node, Message string
}
