package bridge

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/weftmesh/weft/cni-plugin/internal/nstest"
)

var testBridge = Config{Name: "weft0", Address: netip.MustParsePrefix("10.244.1.1/24"), MTU: 1400}

func TestHostVethName(t *testing.T) {
	a := HostVethName("abc123", "eth0")
	assert.Len(t, a, 15)
	assert.True(t, strings.HasPrefix(a, "weft"))
	assert.Equal(t, a, HostVethName("abc123", "eth0"))
	assert.NotEqual(t, a, HostVethName("abc123", "net1"))
	assert.NotEqual(t, a, HostVethName("abc124", "eth0"))
}

func TestMAC(t *testing.T) {
	assert.Equal(t, "0a:58:0a:f4:01:05", MAC(netip.MustParseAddr("10.244.1.5")).String())
}

// in runs fn with the calling goroutine's thread inside n.
func in(t *testing.T, n ns.NetNS, fn func()) {
	t.Helper()
	require.NoError(t, n.Do(func(ns.NetNS) error { fn(); return nil }))
}

func TestEnsureIsIdempotent(t *testing.T) {
	node := nstest.NewT(t, "node")
	in(t, node, func() {
		br1, err := Ensure(testBridge)
		require.NoError(t, err)
		br2, err := Ensure(testBridge)
		require.NoError(t, err)
		assert.Equal(t, br1.Index, br2.Index)

		link, err := netlink.LinkByName("weft0")
		require.NoError(t, err)
		assert.Equal(t, 1400, link.Attrs().MTU)
		assert.NotZero(t, link.Attrs().Flags&net.FlagUp)
		assert.Equal(t, "0a:58:0a:f4:01:01", link.Attrs().HardwareAddr.String())
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		require.NoError(t, err)
		require.Len(t, addrs, 1)
		assert.Equal(t, "10.244.1.1/24", addrs[0].IPNet.String())

		for _, path := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/bridge/bridge-nf-call-iptables"} {
			v, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, "1", strings.TrimSpace(string(v)), path)
		}

		// Drift is repaired: down, wrong MTU, address of an old podCIDR
		// instead of ours.
		require.NoError(t, netlink.LinkSetDown(link))
		require.NoError(t, netlink.LinkSetMTU(link, 1300))
		require.NoError(t, netlink.AddrDel(link, &addrs[0]))
		old, err := netlink.ParseAddr("10.244.9.1/24")
		require.NoError(t, err)
		require.NoError(t, netlink.AddrAdd(link, old))
		_, err = Ensure(testBridge)
		require.NoError(t, err)
		link, err = netlink.LinkByName("weft0")
		require.NoError(t, err)
		assert.Equal(t, 1400, link.Attrs().MTU)
		assert.NotZero(t, link.Attrs().Flags&net.FlagUp)
		addrs, err = netlink.AddrList(link, netlink.FAMILY_V4)
		require.NoError(t, err)
		require.Len(t, addrs, 1)
		assert.Equal(t, "10.244.1.1/24", addrs[0].IPNet.String())
	})
}

func TestEnsureRejectsNonBridge(t *testing.T) {
	node := nstest.NewT(t, "node")
	in(t, node, func() {
		veth := netlink.NewVeth(netlink.LinkAttrs{Name: "weft0"})
		veth.PeerName = "weft0peer"
		require.NoError(t, netlink.LinkAdd(veth))
		_, err := Ensure(testBridge)
		require.EqualError(t, err, "weft0 is a veth device, not a bridge")
	})
}

func attachment(br *netlink.Bridge, pod ns.NetNS) Attachment {
	return Attachment{
		BridgeIndex: br.Index, ContainerID: "c1", IfName: "eth0", Netns: pod,
		Address: netip.MustParsePrefix("10.244.1.5/24"), Gateway: netip.MustParseAddr("10.244.1.1"),
		MTU: 1400, Hairpin: true,
	}
}

func TestAttachCheckDetach(t *testing.T) {
	node, pod := nstest.NewT(t, "node"), nstest.NewT(t, "pod")
	in(t, node, func() {
		br, err := Ensure(testBridge)
		require.NoError(t, err)
		a := attachment(br, pod)
		host, cont, err := Attach(a)
		require.NoError(t, err)
		assert.Equal(t, HostVethName("c1", "eth0"), host.Name)
		assert.Equal(t, "eth0", cont.Name)
		assert.Equal(t, "0a:58:0a:f4:01:05", cont.HardwareAddr.String())
		assert.Equal(t, 1400, cont.MTU)

		hostLink, err := netlink.LinkByName(host.Name)
		require.NoError(t, err)
		assert.Equal(t, br.Index, hostLink.Attrs().MasterIndex)
		info, err := netlink.LinkGetProtinfo(hostLink)
		require.NoError(t, err)
		assert.True(t, info.Hairpin, "hairpin mode on the bridge port")
		require.NoError(t, Check(a))

		in(t, pod, func() {
			out, err := netlink.RouteList(nil, netlink.FAMILY_V4)
			require.NoError(t, err)
			var dsts []string
			for _, r := range out {
				dsts = append(dsts, r.String())
			}
			assert.Contains(t, strings.Join(dsts, "\n"), "Gw: 10.244.1.1")
		})

		require.NoError(t, Detach("c1", "eth0"))
		require.NoError(t, Detach("c1", "eth0"), "second detach is a no-op")
		_, err = netlink.LinkByName(host.Name)
		assert.True(t, isNotFound(err))
		require.ErrorContains(t, Check(a), "host veth "+host.Name)
		in(t, pod, func() {
			_, err := netlink.LinkByName("eth0")
			assert.True(t, isNotFound(err), "pod side went with the host side")
		})
	})
}

func TestAttachRollsBackWhenPodConfigFails(t *testing.T) {
	node, pod := nstest.NewT(t, "node"), nstest.NewT(t, "pod")
	// A default route already in the pod makes Attach fail after the veth
	// exists and has its address.
	_, err := pod.Run("sh", "-c", "ip link add d0 type veth peer name d1 && ip link set d0 up && ip link set d1 up && ip addr add 192.0.2.2/24 dev d0 && ip route add default via 192.0.2.1")
	require.NoError(t, err)
	in(t, node, func() {
		br, err := Ensure(testBridge)
		require.NoError(t, err)
		_, _, err = Attach(attachment(br, pod))
		require.ErrorContains(t, err, "add default route via 10.244.1.1: file exists")
		assertNoVeth(t, node, pod)
	})
}

func TestAttachFailsWhenPodHasInterface(t *testing.T) {
	node, pod := nstest.NewT(t, "node"), nstest.NewT(t, "pod")
	_, err := pod.Run("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0peer")
	require.NoError(t, err)
	in(t, node, func() {
		br, err := Ensure(testBridge)
		require.NoError(t, err)
		_, _, err = Attach(attachment(br, pod))
		require.EqualError(t, err, "interface eth0 already exists in "+pod.Path())
		links, err := netlink.LinkList()
		require.NoError(t, err)
		for _, l := range links {
			assert.False(t, l.Type() == "veth" && strings.HasPrefix(l.Attrs().Name, VethPrefix), "leftover %s", l.Attrs().Name)
		}
	})
}

func TestAttachRefusesDuplicate(t *testing.T) {
	node, pod := nstest.NewT(t, "node"), nstest.NewT(t, "pod")
	in(t, node, func() {
		br, err := Ensure(testBridge)
		require.NoError(t, err)
		a := attachment(br, pod)
		_, _, err = Attach(a)
		require.NoError(t, err)
		_, _, err = Attach(a)
		require.EqualError(t, err, "veth "+HostVethName("c1", "eth0")+" exists: c1/eth0 is already attached")
		require.NoError(t, Check(a), "the live attachment is untouched")
	})
}

func TestPruneVeths(t *testing.T) {
	node, pod1, pod2 := nstest.NewT(t, "node"), nstest.NewT(t, "pod1"), nstest.NewT(t, "pod2")
	in(t, node, func() {
		br, err := Ensure(testBridge)
		require.NoError(t, err)
		a1 := attachment(br, pod1)
		a2 := attachment(br, pod2)
		a2.ContainerID, a2.Address = "c2", netip.MustParsePrefix("10.244.1.6/24")
		for _, a := range []Attachment{a1, a2} {
			_, _, err := Attach(a)
			require.NoError(t, err)
		}
		deleted, err := PruneVeths("weft0", map[string]bool{HostVethName("c1", "eth0"): true})
		require.NoError(t, err)
		assert.Equal(t, []string{HostVethName("c2", "eth0")}, deleted)
		require.NoError(t, Check(a1))
		deleted, err = PruneVeths("missing0", nil)
		require.NoError(t, err)
		assert.Empty(t, deleted)
	})
}

// assertNoVeth checks the node has no Weft veth and the pod no eth0.
func assertNoVeth(t *testing.T, node, pod ns.NetNS) {
	t.Helper()
	in(t, node, func() {
		links, err := netlink.LinkList()
		require.NoError(t, err)
		for _, l := range links {
			assert.False(t, l.Type() == "veth" && strings.HasPrefix(l.Attrs().Name, VethPrefix), "leftover %s", l.Attrs().Name)
		}
	})
	in(t, pod, func() {
		_, err := netlink.LinkByName("eth0")
		assert.True(t, isNotFound(err), "eth0 left in pod")
	})
}
