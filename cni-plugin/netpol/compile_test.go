package netpol

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestCompileDefaultsPolicyTypes(t *testing.T) {
	p, err := Compile(policy("a", "ingress-only", sel()))
	require.NoError(t, err)
	assert.Equal(t, [2]bool{true, false}, p.Isolates, "no policyTypes, no egress rules: Ingress")

	p, err = Compile(policy("a", "both", sel(), egress(ports(tcp(80)))))
	require.NoError(t, err)
	assert.Equal(t, [2]bool{true, true}, p.Isolates, "no policyTypes with egress rules: Ingress and Egress")
	assert.Len(t, p.Rules[Egress], 1)

	p, err = Compile(policy("a", "egress-type", sel(), egressOnly, ingress(nil, podPeer(sel()))))
	require.NoError(t, err)
	assert.Equal(t, [2]bool{false, true}, p.Isolates)
	assert.Empty(t, p.Rules[Ingress], "rules of a direction not in policyTypes have no effect")
}

func TestCompilePorts(t *testing.T) {
	p, err := Compile(policy("a", "p", sel(), ingress(ports(
		networkingPort(nil, nil, nil), port(corev1.ProtocolUDP, intstr.FromInt32(53)),
		port(corev1.ProtocolTCP, intstr.FromInt32(8000), 8100), namedPort(corev1.ProtocolSCTP, "diameter")))))
	require.NoError(t, err)
	require.Empty(t, p.Problems)
	assert.Equal(t, []Port{
		{Protocol: TCP}, {Protocol: UDP, Port: 53, EndPort: 53},
		{Protocol: TCP, Port: 8000, EndPort: 8100}, {Protocol: SCTP, Name: "diameter"},
	}, p.Rules[Ingress][0].Ports)
}

// TestCompileBadInput: what the API server would reject (or older ones
// let through) drops its rule, which then allows nothing; the policy still
// isolates its pods and its other rules stay.
func TestCompileBadInput(t *testing.T) {
	icmp := corev1.Protocol("ICMP")
	five := int32(5)
	p, err := Compile(policy("a", "bad", sel("app", "x"),
		ingress(ports(tcp(80)), blockPeer("010.0.0.0/8")),
		ingress(ports(networkingPort(&icmp, nil, nil))),
		ingress(ports(networkingPort(nil, ptr(intstr.FromInt32(10)), &five))),
		ingress(nil, blockPeer("10.0.0.0/16", "10.1.0.0/24")),
		ingress(ports(tcp(443)), podPeer(sel("app", "y"))),
		ingress(nil, blockPeer("2001:db8::/32")),
	))
	require.NoError(t, err)
	assert.Equal(t, [2]bool{true, false}, p.Isolates)
	require.Len(t, p.Rules[Ingress], 1)
	assert.Equal(t, 4, p.Rules[Ingress][0].Index, "only the good rule is kept (the IPv6-only rule matches nothing here)")
	require.Len(t, p.Problems, 4)
	assert.Contains(t, p.Problems[0].Error(), `ingress rule 0 skipped (allows nothing): peer 0: malformed CIDR "010.0.0.0/8"`)
	assert.Contains(t, p.Problems[1].Error(), `unsupported protocol "ICMP"`)
	assert.Contains(t, p.Problems[2].Error(), "endPort 5 must be in 10-65535")
	assert.Contains(t, p.Problems[3].Error(), `except "10.1.0.0/24" is not inside cidr "10.0.0.0/16"`)

	_, err = Compile(policy("a", "bad-selector", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "app", Operator: "Sometimes"}}}))
	assert.ErrorContains(t, err, "podSelector", "a policy whose targets are unknown is unusable")
}

func networkingPort(proto *corev1.Protocol, p *intstr.IntOrString, end *int32) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: proto, Port: p, EndPort: end}
}

func ptr[T any](v T) *T { return &v }
