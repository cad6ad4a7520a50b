// Package conntrack removes stale UDP connection-tracking entries. UDP has
// no connection end, so a client that keeps sending to a Service VIP keeps
// its conntrack entry — and its DNAT to an endpoint that may be gone — alive
// forever. After endpoints change, every UDP entry whose original
// destination is a Service frontend but whose reply source is not one of
// that Service's serving endpoints is deleted, as kube-proxy does
// (pkg/proxy/conntrack/cleanup.go). Deciding staleness is pure (Frontends);
// the netlink call is the thin edge.
package conntrack

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/types"

	"github.com/weftmesh/weft/proxy/model"
)

// Flow is the part of a conntrack entry staleness depends on.
type Flow struct {
	Protocol uint8 // unix.IPPROTO_UDP, …
	// OrigDst is where the client sent the packet (a VIP or node port).
	OrigDst netip.AddrPort
	// ReplySrc is who answers, i.e. the endpoint it was DNATed to.
	ReplySrc netip.AddrPort
}

type endpointSet map[netip.AddrPort]bool

// Frontends maps every UDP Service frontend to its serving endpoints.
type Frontends struct {
	ips       map[netip.AddrPort]endpointSet
	nodePorts map[uint16]endpointSet
}

// BuildFrontends collects the UDP frontends of all Services. Traffic
// policies and terminating state are deliberately ignored: an existing flow
// to a still-serving endpoint is not stale, exactly as for TCP.
func BuildFrontends(services map[types.NamespacedName]*model.Service) *Frontends {
	f := &Frontends{ips: map[netip.AddrPort]endpointSet{}, nodePorts: map[uint16]endpointSet{}}
	for _, svc := range services {
		for i := range svc.Ports {
			p := &svc.Ports[i]
			if p.Protocol != model.UDP {
				continue
			}
			eps := endpointSet{}
			for _, e := range svc.Endpoints[p.Name.Port] {
				if e.Serving {
					eps[netip.AddrPortFrom(e.IP, e.Port)] = true
				}
			}
			for _, ip := range append(append([]netip.Addr{p.ClusterIP}, p.ExternalIPs...), p.LoadBalancerIPs...) {
				f.ips[netip.AddrPortFrom(ip, p.Port)] = eps
			}
			// Node ports match on the port alone; with no endpoint that
			// could delete unrelated flows to the same port, so skip them.
			if p.NodePort != 0 && len(eps) > 0 {
				f.nodePorts[p.NodePort] = eps
			}
		}
	}
	return f
}

// Stale reports whether a flow goes to a Service frontend but not to one of
// its serving endpoints.
func (f *Frontends) Stale(fl Flow) bool {
	if fl.Protocol != unix.IPPROTO_UDP {
		return false
	}
	if eps, ok := f.ips[fl.OrigDst]; ok {
		return !eps[fl.ReplySrc]
	}
	if eps, ok := f.nodePorts[fl.OrigDst.Port()]; ok {
		return !eps[fl.ReplySrc]
	}
	return false
}

// Empty reports whether there is no UDP frontend at all.
func (f *Frontends) Empty() bool { return len(f.ips) == 0 && len(f.nodePorts) == 0 }

// Cleaner deletes the stale flows of the IPv4 conntrack table.
type Cleaner interface {
	DeleteStale(f *Frontends) (int, error)
}

// Netlink is the real Cleaner, working in the calling process's network
// namespace through one table dump (no conntrack binary needed).
type Netlink struct{}

// DeleteStale implements Cleaner.
func (Netlink) DeleteStale(f *Frontends) (int, error) {
	if f.Empty() {
		return 0, nil
	}
	n, err := netlink.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, filter{f})
	if err != nil {
		return int(n), fmt.Errorf("delete stale conntrack entries: %w", err)
	}
	return int(n), nil
}

type filter struct{ f *Frontends }

// MatchConntrackFlow implements netlink.CustomConntrackFilter.
func (x filter) MatchConntrackFlow(fl *netlink.ConntrackFlow) bool {
	return x.f.Stale(FlowOf(fl))
}

// FlowOf converts a netlink conntrack entry.
func FlowOf(fl *netlink.ConntrackFlow) Flow {
	dst, _ := netip.AddrFromSlice(fl.Forward.DstIP)
	src, _ := netip.AddrFromSlice(fl.Reverse.SrcIP)
	return Flow{
		Protocol: fl.Forward.Protocol,
		OrigDst:  netip.AddrPortFrom(dst.Unmap(), fl.Forward.DstPort),
		ReplySrc: netip.AddrPortFrom(src.Unmap(), fl.Reverse.SrcPort),
	}
}

// Fake records the Frontends it was asked to clean against and deletes the
// stale ones among Flows.
type Fake struct {
	Flows []Flow
	Calls int
}

// DeleteStale implements Cleaner.
func (k *Fake) DeleteStale(f *Frontends) (int, error) {
	k.Calls++
	kept := k.Flows[:0]
	n := 0
	for _, fl := range k.Flows {
		if f.Stale(fl) {
			n++
			continue
		}
		kept = append(kept, fl)
	}
	k.Flows = kept
	return n, nil
}
