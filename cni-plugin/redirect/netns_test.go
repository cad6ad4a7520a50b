package redirect

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/coreos/go-iptables/iptables"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/weftmesh/weft/cni-plugin/internal/nstest"
)

// natSave is `iptables-save -t nat` of n without its "#" lines.
func natSave(t *testing.T, n *nstest.NS) string {
	t.Helper()
	out, err := n.Run("iptables-save", "-t", "nat")
	require.NoError(t, err)
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

func applyIn(n *nstest.NS, p Plan) error {
	return n.Do(func(ns.NetNS) error {
		ipt, err := iptables.New()
		if err != nil {
			return err
		}
		return Apply(ipt, p)
	})
}

// TestApplyInNetns applies every golden plan to a fresh namespace, twice:
// the kernel then holds exactly the golden text, so the golden files are
// real iptables-save output and re-applying changes nothing.
func TestApplyInNetns(t *testing.T) {
	for name, st := range planCases() {
		t.Run(name, func(t *testing.T) {
			pod := nstest.NewT(t, "pod")
			p, err := PlanFor(st)
			require.NoError(t, err)
			require.NoError(t, applyIn(pod, p))
			want, err := os.ReadFile(filepath.Join("testdata", name+".rules"))
			require.NoError(t, err)
			assert.Equal(t, string(want), natSave(t, pod))
			require.NoError(t, applyIn(pod, p))
			assert.Equal(t, string(want), natSave(t, pod), "applied twice = same result")

			require.NoError(t, pod.Do(func(ns.NetNS) error {
				ipt, err := iptables.New()
				require.NoError(t, err)
				missing, err := Missing(ipt)
				require.NoError(t, err)
				assert.Empty(t, missing)
				return Remove(ipt)
			}))
			assert.NotContains(t, natSave(t, pod), "WEFT")
		})
	}
}

// TestTrafficIsRedirected applies the rules to a pod namespace wired to a
// peer namespace (192.0.2.0/24, TEST-NET-1; nothing is routed beyond the
// two namespaces) and checks where real connections land. Every listener
// answers with its name and the connection's original destination
// (SO_ORIGINAL_DST), so a redirect is told apart from a direct hit.
func TestTrafficIsRedirected(t *testing.T) {
	pod, peer := nstest.NewT(t, "pod"), nstest.NewT(t, "peer")
	_, err := pod.Run("sh", "-c", "ip link add eth0 type veth peer name p0 netns "+peer.Name+
		" && ip addr add 192.0.2.2/24 dev eth0 && ip link set eth0 up && ip route add default via 192.0.2.1")
	require.NoError(t, err)
	_, err = peer.Run("sh", "-c", "ip addr add 192.0.2.1/24 dev p0 && ip addr add 192.0.2.3/24 dev p0 && ip link set p0 up")
	require.NoError(t, err)

	st := defaultStatus()
	st.ExcludeInboundPorts = []uint16{9000, 15020, 15021, 15090}
	st.ExcludeOutboundPorts = []uint16{5432}
	st.ExcludeOutboundCIDRs = []netip.Prefix{netip.MustParsePrefix("192.0.2.3/32")}
	p, err := PlanFor(st)
	require.NoError(t, err)
	require.NoError(t, applyIn(pod, p))

	for name, addr := range map[string]string{
		"outbound": ":15001", "inbound": ":15006", "health": ":15021", "excluded-in": ":9000", "app": ":8080",
	} {
		serve(t, pod, name, addr)
	}
	for name, addr := range map[string]string{
		"peer": "192.0.2.1:80", "peer-db": "192.0.2.1:5432", "peer-excluded": "192.0.2.3:80",
	} {
		serve(t, peer, name, addr)
	}

	const app, proxy = 1000, 1337
	tests := []struct {
		name string
		dial func() (string, error)
		want string
	}{
		{"app uid to a remote address", asUser(pod, app, app, "198.51.100.7:80"), "outbound 198.51.100.7:80"},
		{"app (root) to a remote address", dial(pod, "", "198.51.100.7:80"), "outbound 198.51.100.7:80"},
		{"app to the peer", dial(pod, "", "192.0.2.1:80"), "outbound 192.0.2.1:80"},
		{"sidecar uid bypasses", asUser(pod, proxy, proxy, "192.0.2.1:80"), "peer 192.0.2.1:80"},
		{"sidecar gid bypasses", asUser(pod, app, proxy, "192.0.2.1:80"), "peer 192.0.2.1:80"},
		{"excluded outbound port", dial(pod, "", "192.0.2.1:5432"), "peer-db 192.0.2.1:5432"},
		{"excluded outbound range", dial(pod, "", "192.0.2.3:80"), "peer-excluded 192.0.2.3:80"},
		{"app to localhost", asUser(pod, app, app, "127.0.0.1:8080"), "app 127.0.0.1:8080"},
		{"app to its own pod IP", asUser(pod, app, app, "192.0.2.2:8080"), "app 192.0.2.2:8080"},
		{"sidecar to its own pod IP", asUser(pod, proxy, proxy, "192.0.2.2:8080"), "inbound 192.0.2.2:8080"},
		{"sidecar to localhost", asUser(pod, proxy, proxy, "127.0.0.1:8080"), "app 127.0.0.1:8080"},
		{"inbound passthrough from 127.0.0.6", dial(pod, "127.0.0.6", "192.0.2.2:8080"), "app 192.0.2.2:8080"},
		{"peer to the pod's port", dial(peer, "", "192.0.2.2:8080"), "inbound 192.0.2.2:8080"},
		{"peer to any pod port", dial(peer, "", "192.0.2.2:7777"), "inbound 192.0.2.2:7777"},
		{"peer to health port", dial(peer, "", "192.0.2.2:15021"), "health 192.0.2.2:15021"},
		{"peer to excluded inbound port", dial(peer, "", "192.0.2.2:9000"), "excluded-in 192.0.2.2:9000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.dial()
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// serve answers every connection on addr in n with "<name> <original dst>".
func serve(t *testing.T, n *nstest.NS, name, addr string) {
	t.Helper()
	var ln net.Listener
	require.NoError(t, n.Do(func(ns.NetNS) (err error) { ln, err = net.Listen("tcp4", addr); return err }))
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s %s\n", name, originalDst(c))
			c.Close()
		}
	}()
}

// originalDst is the destination the client dialled, before REDIRECT. A
// namespace without nat rules tracks no connections; there it is the
// address the listener was reached at.
func originalDst(c net.Conn) string {
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return "?"
	}
	addr := c.LocalAddr().String()
	if cerr := raw.Control(func(fd uintptr) {
		m, err := unix.GetsockoptIPv6Mreq(int(fd), unix.SOL_IP, unix.SO_ORIGINAL_DST)
		if err == nil {
			ip := netip.AddrFrom4([4]byte(m.Multiaddr[4:8]))
			addr = netip.AddrPortFrom(ip, binary.BigEndian.Uint16(m.Multiaddr[2:4])).String()
		}
	}); cerr != nil {
		return "?"
	}
	return addr
}

// dial connects from this process (root: an app UID for the rules) in n,
// optionally from a local address, and returns the listener's line.
func dial(n *nstest.NS, local, addr string) func() (string, error) {
	return func() (line string, err error) {
		d := net.Dialer{Timeout: 3 * time.Second}
		if local != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
		}
		err = n.Do(func(ns.NetNS) error {
			c, err := d.Dial("tcp4", addr)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.SetDeadline(time.Now().Add(3 * time.Second)); err != nil {
				return err
			}
			line, err = bufio.NewReader(c).ReadString('\n')
			return err
		})
		return strings.TrimSpace(line), err
	}
}

// asUser connects from a child process running as uid/gid in n (bash's
// /dev/tcp), because the owner match looks at the socket's creator.
func asUser(n *nstest.NS, uid, gid uint32, addr string) func() (string, error) {
	return func() (string, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return "", err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", "-c",
			fmt.Sprintf(`exec 3<>/dev/tcp/%s/%s && read -r line <&3 && echo "$line"`, host, port))
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
		var out []byte
		err = n.Do(func(ns.NetNS) (err error) {
			out, err = cmd.CombinedOutput()
			return err
		})
		if err != nil {
			return "", fmt.Errorf("bash as %d:%d to %s: %w: %s", uid, gid, addr, err, out)
		}
		return strings.TrimSpace(string(out)), nil
	}
}
