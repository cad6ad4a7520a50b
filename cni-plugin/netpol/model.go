// Package netpol enforces Kubernetes NetworkPolicy (networking.k8s.io/v1,
// https://kubernetes.io/docs/concepts/services-networking/network-policies/)
// for the pods of one node, inside weft-cni-node. It has the Service
// proxy's shape: informers record that something changed; a bounded-frequency
// loop builds the whole desired ruleset from plain data (Compile, Plan: pure),
// diffs it against what it wrote last (Diff: pure) and writes the difference
// in one nftables transaction (the NFT edge) to its own table,
// inet weft-netpol. See README.md for the design and what is enforced.
package netpol

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Protocol is a transport protocol NetworkPolicy ports may name.
type Protocol uint8

// The protocols of NetworkPolicyPort.protocol, by IANA number (what
// nftables' meta l4proto compares).
const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

// String is the nft keyword.
func (p Protocol) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case SCTP:
		return "sctp"
	}
	return strconv.Itoa(int(p))
}

// parseProtocol maps the API's protocol (nil means TCP).
func parseProtocol(p *corev1.Protocol) (Protocol, bool) {
	if p == nil {
		return TCP, true
	}
	switch *p {
	case corev1.ProtocolTCP:
		return TCP, true
	case corev1.ProtocolUDP:
		return UDP, true
	case corev1.ProtocolSCTP:
		return SCTP, true
	}
	return 0, false
}

// NamedPort is a container port with a name, which NetworkPolicy ports may
// refer to instead of a number.
type NamedPort struct {
	Name     string
	Protocol Protocol
	Port     uint16
}

// Pod is what policy needs to know about a pod.
type Pod struct {
	Namespace, Name string
	Labels          labels.Set
	// IP is the pod's IPv4 address; pods without one are ignored.
	IP   netip.Addr
	Node string
	// Terminating pods still hold their address until they are gone; a
	// live pod that reuses it wins.
	Terminating bool
	Ports       []NamedPort
}

// Key is namespace/name.
func (p *Pod) Key() string { return p.Namespace + "/" + p.Name }

// PodFrom converts an API pod. ok is false for pods NetworkPolicy does not
// apply to: host-network pods (their address is the node's), finished pods
// (their address may already belong to another pod) and pods without an
// IPv4 address yet.
func PodFrom(p *corev1.Pod) (Pod, bool) {
	if p.Spec.HostNetwork || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return Pod{}, false
	}
	var ip netip.Addr
	for _, s := range append([]corev1.PodIP{{IP: p.Status.PodIP}}, p.Status.PodIPs...) {
		if a, err := netip.ParseAddr(s.IP); err == nil && a.Is4() {
			ip = a
			break
		}
	}
	if !ip.IsValid() {
		return Pod{}, false
	}
	out := Pod{
		Namespace: p.Namespace, Name: p.Name, Labels: labels.Set(p.Labels), IP: ip,
		Node: p.Spec.NodeName, Terminating: p.DeletionTimestamp != nil,
	}
	containers := slices.Clone(p.Spec.Containers)
	for _, c := range p.Spec.InitContainers {
		// Native sidecars (init containers that keep running) serve ports too.
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			containers = append(containers, c)
		}
	}
	for _, c := range containers {
		for _, cp := range c.Ports {
			proto, ok := parseProtocol(&cp.Protocol)
			if cp.Protocol == "" {
				proto, ok = TCP, true
			}
			if cp.Name != "" && ok && cp.ContainerPort > 0 && cp.ContainerPort < 65536 {
				out.Ports = append(out.Ports, NamedPort{Name: cp.Name, Protocol: proto, Port: uint16(cp.ContainerPort)})
			}
		}
	}
	return out, true
}

// namespaceNameLabel is set by the API server on every namespace, so
// policies can select a namespace by name.
const namespaceNameLabel = "kubernetes.io/metadata.name"

// Namespace is a namespace's name and labels.
type Namespace struct {
	Name   string
	Labels labels.Set
}

// State is everything a sync plans from: this node's name, the cluster's
// pods and namespaces, and the compiled policies.
type State struct {
	Node       string
	Pods       []Pod
	Namespaces []Namespace
	Policies   []*Policy
}

// index is the State arranged for selector resolution.
type index struct {
	node     string
	nsLabels map[string]labels.Set
	byNS     map[string][]*Pod // sorted by key; one pod per address
	all      []*Pod
	local    []*Pod
}

func newIndex(s State) *index {
	ix := &index{node: s.Node, nsLabels: map[string]labels.Set{}, byNS: map[string][]*Pod{}}
	for _, ns := range s.Namespaces {
		ix.nsLabels[ns.Name] = ns.Labels
	}
	// One pod per address: a live pod beats a terminating one, then the
	// lower key wins, so the result does not depend on list order.
	byIP := map[netip.Addr]*Pod{}
	for i := range s.Pods {
		p := &s.Pods[i]
		if !p.IP.Is4() {
			continue
		}
		if cur, ok := byIP[p.IP]; ok && !better(p, cur) {
			continue
		}
		byIP[p.IP] = p
	}
	for _, p := range byIP {
		ix.all = append(ix.all, p)
	}
	slices.SortFunc(ix.all, func(a, b *Pod) int { return strings.Compare(a.Key(), b.Key()) })
	for _, p := range ix.all {
		ix.byNS[p.Namespace] = append(ix.byNS[p.Namespace], p)
		if p.Node == s.Node {
			ix.local = append(ix.local, p)
		}
	}
	return ix
}

func better(p, than *Pod) bool {
	if p.Terminating != than.Terminating {
		return !p.Terminating
	}
	return p.Key() < than.Key()
}

// namespaceLabels includes the name label the API server adds, also for a
// namespace the cache has not seen yet.
func (ix *index) namespaceLabels(ns string) labels.Set {
	l, ok := ix.nsLabels[ns]
	if !ok {
		return labels.Set{namespaceNameLabel: ns}
	}
	if _, has := l[namespaceNameLabel]; has {
		return l
	}
	withName := labels.Set{namespaceNameLabel: ns}
	for k, v := range l {
		withName[k] = v
	}
	return withName
}

// sortedNamespaces lists every namespace that has pods or is known.
func (ix *index) sortedNamespaces() []string {
	seen := map[string]bool{}
	for ns := range ix.nsLabels {
		seen[ns] = true
	}
	for ns := range ix.byNS {
		seen[ns] = true
	}
	out := make([]string, 0, len(seen))
	for ns := range seen {
		out = append(out, ns)
	}
	slices.Sort(out)
	return out
}
