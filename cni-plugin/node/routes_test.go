package node

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testNode(name, podCIDR, ip string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if podCIDR != "" {
		n.Spec.PodCIDR, n.Spec.PodCIDRs = podCIDR, []string{podCIDR}
	}
	if ip != "" {
		n.Status.Addresses = []corev1.NodeAddress{
			{Type: corev1.NodeHostName, Address: name},
			{Type: corev1.NodeInternalIP, Address: ip},
		}
	}
	return n
}

func route(dst, via string) Route {
	return Route{Dst: netip.MustParsePrefix(dst), Via: netip.MustParseAddr(via)}
}

func TestPeerFromNode(t *testing.T) {
	p, ok := PeerFromNode(testNode("n1", "10.244.1.0/24", "172.18.0.2"))
	assert.True(t, ok)
	assert.Equal(t, Peer{Name: "n1", PodCIDR: netip.MustParsePrefix("10.244.1.0/24"), InternalIP: netip.MustParseAddr("172.18.0.2")}, p)

	_, ok = PeerFromNode(testNode("n2", "", "172.18.0.3"))
	assert.False(t, ok, "no podCIDR yet")

	dual := testNode("n3", "", "172.18.0.4")
	dual.Spec.PodCIDRs = []string{"fd00:10:244:3::/64", "10.244.3.0/24"}
	dual.Status.Addresses = append([]corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "fc00::4"}}, dual.Status.Addresses...)
	p, ok = PeerFromNode(dual)
	assert.True(t, ok)
	assert.Equal(t, "10.244.3.0/24", p.PodCIDR.String(), "the IPv4 podCIDR")
	assert.Equal(t, "172.18.0.4", p.InternalIP.String(), "the IPv4 InternalIP")
}

func TestDesiredRoutes(t *testing.T) {
	peers := []Peer{
		{Name: "n3", PodCIDR: netip.MustParsePrefix("10.244.3.0/24"), InternalIP: netip.MustParseAddr("172.18.0.4")},
		{Name: "n1", PodCIDR: netip.MustParsePrefix("10.244.1.0/24"), InternalIP: netip.MustParseAddr("172.18.0.2")},
		{Name: "n2", PodCIDR: netip.MustParsePrefix("10.244.2.0/24"), InternalIP: netip.MustParseAddr("172.18.0.3")},
		{Name: "n4", PodCIDR: netip.MustParsePrefix("10.244.4.0/24")},                                                // no InternalIP
		{Name: "n0", PodCIDR: netip.MustParsePrefix("10.244.3.0/24"), InternalIP: netip.MustParseAddr("172.18.0.9")}, // duplicate CIDR
	}
	assert.Equal(t, []Route{
		route("10.244.2.0/24", "172.18.0.3"),
		route("10.244.3.0/24", "172.18.0.9"),
	}, DesiredRoutes("n1", peers))
}

func TestPlanRoutes(t *testing.T) {
	tests := map[string]struct {
		desired, current, add, del []Route
	}{
		"fresh node": {
			desired: []Route{route("10.244.2.0/24", "172.18.0.3"), route("10.244.3.0/24", "172.18.0.4")},
			add:     []Route{route("10.244.2.0/24", "172.18.0.3"), route("10.244.3.0/24", "172.18.0.4")},
		},
		"in sync": {
			desired: []Route{route("10.244.2.0/24", "172.18.0.3")},
			current: []Route{route("10.244.2.0/24", "172.18.0.3")},
		},
		"node deleted": {
			desired: []Route{route("10.244.2.0/24", "172.18.0.3")},
			current: []Route{route("10.244.3.0/24", "172.18.0.4"), route("10.244.2.0/24", "172.18.0.3")},
			del:     []Route{route("10.244.3.0/24", "172.18.0.4")},
		},
		"node moved": {
			desired: []Route{route("10.244.2.0/24", "172.18.0.7")},
			current: []Route{route("10.244.2.0/24", "172.18.0.3")},
			add:     []Route{route("10.244.2.0/24", "172.18.0.7")},
		},
		"last peer gone": {
			current: []Route{route("10.244.2.0/24", "172.18.0.3")},
			del:     []Route{route("10.244.2.0/24", "172.18.0.3")},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			add, del := PlanRoutes(tt.desired, tt.current)
			assert.Equal(t, tt.add, add, "add")
			assert.Equal(t, tt.del, del, "del")
		})
	}
}

func TestRoutingChanged(t *testing.T) {
	a := testNode("n1", "10.244.1.0/24", "172.18.0.2")
	b := a.DeepCopy()
	b.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	assert.False(t, routingChanged(a, b), "heartbeat")
	c := a.DeepCopy()
	c.Status.Addresses[1].Address = "172.18.0.9"
	assert.True(t, routingChanged(a, c), "address changed")
}
