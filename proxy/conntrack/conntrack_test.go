package conntrack

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/proxy/internal/fixtures"
)

func udpFlow(dst, replySrc string) Flow {
	return Flow{Protocol: unix.IPPROTO_UDP, OrigDst: netip.MustParseAddrPort(dst), ReplySrc: netip.MustParseAddrPort(replySrc)}
}

func TestStaleUDPFlows(t *testing.T) {
	w := fixtures.Representative()
	w.Services = append(w.Services, fixtures.Service("demo", "dns-np", v1.ServiceTypeNodePort, "10.96.0.40",
		[]v1.ServicePort{{Name: "dns", Protocol: v1.ProtocolUDP, Port: 53, NodePort: 30053}}))
	w.Slices = append(w.Slices, fixtures.Slice("demo", "dns-np", "dns", 53, v1.ProtocolUDP, "10.244.2.50"))
	f := BuildFrontends(w.Tracker().Take().Services)
	for _, tc := range []struct {
		name  string
		flow  Flow
		stale bool
	}{
		{"cluster IP to a serving endpoint", udpFlow("10.96.0.13:53", "10.244.2.9:5353"), false},
		{"cluster IP to a removed endpoint", udpFlow("10.96.0.13:53", "10.244.9.9:5353"), true},
		{"external IP to a removed endpoint", udpFlow("198.51.100.5:53", "10.244.9.9:5353"), true},
		{"cluster IP, other port", udpFlow("10.96.0.13:54", "10.244.9.9:5353"), false},
		{"node port to a removed endpoint", udpFlow("172.20.0.11:30053", "10.244.9.9:53"), true},
		{"node port to its endpoint", udpFlow("172.20.0.11:30053", "10.244.2.50:53"), false},
		{"unrelated flow", udpFlow("8.8.8.8:53", "8.8.8.8:53"), false},
		{"TCP is never touched", Flow{Protocol: unix.IPPROTO_TCP, OrigDst: netip.MustParseAddrPort("10.96.0.13:53"), ReplySrc: netip.MustParseAddrPort("10.244.9.9:1")}, false},
	} {
		if got := f.Stale(tc.flow); got != tc.stale {
			t.Errorf("%s: stale = %v, want %v", tc.name, got, tc.stale)
		}
	}
}

func TestFakeDeletesOnlyStale(t *testing.T) {
	f := BuildFrontends(fixtures.Representative().Tracker().Take().Services)
	k := &Fake{Flows: []Flow{udpFlow("10.96.0.13:53", "10.244.2.9:5353"), udpFlow("10.96.0.13:53", "10.244.9.9:5353")}}
	n, err := k.DeleteStale(f)
	if err != nil || n != 1 || len(k.Flows) != 1 {
		t.Errorf("DeleteStale = %d, %v; %d flows left, want 1 deleted, 1 left", n, err, len(k.Flows))
	}
}
