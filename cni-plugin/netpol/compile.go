package netpol

import (
	"errors"
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Direction is ingress (traffic to the selected pods) or egress (from them).
type Direction uint8

// The two directions of policyTypes.
const (
	Ingress Direction = iota
	Egress
)

// String is the policyTypes spelling, lower-cased.
func (d Direction) String() string {
	if d == Ingress {
		return "ingress"
	}
	return "egress"
}

// short is the chain and set name infix.
func (d Direction) short() string {
	if d == Ingress {
		return "in"
	}
	return "eg"
}

// Policy is a NetworkPolicy checked and converted for planning.
type Policy struct {
	Namespace, Name string
	UID             types.UID
	// Selector picks the pods of Namespace the policy isolates.
	Selector labels.Selector
	// Isolates says for which directions (policyTypes) the selected pods
	// are isolated.
	Isolates [2]bool
	// Rules are the allow rules by direction. An invalid rule is kept out
	// (it allows nothing) and reported in Problems.
	Rules [2][]AllowRule
	// Problems are the parts left out, for the event and the log.
	Problems []error
}

// Key is namespace/name.
func (p *Policy) Key() string { return p.Namespace + "/" + p.Name }

// AllowRule is one ingress or egress rule: traffic from (to) any of Peers on any
// of Ports is allowed. Empty Peers means every peer, empty Ports every port.
type AllowRule struct {
	Index int
	Peers []Peer
	Ports []Port
}

// Peer is one NetworkPolicyPeer. A nil PodSelector with a namespace
// selector means every pod of those namespaces; a nil NamespaceSelector
// means the policy's own namespace. Block is set for an ipBlock.
type Peer struct {
	PodSelector       labels.Selector
	NamespaceSelector labels.Selector
	Block             Ranges
	IsBlock           bool
}

// Port is one NetworkPolicyPort: a protocol with all its ports
// (Port == 0), a port or range Port..EndPort, or a named container port.
type Port struct {
	Protocol      Protocol
	Port, EndPort uint16
	Name          string
}

// Compile checks a NetworkPolicy and converts it. A policy whose
// podSelector cannot be read is unusable (nil Policy, error): which pods
// it isolates is unknown. Anything else that is invalid (a malformed CIDR,
// an unsupported protocol, a bad port) drops only its rule, which then
// allows nothing; the policy still isolates its pods, so bad input fails
// closed. Such problems are listed in Policy.Problems.
func Compile(np *networkingv1.NetworkPolicy) (*Policy, error) {
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		return nil, fmt.Errorf("podSelector: %w", err)
	}
	p := &Policy{Namespace: np.Namespace, Name: np.Name, UID: np.UID, Selector: sel}
	types := np.Spec.PolicyTypes
	if len(types) == 0 { // what the API server defaults to
		types = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(np.Spec.Egress) > 0 {
			types = append(types, networkingv1.PolicyTypeEgress)
		}
	}
	for _, t := range types {
		switch t {
		case networkingv1.PolicyTypeIngress:
			p.Isolates[Ingress] = true
		case networkingv1.PolicyTypeEgress:
			p.Isolates[Egress] = true
		default:
			p.Problems = append(p.Problems, fmt.Errorf("policyTypes: unknown type %q ignored", t))
		}
	}
	for i, r := range np.Spec.Ingress {
		p.addRule(Ingress, i, r.From, r.Ports)
	}
	for i, r := range np.Spec.Egress {
		p.addRule(Egress, i, r.To, r.Ports)
	}
	return p, nil
}

func (p *Policy) addRule(d Direction, i int, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) {
	if !p.Isolates[d] {
		return // rules of a direction not in policyTypes have no effect
	}
	r := AllowRule{Index: i}
	var errs []error
	for j := range peers {
		peer, ok, err := compilePeer(&peers[j])
		if err != nil {
			errs = append(errs, fmt.Errorf("peer %d: %w", j, err))
		}
		if ok {
			r.Peers = append(r.Peers, peer)
		}
	}
	if len(peers) > 0 && len(r.Peers) == 0 && len(errs) == 0 {
		return // only IPv6 blocks: nothing on this network matches
	}
	for j := range ports {
		port, err := compilePort(&ports[j])
		if err != nil {
			errs = append(errs, fmt.Errorf("port %d: %w", j, err))
			continue
		}
		r.Ports = append(r.Ports, port)
	}
	if err := errors.Join(errs...); err != nil {
		p.Problems = append(p.Problems, fmt.Errorf("%s rule %d skipped (allows nothing): %w", d, i, err))
		return
	}
	p.Rules[d] = append(p.Rules[d], r)
}

// compilePeer returns ok=false for a peer that cannot match on IPv4.
func compilePeer(peer *networkingv1.NetworkPolicyPeer) (Peer, bool, error) {
	if b := peer.IPBlock; b != nil {
		if peer.PodSelector != nil || peer.NamespaceSelector != nil {
			return Peer{}, false, errors.New("ipBlock must be the only field of its peer")
		}
		cidr, ok, err := parseIPv4Prefix(b.CIDR)
		if err != nil || !ok {
			return Peer{}, false, err
		}
		var cut []Range
		for _, e := range b.Except {
			ex, ok, err := parseIPv4Prefix(e)
			if err != nil {
				return Peer{}, false, fmt.Errorf("except: %w", err)
			}
			if !ok || !cidr.Contains(ex.Addr()) || ex.Bits() <= cidr.Bits() {
				return Peer{}, false, fmt.Errorf("except %q is not inside cidr %q", e, b.CIDR)
			}
			cut = append(cut, PrefixRange(ex))
		}
		block := Ranges{PrefixRange(cidr)}.Subtract(MergeRanges(cut))
		return Peer{Block: block, IsBlock: true}, true, nil
	}
	var out Peer
	var err error
	if peer.PodSelector != nil {
		if out.PodSelector, err = metav1.LabelSelectorAsSelector(peer.PodSelector); err != nil {
			return Peer{}, false, fmt.Errorf("podSelector: %w", err)
		}
	}
	if peer.NamespaceSelector != nil {
		if out.NamespaceSelector, err = metav1.LabelSelectorAsSelector(peer.NamespaceSelector); err != nil {
			return Peer{}, false, fmt.Errorf("namespaceSelector: %w", err)
		}
	}
	if out.PodSelector == nil && out.NamespaceSelector == nil {
		return Peer{}, false, errors.New("empty peer: set podSelector, namespaceSelector or ipBlock")
	}
	return out, true, nil
}

func compilePort(np *networkingv1.NetworkPolicyPort) (Port, error) {
	proto, ok := parseProtocol(np.Protocol)
	if !ok {
		return Port{}, fmt.Errorf("unsupported protocol %q (want TCP, UDP or SCTP)", *np.Protocol)
	}
	out := Port{Protocol: proto}
	switch {
	case np.Port == nil:
		if np.EndPort != nil {
			return Port{}, errors.New("endPort without port")
		}
	case np.Port.Type == intstr.String:
		if np.EndPort != nil {
			return Port{}, fmt.Errorf("endPort with named port %q", np.Port.StrVal)
		}
		if np.Port.StrVal == "" {
			return Port{}, errors.New("empty port name")
		}
		out.Name = np.Port.StrVal
	default:
		v := np.Port.IntVal
		if v < 1 || v > 65535 {
			return Port{}, fmt.Errorf("port %d out of range 1-65535", v)
		}
		out.Port, out.EndPort = uint16(v), uint16(v)
		if np.EndPort != nil {
			if e := *np.EndPort; e < v || e > 65535 {
				return Port{}, fmt.Errorf("endPort %d must be in %d-65535", e, v)
			}
			out.EndPort = uint16(*np.EndPort)
		}
	}
	return out, nil
}
