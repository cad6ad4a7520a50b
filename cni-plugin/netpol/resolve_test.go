package netpol

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// resolveState: three namespaces, pods on this and other nodes.
func resolveState() State {
	return State{
		Node: node,
		Namespaces: []Namespace{
			namespace("a", map[string]string{"env": "prod"}), namespace("b", map[string]string{"env": "prod"}),
			namespace("c", map[string]string{"env": "dev"}),
		},
		Pods: []Pod{
			pod("a", "web", "10.244.1.2", node, map[string]string{"app": "web"}, named("http", TCP, 8080)),
			pod("a", "db", "10.244.2.2", "n2", map[string]string{"app": "db"}, named("http", TCP, 9999)),
			pod("b", "web", "10.244.1.5", node, map[string]string{"app": "web"}, named("http", TCP, 8081)),
			pod("b", "api", "10.244.3.3", "n3", map[string]string{"app": "api"}, named("http", UDP, 8082)),
			pod("c", "web", "10.244.2.4", "n2", map[string]string{"app": "web"}),
			// d is not in the namespace cache yet; its name label still works.
			pod("d", "web", "10.244.3.5", "n3", map[string]string{"app": "web"}),
		},
	}
}

func TestSelectorResolution(t *testing.T) {
	for _, tc := range []struct {
		name string
		peer networkingv1.NetworkPolicyPeer
		want string
	}{
		{"podSelector: the policy's namespace only", podPeer(sel("app", "web")), "10.244.1.2"},
		{"empty podSelector: every pod of the namespace", podPeer(sel()), "10.244.1.2, 10.244.2.2"},
		{"namespaceSelector: every pod of those namespaces", nsPeer(sel("env", "prod"), nil), "10.244.1.2, 10.244.1.5, 10.244.2.2, 10.244.3.3"},
		{"both: matching pods of matching namespaces", nsPeer(sel("env", "prod"), sel("app", "web")), "10.244.1.2, 10.244.1.5"},
		{"empty namespaceSelector: every namespace", nsPeer(sel(), sel("app", "web")), "10.244.1.2, 10.244.1.5, 10.244.2.4, 10.244.3.5"},
		{"namespace by its name label, also when not cached", nsPeer(sel(namespaceNameLabel, "d"), nil), "10.244.3.5"},
		{"matchExpressions", nsPeer(&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "env", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"prod"}}}}, sel("app", "web")), "10.244.2.4, 10.244.3.5"},
		{"ipBlock with except", blockPeer("10.244.0.0/16", "10.244.1.0/24", "10.244.3.0/25"),
			"10.244.0.0/24, 10.244.2.0/24, 10.244.3.128-10.244.255.255"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := resolveState()
			p, err := Compile(policy("a", "p", sel(), ingress(nil, tc.peer)))
			require.NoError(t, err)
			got, ok := Addresses(s, p, Ingress, 0)
			require.True(t, ok)
			assert.Equal(t, tc.want, got.String())
		})
	}
	p, err := Compile(policy("a", "p", sel(), ingress(nil, nsPeer(sel(), sel("app", "web")), blockPeer("10.244.1.0/30"))))
	require.NoError(t, err)
	got, _ := Addresses(resolveState(), p, Ingress, 0)
	assert.Equal(t, "10.244.1.0/30, 10.244.1.5, 10.244.2.4, 10.244.3.5", got.String(), "the peers of a rule merge into one set")
}

func TestPodsPolicyIgnores(t *testing.T) {
	base := corev1.Pod{}
	base.Namespace, base.Name = "a", "p"
	base.Spec.NodeName = node
	base.Status.PodIP = "10.244.1.9"
	base.Spec.Containers = []corev1.Container{{Ports: []corev1.ContainerPort{
		{Name: "http", ContainerPort: 8080}, {Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP}, {ContainerPort: 9}}}}
	always := corev1.ContainerRestartPolicyAlways
	base.Spec.InitContainers = []corev1.Container{
		{RestartPolicy: &always, Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 15090}}},
		{Ports: []corev1.ContainerPort{{Name: "setup", ContainerPort: 7000}}}, // runs to completion: not a port of the pod
	}
	p, ok := PodFrom(&base)
	require.True(t, ok)
	assert.Equal(t, []NamedPort{named("http", TCP, 8080), named("dns", UDP, 53), named("metrics", TCP, 15090)}, p.Ports)

	host := base.DeepCopy()
	host.Spec.HostNetwork = true
	done := base.DeepCopy()
	done.Status.Phase = corev1.PodSucceeded
	pending := base.DeepCopy()
	pending.Status.PodIP = ""
	v6 := base.DeepCopy()
	v6.Status.PodIP = "fd00::9"
	for name, p := range map[string]*corev1.Pod{"host network": host, "finished": done, "no address yet": pending, "IPv6 only": v6} {
		_, ok := PodFrom(p)
		assert.False(t, ok, name)
	}
}

func TestAddressReuse(t *testing.T) {
	s := resolveState()
	old := pod("a", "old", "10.244.1.2", node, map[string]string{"app": "old"})
	old.Terminating = true
	s.Pods = append([]Pod{old}, s.Pods...)
	p, err := Compile(policy("a", "p", sel(), ingress(nil, podPeer(sel("app", "old")))))
	require.NoError(t, err)
	got, _ := Addresses(s, p, Ingress, 0)
	assert.Empty(t, got, "a terminating pod loses its address to the live pod that reuses it")
}

func TestNamedPortResolution(t *testing.T) {
	s := resolveState()
	// Ingress: the port of the selected (destination) pods of this node.
	in, err := Compile(policy("a", "in", sel("app", "web"), ingress(ports(namedPort(corev1.ProtocolTCP, "http")))))
	require.NoError(t, err)
	// Egress: the port of the peer pods, any protocol mismatch excluded.
	eg, err := Compile(policy("b", "eg", sel("app", "web"), egressOnly,
		egress(ports(namedPort(corev1.ProtocolTCP, "http")), nsPeer(sel("env", "prod"), nil)),
		egress(ports(namedPort(corev1.ProtocolUDP, "http"))),
		egress(ports(port(corev1.ProtocolTCP, intstr.FromString("http"))), blockPeer("10.244.2.0/24"))))
	require.NoError(t, err)
	s.Policies = []*Policy{in, eg}
	rs := Plan(s)
	sets := map[string]string{}
	for _, set := range rs.Sets {
		if set.Type == PortSet {
			sets[set.Name] = strings.Join(set.elements(), ", ")
		}
	}
	assert.Equal(t, map[string]string{
		portSet(Ingress, "a/in", 0): "10.244.1.2 . tcp . 8080",
		portSet(Egress, "b/eg", 0):  "10.244.1.2 . tcp . 8080, 10.244.1.5 . tcp . 8081, 10.244.2.2 . tcp . 9999",
		portSet(Egress, "b/eg", 1):  "10.244.3.3 . udp . 8082",
		portSet(Egress, "b/eg", 2):  "10.244.2.2 . tcp . 9999",
	}, sets)
}
