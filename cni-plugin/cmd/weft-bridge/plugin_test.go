package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/weftmesh/weft/cni-plugin/bridge"
	"github.com/weftmesh/weft/cni-plugin/internal/nstest"
	"github.com/weftmesh/weft/cni-plugin/ipam"
)

// binDir holds the weft-bridge binary TestMain builds: the tests run the
// plugin the way containerd does, through libcni with CNI_* variables.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "weft-bridge-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "weft-bridge"), ".").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build weft-bridge: %v\n%s", err, out)
			return 1
		}
		binDir = dir
		return m.Run()
	}())
}

// harness is one test node: its netns, IPAM dir and a libcni client whose
// result cache lives in a temporary directory.
type harness struct {
	t       *testing.T
	node    *nstest.NS
	dataDir string
	cni     *libcni.CNIConfig
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return &harness{
		t: t, node: nstest.NewT(t, "node"), dataDir: t.TempDir(),
		cni: libcni.NewCNIConfigWithCacheDir([]string{binDir}, t.TempDir(), nil),
	}
}

// conflist is the list weft-cni-node writes, with extra fields merged into
// the weft-bridge entry.
func (h *harness) conflist(version, extra string) *libcni.NetworkConfigList {
	h.t.Helper()
	text := fmt.Sprintf(`{"cniVersion":%q,"name":"weft","plugins":[{"type":"weft-bridge","bridge":"weft0",
		"podCIDR":"10.244.1.0/24","mtu":1500,"hairpinMode":true,"dataDir":%q%s}]}`, version, h.dataDir, extra)
	list, err := libcni.ConfListFromBytes([]byte(text))
	require.NoError(h.t, err)
	return list
}

func rt(id string, pod *nstest.NS) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: id, NetNS: pod.Path(), IfName: "eth0"}
}

// inNode runs fn on a thread inside the node netns, so the plugin process
// libcni starts from it lives there too.
func (h *harness) inNode(fn func() error) error {
	return h.node.Do(func(ns.NetNS) error { return fn() })
}

func (h *harness) add(list *libcni.NetworkConfigList, rc *libcni.RuntimeConf) (*current.Result, error) {
	var res types.Result
	err := h.inNode(func() (err error) { res, err = h.cni.AddNetworkList(context.Background(), list, rc); return err })
	if err != nil {
		return nil, err
	}
	return current.NewResultFromResult(res)
}

func (h *harness) del(list *libcni.NetworkConfigList, rc *libcni.RuntimeConf) error {
	return h.inNode(func() error { return h.cni.DelNetworkList(context.Background(), list, rc) })
}

func (h *harness) allocations() map[netip.Addr]ipam.Attachment {
	h.t.Helper()
	store, err := ipam.Open(h.dataDir, "weft")
	require.NoError(h.t, err)
	st, err := store.View()
	require.NoError(h.t, err)
	return st.Allocations
}

// weftVeths lists the pod veths in the node netns.
func (h *harness) weftVeths() []string {
	h.t.Helper()
	var names []string
	require.NoError(h.t, h.inNode(func() error {
		links, err := netlink.LinkList()
		for _, l := range links {
			if l.Type() == "veth" && strings.HasPrefix(l.Attrs().Name, bridge.VethPrefix) {
				names = append(names, l.Attrs().Name)
			}
		}
		return err
	}))
	return names
}

// assertClean checks that nothing of a failed or deleted attachment is left.
func (h *harness) assertClean(pod *nstest.NS) {
	h.t.Helper()
	assert.Empty(h.t, h.weftVeths(), "veths left in node")
	assert.Empty(h.t, h.allocations(), "addresses left allocated")
	if pod != nil {
		out, err := pod.Run("ip", "-o", "link", "show")
		require.NoError(h.t, err)
		assert.NotContains(h.t, out, "eth0", "interface left in pod")
	}
}

func TestAddCheckDel(t *testing.T) {
	h := newHarness(t)
	pod := nstest.NewT(t, "pod")
	list := h.conflist("1.0.0", "")

	res, err := h.add(list, rt("c1", pod))
	require.NoError(t, err)
	require.Len(t, res.Interfaces, 3)
	assert.Equal(t, "weft0", res.Interfaces[0].Name)
	assert.Equal(t, bridge.HostVethName("c1", "eth0"), res.Interfaces[1].Name)
	assert.Equal(t, current.Interface{Name: "eth0", Mac: "0a:58:0a:f4:01:02", Sandbox: pod.Path()}, *res.Interfaces[2])
	require.Len(t, res.IPs, 1)
	assert.Equal(t, "10.244.1.2/24", res.IPs[0].Address.String())
	assert.Equal(t, "10.244.1.1", res.IPs[0].Gateway.String())
	assert.Equal(t, 2, *res.IPs[0].Interface)
	require.Len(t, res.Routes, 1)
	assert.Equal(t, "0.0.0.0/0", res.Routes[0].Dst.String())
	assert.Equal(t, "10.244.1.1", res.Routes[0].GW.String())

	nodeOut, err := h.node.Run("sh", "-c", "ip -o addr show dev weft0; ip -o link show master weft0; cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/bridge/bridge-nf-call-iptables")
	require.NoError(t, err)
	assert.Contains(t, nodeOut, "inet 10.244.1.1/24")
	assert.Contains(t, nodeOut, bridge.HostVethName("c1", "eth0")+"@")
	assert.True(t, strings.HasSuffix(nodeOut, "1\n1\n"), "sysctls set in the node netns: %s", nodeOut)
	podOut, err := pod.Run("sh", "-c", "ip -o addr show dev eth0; ip route")
	require.NoError(t, err)
	assert.Contains(t, podOut, "inet 10.244.1.2/24")
	assert.Contains(t, podOut, "default via 10.244.1.1 dev eth0")
	assertReachesGateway(t, h.node, pod)
	assert.Len(t, h.allocations(), 1)

	require.NoError(t, h.inNode(func() error { return h.cni.CheckNetworkList(context.Background(), list, rt("c1", pod)) }))

	require.NoError(t, h.del(list, rt("c1", pod)))
	h.assertClean(pod)
	require.NoError(t, h.del(list, rt("c1", pod)), "second DEL succeeds")
	require.NoError(t, h.del(list, &libcni.RuntimeConf{ContainerID: "c1", IfName: "eth0"}), "DEL without netns succeeds")
}

// assertReachesGateway connects from the pod to a listener on the node's
// bridge address: real traffic over the veth and bridge, all inside the
// test's namespaces.
func assertReachesGateway(t *testing.T, node, pod ns.NetNS) {
	t.Helper()
	var ln net.Listener
	require.NoError(t, node.Do(func(ns.NetNS) (err error) { ln, err = net.Listen("tcp", "10.244.1.1:0"); return err }))
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	require.NoError(t, pod.Do(func(ns.NetNS) error {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}))
}

func TestCheckFailsWhenPodBroken(t *testing.T) {
	h := newHarness(t)
	pod := nstest.NewT(t, "pod")
	list := h.conflist("1.0.0", "")
	_, err := h.add(list, rt("c1", pod))
	require.NoError(t, err)
	_, err = pod.Run("ip", "route", "del", "default")
	require.NoError(t, err)
	err = h.inNode(func() error { return h.cni.CheckNetworkList(context.Background(), list, rt("c1", pod)) })
	require.ErrorContains(t, err, "pod has no default route via 10.244.1.1 on eth0")
	require.NoError(t, h.del(list, rt("c1", pod)))
	h.assertClean(pod)
}

func TestDelAfterNetnsGone(t *testing.T) {
	h := newHarness(t)
	pod, err := nstest.New("gone")
	require.NoError(t, err)
	list := h.conflist("1.0.0", "")
	_, err = h.add(list, rt("c1", pod))
	require.NoError(t, err)
	require.NoError(t, pod.Delete())
	require.NoError(t, h.del(list, rt("c1", pod)))
	h.assertClean(nil)
}

func TestParallelAdds(t *testing.T) {
	h := newHarness(t)
	list := h.conflist("1.0.0", "")
	const pods = 8
	var netns []*nstest.NS
	for range pods {
		netns = append(netns, nstest.NewT(t, "pod"))
	}
	// The first ADDs race to create the bridge, too.
	errs := make(chan error, pods)
	for i, pod := range netns {
		go func() { _, err := h.add(list, rt(fmt.Sprint("c", i), pod)); errs <- err }()
	}
	for range pods {
		require.NoError(t, <-errs)
	}
	assert.Len(t, h.allocations(), pods)
	assert.Len(t, h.weftVeths(), pods)
	for i, pod := range netns {
		go func() { errs <- h.del(list, rt(fmt.Sprint("c", i), pod)) }()
	}
	for range pods {
		require.NoError(t, <-errs)
	}
	h.assertClean(nil)
}
