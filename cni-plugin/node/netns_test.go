package node

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/coreos/go-iptables/iptables"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/weftmesh/weft/cni-plugin/internal/nstest"
)

// testNodeNS is a node netns whose "uplink" n0 (172.18.0.2/24, MTU 1450)
// makes peers at 172.18.0.x reachable; a foreign static route must survive
// everything the agent does.
func testNodeNS(t *testing.T) *nstest.NS {
	t.Helper()
	n := nstest.NewT(t, "node")
	_, err := n.Run("sh", "-c", "ip link add n0 mtu 1450 type veth peer name n1 && ip addr add 172.18.0.2/24 dev n0 && "+
		"ip link set n0 up && ip link set n1 up && ip route add 10.99.0.0/16 via 172.18.0.9 proto static")
	require.NoError(t, err)
	return n
}

func testConfig(t *testing.T) Config {
	t.Helper()
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "weft-bridge"), []byte("plugin"), 0o755))
	return Config{
		NodeName: "n1", CNIBinDir: t.TempDir(), CNIConfDir: t.TempDir(), SourceBinDir: src,
		IPAMDataDir: t.TempDir(), CNIVersion: "1.0.0", ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"),
		Bridge: "weft0", ResyncPeriod: time.Minute,
		ChainedPlugins: []json.RawMessage{json.RawMessage(`{"type":"weft-redirect"}`)},
	}
}

func peer(name, cidr, ip string) Peer {
	return Peer{Name: name, PodCIDR: netip.MustParsePrefix(cidr), InternalIP: netip.MustParseAddr(ip)}
}

// snapshot is the node state the agent owns, as the tools print it.
func snapshot(t *testing.T, n *nstest.NS) string {
	t.Helper()
	out, err := n.Run("sh", "-c", "ip route show; iptables -t nat -S; cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/bridge/bridge-nf-call-iptables")
	require.NoError(t, err)
	return out
}

func TestSyncNetworkIsIdempotent(t *testing.T) {
	n := testNodeNS(t)
	cfg := testConfig(t)
	metrics, err := NewMetrics(noop.NewMeterProvider())
	require.NoError(t, err)
	ipt, err := iptables.New()
	require.NoError(t, err)
	a := &Agent{cfg: cfg, metrics: metrics, ipt: ipt}
	me := peer("n1", "10.244.1.0/24", "172.18.0.2")
	peers := []Peer{me, peer("n2", "10.244.2.0/24", "172.18.0.3"), peer("n3", "10.244.3.0/24", "172.18.0.4")}
	sync := func(peers []Peer) {
		t.Helper()
		require.NoError(t, n.Do(func(ns.NetNS) error {
			steps := &stepErrors{ctx: context.Background(), metrics: metrics}
			a.syncNetwork(context.Background(), steps, me, peers)
			return steps.err()
		}))
	}

	sync(peers)
	first := snapshot(t, n)
	assert.Contains(t, first, "10.244.2.0/24 via 172.18.0.3 dev n0 proto 87")
	assert.Contains(t, first, "10.244.3.0/24 via 172.18.0.4 dev n0 proto 87")
	assert.NotContains(t, first, "10.244.1.0/24 via", "no route to our own podCIDR via a peer")
	assert.Contains(t, first, `-A WEFT-CNI-MASQ -s 10.244.0.0/16 ! -d 10.244.0.0/16 -m comment --comment "weft: pods to outside 10.244.0.0/16" -j MASQUERADE`)
	assert.Contains(t, first, "1\n1\n", "forwarding sysctls")
	conflistPath := filepath.Join(cfg.CNIConfDir, ConflistName)
	conf, err := os.ReadFile(conflistPath)
	require.NoError(t, err)
	assert.Contains(t, string(conf), `"mtu": 1450`, "MTU detected from the InternalIP's interface")
	assert.Contains(t, string(conf), `"type": "weft-redirect"`)
	before, err := os.Stat(conflistPath)
	require.NoError(t, err)

	sync(peers) // again: nothing may change
	assert.Equal(t, first, snapshot(t, n))
	after, err := os.Stat(conflistPath)
	require.NoError(t, err)
	assert.Equal(t, before.ModTime(), after.ModTime(), "conflist not rewritten")
	require.NoError(t, n.Do(func(ns.NetNS) error {
		cur, err := ownRoutes()
		require.NoError(t, err)
		add, del := PlanRoutes(DesiredRoutes("n1", peers), cur)
		assert.Empty(t, add)
		assert.Empty(t, del)
		st, err := readRuleState(ipt)
		require.NoError(t, err)
		assert.True(t, PlanMasquerade(cfg.ClusterCIDR, st).Empty(), "rules already match")
		return nil
	}))

	// n3 deleted, n2 moved: routes follow, the foreign route stays.
	sync([]Peer{me, peer("n2", "10.244.2.0/24", "172.18.0.5")})
	moved := snapshot(t, n)
	assert.Contains(t, moved, "10.244.2.0/24 via 172.18.0.5 dev n0 proto 87")
	assert.NotContains(t, moved, "10.244.3.0/24")
	assert.Contains(t, moved, "10.99.0.0/16 via 172.18.0.9 dev n0 proto static")

	_, err = InstallBinaries(cfg.SourceBinDir, cfg.CNIBinDir)
	require.NoError(t, err)
	for range 2 { // cleanup is idempotent too
		require.NoError(t, n.Do(func(ns.NetNS) error { return Cleanup(context.Background(), cfg) }))
		clean := snapshot(t, n)
		assert.NotContains(t, clean, "proto 87")
		assert.NotContains(t, clean, "WEFT")
		assert.Contains(t, clean, "10.99.0.0/16 via 172.18.0.9 dev n0 proto static")
		assert.NoFileExists(t, conflistPath)
		assert.NoFileExists(t, filepath.Join(cfg.CNIBinDir, "weft-bridge"))
	}
}
