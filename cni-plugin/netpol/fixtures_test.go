package netpol

import (
	"fmt"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// node is the node the fixtures plan for.
const node = "n1"

func pod(ns, name, ip, nodeName string, lbls map[string]string, ports ...NamedPort) Pod {
	return Pod{Namespace: ns, Name: name, IP: netip.MustParseAddr(ip), Node: nodeName, Labels: labels.Set(lbls), Ports: ports}
}

func named(name string, proto Protocol, port uint16) NamedPort {
	return NamedPort{Name: name, Protocol: proto, Port: port}
}

func namespace(name string, lbls map[string]string) Namespace {
	l := labels.Set{namespaceNameLabel: name}
	for k, v := range lbls {
		l[k] = v
	}
	return Namespace{Name: name, Labels: l}
}

// Builders for NetworkPolicy parts.
func sel(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

func podPeer(s *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: s}
}

func nsPeer(ns, pods *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: ns, PodSelector: pods}
}

func blockPeer(cidr string, except ...string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: cidr, Except: except}}
}

func port(proto corev1.Protocol, p intstr.IntOrString, end ...int32) networkingv1.NetworkPolicyPort {
	out := networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &p}
	if len(end) > 0 {
		out.EndPort = &end[0]
	}
	return out
}

func tcp(p int) networkingv1.NetworkPolicyPort {
	return port(corev1.ProtocolTCP, intstr.FromInt32(int32(p)))
}

func namedPort(proto corev1.Protocol, name string) networkingv1.NetworkPolicyPort {
	return port(proto, intstr.FromString(name))
}

type policyOpt func(*networkingv1.NetworkPolicy)

func policy(ns, name string, pods *metav1.LabelSelector, opts ...policyOpt) *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1}}
	np.Spec.PodSelector = *pods
	for _, o := range opts {
		o(np)
	}
	return np
}

func policyTypes(ts ...networkingv1.PolicyType) policyOpt {
	return func(np *networkingv1.NetworkPolicy) { np.Spec.PolicyTypes = ts }
}

func ingress(ports []networkingv1.NetworkPolicyPort, from ...networkingv1.NetworkPolicyPeer) policyOpt {
	return func(np *networkingv1.NetworkPolicy) {
		np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: from, Ports: ports})
	}
}

func egress(ports []networkingv1.NetworkPolicyPort, to ...networkingv1.NetworkPolicyPeer) policyOpt {
	return func(np *networkingv1.NetworkPolicy) {
		np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: to, Ports: ports})
	}
}

func ports(ps ...networkingv1.NetworkPolicyPort) []networkingv1.NetworkPolicyPort { return ps }

// compileAll compiles policies that must be usable.
func compileAll(t testing.TB, nps ...*networkingv1.NetworkPolicy) []*Policy {
	t.Helper()
	var out []*Policy
	for _, np := range nps {
		p, err := Compile(np)
		if err != nil {
			t.Fatalf("compile %s/%s: %v", np.Namespace, np.Name, err)
		}
		out = append(out, p)
	}
	return out
}

var (
	ingressOnly = policyTypes(networkingv1.PolicyTypeIngress)
	egressOnly  = policyTypes(networkingv1.PolicyTypeEgress)
	both        = policyTypes(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress)
)

// representativePolicies cover every feature: default deny, pod,
// namespace and combined selectors, ipBlock with except, numbered, named
// and ranged ports, UDP and SCTP, egress, and two bad rules.
func representativePolicies() []*networkingv1.NetworkPolicy {
	return []*networkingv1.NetworkPolicy{
		policy("shop", "default-deny", sel(), ingressOnly),
		policy("shop", "allow-web", sel("app", "web"),
			ingress(ports(namedPort(corev1.ProtocolTCP, "http"), tcp(9090)),
				podPeer(sel("app", "api")), nsPeer(sel("team", "ops"), sel("app", "prom"))),
			ingress(ports(port(corev1.ProtocolTCP, intstr.FromInt32(8000), 8100)),
				blockPeer("192.168.0.0/16", "192.168.1.0/24"))),
		policy("db", "pg", sel("app", "pg"), both,
			ingress(ports(tcp(5432)), nsPeer(sel("team", "web"), nil)),
			egress(ports(port(corev1.ProtocolUDP, intstr.FromInt32(53)), tcp(53)),
				nsPeer(sel(namespaceNameLabel, "kube-system"), sel("k8s-app", "kube-dns"))),
			egress(nil, blockPeer("10.0.0.0/8", "10.244.0.0/16"))),
		policy("shop", "api-egress", sel("app", "api"), egressOnly,
			egress(ports(namedPort(corev1.ProtocolUDP, "dns"))),
			egress(ports(namedPort(corev1.ProtocolTCP, "http")), podPeer(sel("app", "web"))),
			egress(ports(port(corev1.ProtocolSCTP, intstr.FromInt32(3868))), blockPeer("0.0.0.0/0"))),
		policy("shop", "bad-input", sel("app", "web"), ingressOnly,
			ingress(ports(port("ICMP", intstr.FromInt32(8))), podPeer(sel())),
			ingress(ports(tcp(8080)), blockPeer("010.1.0.0/16")),
			ingress(ports(tcp(8443)), podPeer(sel("app", "api")))),
		policy("ops", "deny-all", sel(), ingressOnly),
	}
}

func representativeState(t testing.TB) State {
	web := []NamedPort{named("http", TCP, 8080), named("metrics", TCP, 9090)}
	return State{
		Node: node,
		Namespaces: []Namespace{
			namespace("shop", map[string]string{"team": "web"}), namespace("db", map[string]string{"team": "data"}),
			namespace("ops", map[string]string{"team": "ops"}), namespace("kube-system", nil),
		},
		Pods: []Pod{
			pod("shop", "web-1", "10.244.1.10", node, map[string]string{"app": "web"}, web...),
			pod("shop", "web-2", "10.244.2.10", "n2", map[string]string{"app": "web"}, web...),
			{Namespace: "shop", Name: "web-0-old", IP: netip.MustParseAddr("10.244.1.10"), Node: node, Terminating: true,
				Labels: labels.Set{"app": "web"}},
			pod("shop", "api-1", "10.244.1.11", node, map[string]string{"app": "api"}, named("grpc", TCP, 9000)),
			pod("db", "pg-1", "10.244.1.20", node, map[string]string{"app": "pg"}, named("pg", TCP, 5432)),
			pod("db", "pg-2", "10.244.2.20", "n2", map[string]string{"app": "pg"}),
			pod("ops", "prom", "10.244.3.5", "n3", map[string]string{"app": "prom"}),
			pod("ops", "other", "10.244.1.30", node, map[string]string{"app": "other"}),
			pod("kube-system", "coredns", "10.244.2.53", "n2", map[string]string{"k8s-app": "kube-dns"},
				named("dns", UDP, 53), named("dns-tcp", TCP, 53)),
		},
		Policies: compileAll(t, representativePolicies()...),
	}
}

// scaledState is the benchmark cluster: pods pods in 50 namespaces, all
// on this node (the worst case for one node), and policies policies, two
// per namespace until they run out: a default deny (ingress and egress)
// and an allow with pod, namespace and ipBlock peers and named ports.
func scaledState(t testing.TB, pods, policies int) State {
	s := State{Node: node}
	const namespaces = 50
	for n := range namespaces {
		s.Namespaces = append(s.Namespaces, namespace(fmt.Sprintf("ns-%d", n), map[string]string{"team": fmt.Sprint(n % 5)}))
	}
	for i := range pods {
		ns := fmt.Sprintf("ns-%d", i%namespaces)
		ip := fmt.Sprintf("10.244.%d.%d", 1+i/250, 2+i%250)
		s.Pods = append(s.Pods, pod(ns, fmt.Sprintf("pod-%d", i), ip, node,
			map[string]string{"app": fmt.Sprintf("app-%d", i%4), "tier": fmt.Sprint(i % 3)},
			named("http", TCP, 8080), named("dns", UDP, 53)))
	}
	var nps []*networkingv1.NetworkPolicy
	for i := range policies {
		ns := fmt.Sprintf("ns-%d", (i/2)%namespaces)
		if i%2 == 0 {
			nps = append(nps, policy(ns, fmt.Sprintf("deny-%d", i), sel(), both,
				egress(ports(port(corev1.ProtocolUDP, intstr.FromInt32(53))), nsPeer(sel("team", "0"), sel("app", "app-0")))))
			continue
		}
		nps = append(nps, policy(ns, fmt.Sprintf("allow-%d", i), sel("app", fmt.Sprintf("app-%d", i%4)), both,
			ingress(ports(namedPort(corev1.ProtocolTCP, "http"), tcp(9090)), podPeer(sel("tier", "1")),
				nsPeer(sel("team", fmt.Sprint(i%5)), sel("app", "app-1"))),
			ingress(ports(port(corev1.ProtocolTCP, intstr.FromInt32(8000), 8100)), blockPeer("192.168.0.0/16", "192.168.1.0/24")),
			egress(ports(namedPort(corev1.ProtocolTCP, "http")), nsPeer(sel("team", fmt.Sprint((i+1)%5)), nil))))
	}
	s.Policies = compileAll(t, nps...)
	return s
}
