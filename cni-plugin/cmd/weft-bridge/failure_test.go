package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftmesh/weft/cni-plugin/bridge"
	"github.com/weftmesh/weft/cni-plugin/internal/nstest"
)

func (h *harness) rawList(version, plugin string) *libcni.NetworkConfigList {
	h.t.Helper()
	list, err := libcni.ConfListFromBytes([]byte(fmt.Sprintf(`{"cniVersion":%q,"name":"weft","plugins":[%s]}`, version, plugin)))
	require.NoError(h.t, err)
	return list
}

func TestBrokenConfigLeavesNothing(t *testing.T) {
	h := newHarness(t)
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	tests := map[string]struct{ plugin, want string }{
		"bad podCIDR": {
			`{"type":"weft-bridge","bridge":"weft0","podCIDR":"10.244.1.0/33","dataDir":"` + h.dataDir + `"}`,
			`invalid weft-bridge config: podCIDR "10.244.1.0/33" is not a CIDR`,
		},
		"missing bridge": {
			`{"type":"weft-bridge","podCIDR":"10.244.1.0/24","dataDir":"` + h.dataDir + `"}`,
			`invalid weft-bridge config: "bridge" is required`,
		},
		"missing podCIDR": {
			`{"type":"weft-bridge","bridge":"weft0","dataDir":"` + h.dataDir + `"}`,
			`invalid weft-bridge config: "podCIDR" is required`,
		},
		"unwritable dataDir": {
			`{"type":"weft-bridge","bridge":"weft0","podCIDR":"10.244.1.0/24","dataDir":"` + file + `"}`,
			"create ipam dir: mkdir " + file + ": not a directory",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			pod := nstest.NewT(t, "pod")
			_, err := h.add(h.rawList("1.0.0", tt.plugin), rt("c1", pod))
			var cniErr *types.Error
			require.ErrorAs(t, err, &cniErr)
			assert.Equal(t, tt.want, cniErr.Msg)
			h.assertClean(pod)
		})
	}
}

func TestAddFailingMidwayRollsBack(t *testing.T) {
	h := newHarness(t)
	pod := nstest.NewT(t, "pod")
	// The pod already has a default route: ADD fails after it reserved an
	// address, created the veth and configured the address.
	_, err := pod.Run("sh", "-c", "ip link add d0 type veth peer name d1 && ip link set d0 up && ip link set d1 up && "+
		"ip addr add 192.0.2.2/24 dev d0 && ip route add default via 192.0.2.1")
	require.NoError(t, err)
	_, err = h.add(h.conflist("1.0.0", ""), rt("c1", pod))
	require.ErrorContains(t, err, "attach pod: add default route via 10.244.1.1: file exists")
	h.assertClean(pod)
}

func TestAddFailsWhenPodHasInterface(t *testing.T) {
	h := newHarness(t)
	pod := nstest.NewT(t, "pod")
	_, err := pod.Run("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0peer")
	require.NoError(t, err)
	_, err = h.add(h.conflist("1.0.0", ""), rt("c1", pod))
	require.ErrorContains(t, err, "attach pod: interface eth0 already exists in "+pod.Path())
	h.assertClean(nil)
}

func TestAddExhausted(t *testing.T) {
	h := newHarness(t)
	list := h.rawList("1.0.0", `{"type":"weft-bridge","bridge":"weft0","podCIDR":"10.0.0.0/30","dataDir":"`+h.dataDir+`"}`)
	pod1, pod2 := nstest.NewT(t, "pod1"), nstest.NewT(t, "pod2")
	res, err := h.add(list, rt("c1", pod1))
	require.NoError(t, err)
	assert.Equal(t, "10.0.0.2/30", res.IPs[0].Address.String())
	_, err = h.add(list, rt("c2", pod2))
	require.ErrorContains(t, err, "allocate address: range 10.0.0.0/30 exhausted")
	assert.Equal(t, []string{bridge.HostVethName("c1", "eth0")}, h.weftVeths())
	require.NoError(t, h.del(list, rt("c1", pod1)))
	h.assertClean(pod1)
}

func TestSpec110StatusAndGC(t *testing.T) {
	h := newHarness(t)
	list := h.conflist("1.1.0", "")
	pod1, pod2 := nstest.NewT(t, "pod1"), nstest.NewT(t, "pod2")
	status := func(list *libcni.NetworkConfigList) error {
		return h.inNode(func() error { return h.cni.GetStatusNetworkList(context.Background(), list) })
	}
	require.NoError(t, status(list))

	res, err := h.add(list, rt("c1", pod1))
	require.NoError(t, err)
	assert.Equal(t, 1500, res.Interfaces[2].Mtu, "1.1.0 results carry the MTU")
	_, err = h.add(list, rt("c2", pod2))
	require.NoError(t, err)

	// GC from a runtime with no cached attachments, so libcni sends only
	// GC (no synthesized DELs): c2 is not valid any more.
	gcClient := libcni.NewCNIConfigWithCacheDir([]string{binDir}, t.TempDir(), nil)
	require.NoError(t, h.inNode(func() error {
		return gcClient.GCNetworkList(context.Background(), list, &libcni.GCArgs{
			ValidAttachments: []types.GCAttachment{{ContainerID: "c1", IfName: "eth0"}},
		})
	}))
	assert.Equal(t, []string{bridge.HostVethName("c1", "eth0")}, h.weftVeths())
	allocs := h.allocations()
	require.Len(t, allocs, 1)
	for _, a := range allocs {
		assert.Equal(t, "c1", a.ContainerID)
	}
	require.NoError(t, h.inNode(func() error { return h.cni.CheckNetworkList(context.Background(), list, rt("c1", pod1)) }))

	full := h.rawList("1.1.0", `{"type":"weft-bridge","bridge":"weft0","podCIDR":"10.0.0.0/30","dataDir":"`+t.TempDir()+`"}`)
	_, err = h.add(full, rt("c3", pod2))
	require.NoError(t, err)
	var cniErr *types.Error
	require.ErrorAs(t, status(full), &cniErr)
	assert.Equal(t, types.ErrPluginNotAvailable, cniErr.Code)
	assert.Equal(t, "no free pod address; range 10.0.0.0/30 exhausted", cniErr.Error())

	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	broken := h.rawList("1.1.0", `{"type":"weft-bridge","bridge":"weft0","podCIDR":"10.244.1.0/24","dataDir":"`+file+`"}`)
	require.ErrorAs(t, status(broken), &cniErr)
	assert.Equal(t, types.ErrPluginNotAvailable, cniErr.Code)
	assert.Equal(t, "ipam data dir unusable", cniErr.Msg)
}

func TestDuplicateAddKeepsFirstAttachment(t *testing.T) {
	h := newHarness(t)
	pod := nstest.NewT(t, "pod")
	list := h.conflist("1.0.0", "")
	_, err := h.add(list, rt("c1", pod))
	require.NoError(t, err)
	// Straight to the plugin: libcni would refuse a second ADD itself.
	conf, err := libcni.InjectConf(list.Plugins[0], map[string]any{"name": "weft", "cniVersion": "1.0.0"})
	require.NoError(t, err)
	err = h.inNode(func() error {
		_, err := h.cni.AddNetwork(context.Background(), conf, rt("c1", pod))
		return err
	})
	require.ErrorContains(t, err, "c1/eth0 is already attached")
	require.NoError(t, h.inNode(func() error { return h.cni.CheckNetworkList(context.Background(), list, rt("c1", pod)) }),
		"the failed duplicate rolled back nothing of the first ADD")
	assert.Len(t, h.allocations(), 1)
	require.NoError(t, h.del(list, rt("c1", pod)))
	h.assertClean(pod)
}
