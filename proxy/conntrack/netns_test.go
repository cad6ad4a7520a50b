package conntrack_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/proxy/conntrack"
	"github.com/weftmesh/weft/proxy/internal/fixtures"
	"github.com/weftmesh/weft/proxy/internal/netns"
	"github.com/weftmesh/weft/proxy/iptables"
	"github.com/weftmesh/weft/proxy/rules"
)

// TestNetlinkDeletesStaleUDPEntries creates a real UDP conntrack entry for
// a Service VIP inside a throw-away namespace, moves the Service's endpoint
// and checks the netlink cleaner deletes exactly that entry.
func TestNetlinkDeletesStaleUDPEntries(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	ctx := context.Background()
	ns, err := netns.Create(ctx, "conntrack")
	if ns != "" {
		t.Cleanup(func() {
			if err := netns.Delete(context.Background(), ns); err != nil {
				t.Error(err)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"link", "add", "weft-a", "type", "veth", "peer", "name", "weft-b"},
		{"link", "set", "weft-a", "up"},
		{"link", "set", "weft-b", "up"},
		{"addr", "add", "10.244.0.5/32", "dev", "weft-a"},
		{"addr", "add", "10.244.2.9/32", "dev", "weft-a"},
		{"route", "add", "10.96.0.0/16", "dev", "weft-a", "src", "10.244.0.5"},
	} {
		if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	w := fixtures.Representative()
	tr := w.Tracker()
	c := tr.Take()
	pl := rules.NewPlanner(rules.Config{ClusterCIDR: fixtures.ClusterCIDR}).Plan(rules.Input{Services: c.Services, Full: true, NodeIPs: fixtures.NodeIPs})
	if err := (iptables.Exec{Wrapper: netns.Exec(ns)}).Restore(ctx, pl.Data); err != nil {
		t.Fatal(err)
	}
	// demo/dns-external: 10.96.0.13:53/UDP → 10.244.2.9:5353.
	err = netns.Do(ns, func() error {
		conn, err := net.Dial("udp", "10.96.0.13:53")
		if err != nil {
			return err
		}
		if _, err := conn.Write([]byte("query")); err != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
		return conn.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	if list := conntrackList(t, ns); !strings.Contains(list, "dst=10.96.0.13") {
		t.Fatalf("no conntrack entry for the VIP:\n%s", list)
	}

	clean := func() int {
		t.Helper()
		f := conntrack.BuildFrontends(tr.Take().Services)
		var n int
		if err := netns.Do(ns, func() (err error) { n, err = conntrack.Netlink{}.DeleteStale(f); return err }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := clean(); n != 0 {
		t.Errorf("deleted %d entries while the endpoint still serves", n)
	}
	tr.SetSlice(fixtures.Slice("demo", "dns-external", "dns", 5353, v1.ProtocolUDP, "10.244.2.99"))
	if n := clean(); n != 1 {
		t.Errorf("deleted %d entries after the endpoint moved, want 1", n)
	}
	if list := conntrackList(t, ns); strings.Contains(list, "dst=10.96.0.13") {
		t.Errorf("stale entry survived:\n%s", list)
	}
}

func conntrackList(t *testing.T, ns string) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "conntrack", "-L", "-p", "udp").CombinedOutput()
	if err != nil {
		t.Fatalf("conntrack -L: %v: %s", err, out)
	}
	return string(out)
}
