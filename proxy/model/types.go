// Package model turns Kubernetes Services, EndpointSlices and Nodes into the
// plain, per-node service and endpoint data that weft-proxy's rule planner
// consumes. It holds no informers and does no I/O: event handlers feed objects
// into a Tracker, and the sync loop takes a consistent view out of it. Keeping
// this pure is what lets the planner be tested with golden files and
// packet-flow tables instead of a cluster.
package model

import (
	"net/netip"

	"k8s.io/apimachinery/pkg/types"
)

// Protocol is a Service port protocol in the lower-case spelling iptables
// uses for `-p` and `-m`.
type Protocol string

// The protocols a Service port may use (core/v1 Protocol).
const (
	TCP  Protocol = "tcp"
	UDP  Protocol = "udp"
	SCTP Protocol = "sctp"
)

// ServicePortName identifies one port of one Service; rules, chain-name
// hashes and conntrack cleanup are all per service port, as in kube-proxy.
type ServicePortName struct {
	types.NamespacedName
	Port string // the port's name, empty for single-port Services
}

// String renders "namespace/name:port" (or "namespace/name"), the text used in
// rule comments and chain-name hashes.
func (n ServicePortName) String() string {
	if n.Port == "" {
		return n.Namespace + "/" + n.Name
	}
	return n.Namespace + "/" + n.Name + ":" + n.Port
}

// ServicePort is everything the planner needs to know about one port of a
// Service that has a virtual IP. Headless and ExternalName Services never
// become a ServicePort: they have no VIP and so no rules.
type ServicePort struct {
	Name     ServicePortName
	Protocol Protocol
	// ClusterIP is the IPv4 cluster IP; weft-proxy programs the IPv4 family only.
	ClusterIP netip.Addr
	Port      uint16
	// NodePort is 0 when the Service has none.
	NodePort        uint16
	ExternalIPs     []netip.Addr
	LoadBalancerIPs []netip.Addr
	// Firewalled is true when spec.loadBalancerSourceRanges is set: only
	// SourceRanges (its IPv4 entries, possibly none) may use the
	// load-balancer IPs.
	Firewalled   bool
	SourceRanges []netip.Prefix
	// AffinitySeconds is the ClientIP session-affinity timeout; 0 means no
	// affinity.
	AffinitySeconds int32
	// InternalLocal is internalTrafficPolicy: Local.
	InternalLocal bool
	// ExternalLocal is externalTrafficPolicy: Local on an externally
	// accessible Service.
	ExternalLocal bool
	// HealthCheckNodePort answers load-balancer probes for ExternalLocal
	// Services; 0 when unused.
	HealthCheckNodePort uint16
}

// ExternallyAccessible reports whether any "external" destination (NodePort,
// external IP, load-balancer IP) leads to this port; those are subject to
// externalTrafficPolicy.
func (p *ServicePort) ExternallyAccessible() bool {
	return p.NodePort != 0 || len(p.ExternalIPs) > 0 || len(p.LoadBalancerIPs) > 0
}

// UsesClusterEndpoints reports whether the port needs the cluster-wide
// endpoint set: for internal traffic with the Cluster policy, and for any
// externally accessible port (pods calling an eTP=Local external address are
// short-circuited to all endpoints, as kube-proxy does).
func (p *ServicePort) UsesClusterEndpoints() bool {
	return !p.InternalLocal || p.ExternallyAccessible()
}

// UsesLocalEndpoints reports whether the port needs the node-local endpoint
// set for one of its traffic policies.
func (p *ServicePort) UsesLocalEndpoints() bool {
	return p.InternalLocal || (p.ExternalLocal && p.ExternallyAccessible())
}

// Endpoint is one backend address of a service port as seen from this node.
type Endpoint struct {
	IP   netip.Addr
	Port uint16
	// Ready, Serving and Terminating are the EndpointSlice conditions; a nil
	// ready/serving condition counts as true, as the API asks consumers to.
	Ready, Serving, Terminating bool
	// Local is true when the endpoint runs on this node; Remote when it is
	// known to run on another one (both false: the slice names no node).
	Local, Remote bool
}

// String is "ip:port", the DNAT target and part of the endpoint chain hash.
func (e Endpoint) String() string {
	return netip.AddrPortFrom(e.IP, e.Port).String()
}

// Service is one Service's ports and their endpoints, the unit the tracker
// rebuilds and the planner re-renders when anything about the Service or its
// EndpointSlices changes.
type Service struct {
	Name  types.NamespacedName
	Ports []ServicePort
	// Endpoints holds each port's endpoints by port name, sorted by address.
	Endpoints map[string][]Endpoint
}

// Node is what the proxy needs to know about the node it runs on.
type Node struct {
	Name string
	IPs  []netip.Addr
	// Eligible is false while the node is being deleted or drained by the
	// cluster autoscaler; /healthz then answers 503 so load balancers stop
	// sending new connections here (KEP-3836).
	Eligible bool
}
