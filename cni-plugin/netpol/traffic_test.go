package netpol

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/weftmesh/weft/cni-plugin/internal/nstest"
)

// topology is a node netns with the pod bridge weft0 (10.244.1.1/24) and
// br_netfilter on, local pods attached to it, and remote pods behind a
// routed link (10.244.2.0/24), as pods on another node appear.
type topology struct {
	node  *nstest.NS
	k     *NFT
	pods  map[string]*nstest.NS
	state State
	have  *Ruleset
}

func newTopology(t *testing.T) *topology {
	t.Helper()
	n := nstest.NewT(t, "node")
	_, err := n.Run("sh", "-ec", `ip link add weft0 type bridge
ip addr add 10.244.1.1/24 dev weft0
ip link set weft0 up
sysctl -qw net.ipv4.ip_forward=1
echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables`)
	require.NoError(t, err)
	return &topology{node: n, k: &NFT{NetNS: int(n.Fd())}, pods: map[string]*nstest.NS{},
		state: State{Node: node, Namespaces: []Namespace{namespace("ns", nil), namespace("other", map[string]string{"team": "x"})}}}
}

// addPod creates a pod netns with address ip: on the bridge when local,
// else behind the routed link. It serves TCP 8080 and 9090 and UDP 5353.
func (tp *topology) addPod(t *testing.T, namespace, name, ip string, local bool, labels map[string]string) {
	t.Helper()
	p := nstest.NewT(t, name)
	veth := "vp-" + name
	script := fmt.Sprintf("ip link add %s type veth peer name eth0 netns %s\nip link set %s up\n", veth, p.Name, veth)
	gw := "10.244.1.1"
	if local {
		script += fmt.Sprintf("ip link set %s master weft0\n", veth)
	} else {
		gw = "10.244.2.1"
		script += fmt.Sprintf("ip addr add %s/32 dev %s\nip route add %s/32 dev %s\n", gw, veth, ip, veth)
	}
	_, err := tp.node.Run("sh", "-ec", script)
	require.NoError(t, err)
	prefix := "/24"
	if !local {
		prefix = "/32"
	}
	_, err = p.Run("sh", "-ec", fmt.Sprintf("ip addr add %s%s dev eth0\nip link set eth0 up\nip route add %s dev eth0\nip route add default via %s",
		ip, prefix, gw, gw))
	require.NoError(t, err)
	serve(t, p, ip)
	tp.pods[name] = p
	nodeName := node
	if !local {
		nodeName = "n2"
	}
	tp.state.Pods = append(tp.state.Pods, pod(namespace, name, ip, nodeName, labels, named("http", TCP, 8080)))
}

// serve answers each TCP line and UDP datagram with "<ip>: <msg>".
func serve(t *testing.T, p *nstest.NS, ip string) {
	t.Helper()
	var closers []func() error
	require.NoError(t, p.Do(func(ns.NetNS) error {
		for _, port := range []int{8080, 9090} {
			ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", ip, port))
			if err != nil {
				return err
			}
			closers = append(closers, ln.Close)
			go acceptLoop(ln, ip)
		}
		pc, err := net.ListenPacket("udp", ip+":5353")
		if err != nil {
			return err
		}
		closers = append(closers, pc.Close)
		go func() {
			buf := make([]byte, 512)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				if _, err := pc.WriteTo([]byte(ip+": "+string(buf[:n])), from); err != nil {
					return
				}
			}
		}()
		return nil
	}))
	t.Cleanup(func() {
		for _, c := range closers {
			if err := c(); err != nil {
				t.Errorf("close listener: %v", err)
			}
		}
	})
}

func acceptLoop(ln net.Listener, ip string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if _, err := c.Write([]byte(ip + ": " + line)); err != nil {
					return
				}
			}
		}()
	}
}

// dial opens a TCP connection from a pod, or fails within 400 ms.
func (tp *topology) dial(t *testing.T, from, addr string) (net.Conn, error) {
	t.Helper()
	var c net.Conn
	err := tp.pods[from].Do(func(ns.NetNS) error {
		var err error
		c, err = net.DialTimeout("tcp", addr, 400*time.Millisecond)
		return err
	})
	return c, err
}

// tcp reports whether a TCP exchange from a pod to addr works.
func (tp *topology) tcp(t *testing.T, from, addr string) bool {
	t.Helper()
	c, err := tp.dial(t, from, addr)
	if err != nil {
		return false
	}
	defer c.Close()
	return exchange(c) == nil
}

func exchange(c net.Conn) error {
	if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasSuffix(line, ": ping\n") {
		return errors.New("unexpected answer " + line)
	}
	return nil
}

// udp reports whether a datagram from a pod to addr is answered.
func (tp *topology) udp(t *testing.T, from, addr string) bool {
	t.Helper()
	err := tp.pods[from].Do(func(ns.NetNS) error {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.SetDeadline(time.Now().Add(400 * time.Millisecond)); err != nil {
			return err
		}
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		_, err = c.Read(make([]byte, 64))
		return err
	})
	return err == nil
}

// apply plans the topology's state with these policies and syncs.
func (tp *topology) apply(t *testing.T, nps ...*networkingv1.NetworkPolicy) {
	t.Helper()
	tp.state.Policies = compileAll(t, nps...)
	want := Plan(tp.state)
	syncTo(t, tp.k, want, tp.have)
	tp.have = want
}

// TestTrafficEnforcement sends real packets through the node netns:
// bridged (pods of this node) and routed (a pod of another node).
func TestTrafficEnforcement(t *testing.T) {
	tp := newTopology(t)
	tp.addPod(t, "ns", "a", "10.244.1.2", true, map[string]string{"app": "a"})
	tp.addPod(t, "ns", "b", "10.244.1.3", true, map[string]string{"app": "b"})
	tp.addPod(t, "other", "c", "10.244.1.4", true, map[string]string{"app": "c"})
	tp.addPod(t, "other", "r", "10.244.2.2", false, map[string]string{"app": "r"})
	const b8080, b9090, bUDP = "10.244.1.3:8080", "10.244.1.3:9090", "10.244.1.3:5353"

	tp.apply(t)
	for _, from := range []string{"a", "c", "r"} {
		require.True(t, tp.tcp(t, from, b8080), "no policy: %s reaches b", from)
	}

	deny := policy("ns", "deny", sel("app", "b"), ingressOnly)
	tp.apply(t, deny)
	for _, from := range []string{"a", "c", "r"} {
		assert.False(t, tp.tcp(t, from, b8080), "default deny: %s must not reach b", from)
	}
	assert.True(t, tp.tcp(t, "b", "10.244.1.2:8080"), "b is not isolated for egress; replies come back")
	assert.True(t, tp.tcp(t, "a", "10.244.1.4:8080"), "pods no policy selects are not isolated")
	drops, err := tp.k.DropCounters()
	require.NoError(t, err)
	assert.Positive(t, drops[DropCounter(Ingress, "ns")], "drops are counted")

	tp.apply(t, deny, policy("ns", "from-a", sel("app", "b"), ingress(nil, podPeer(sel("app", "a")))))
	assert.True(t, tp.tcp(t, "a", b8080), "allowed by pod label")
	assert.False(t, tp.tcp(t, "c", b8080), "other namespace, same label rules do not apply")

	tp.apply(t, deny, policy("ns", "from-team-x", sel("app", "b"),
		ingress(ports(namedPort(corev1.ProtocolTCP, "http")), nsPeer(sel("team", "x"), nil))))
	assert.True(t, tp.tcp(t, "c", b8080), "allowed by namespace, on the named port")
	assert.True(t, tp.tcp(t, "r", b8080), "routed from another node")
	assert.False(t, tp.tcp(t, "c", b9090), "other ports stay closed")
	assert.False(t, tp.tcp(t, "a", b8080), "own namespace is not team=x")

	tp.apply(t, deny, policy("ns", "block", sel("app", "b"),
		ingress(ports(port(corev1.ProtocolTCP, intstr.FromInt32(9000), 9100), port(corev1.ProtocolUDP, intstr.FromInt32(5353))),
			blockPeer("10.244.0.0/16", "10.244.1.4/32"))))
	assert.True(t, tp.tcp(t, "a", b9090), "ipBlock with a port range")
	assert.True(t, tp.udp(t, "a", bUDP), "UDP")
	assert.False(t, tp.tcp(t, "c", b9090), "except")
	assert.False(t, tp.tcp(t, "a", b8080), "outside the range")

	egress := policy("ns", "a-egress", sel("app", "a"), egressOnly,
		egress(ports(port(corev1.ProtocolUDP, intstr.FromInt32(5353))), podPeer(sel("app", "b"))))
	tp.apply(t, egress)
	assert.True(t, tp.udp(t, "a", bUDP), "egress allowed to b on UDP 5353")
	assert.False(t, tp.tcp(t, "a", b8080), "egress denied otherwise")
	assert.False(t, tp.tcp(t, "a", "10.244.2.2:8080"), "egress to another node denied")
	assert.True(t, tp.tcp(t, "b", "10.244.1.2:8080"), "a is not isolated for ingress")
}

// TestEstablishedConnectionsSurvive: a connection allowed when it started
// keeps working through policy changes, including removing its allow
// rule; only new connections see the new policy.
func TestEstablishedConnectionsSurvive(t *testing.T) {
	tp := newTopology(t)
	tp.addPod(t, "ns", "a", "10.244.1.2", true, map[string]string{"app": "a"})
	tp.addPod(t, "ns", "b", "10.244.1.3", true, map[string]string{"app": "b"})
	deny := policy("ns", "deny", sel("app", "b"), ingressOnly)
	allow := policy("ns", "allow", sel("app", "b"), ingress(nil, podPeer(sel("app", "a"))))
	tp.apply(t, deny, allow)
	c, err := tp.dial(t, "a", "10.244.1.3:8080")
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, exchange(c))

	tp.apply(t, deny, allow, policy("ns", "unrelated", sel("app", "b"), ingress(nil, podPeer(sel("app", "z")))))
	require.NoError(t, exchange(c), "after an unrelated change")
	ex, err := tp.k.Existing()
	require.NoError(t, err)
	require.NoError(t, tp.k.Apply(FullChange(tp.have, ex)))
	require.NoError(t, exchange(c), "after a full resync")
	tp.apply(t, deny)
	require.NoError(t, exchange(c), "after its allow rule is gone")
	assert.False(t, tp.tcp(t, "a", "10.244.1.3:8080"), "a new connection is denied")
}
