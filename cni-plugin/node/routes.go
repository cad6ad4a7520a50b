package node

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// RouteProtocol tags every route weft-cni-node programs (rtm_protocol, as
// BIRD or Calico use theirs), so it only ever removes its own routes. 87 is
// unassigned in iproute2's rt_protos.
const RouteProtocol netlink.RouteProtocol = 87

// Peer is what routing needs to know about a node.
type Peer struct {
	Name       string
	PodCIDR    netip.Prefix
	InternalIP netip.Addr
}

// PeerFromNode reads a Node's IPv4 podCIDR and InternalIP; ok is false
// until the controller manager has allocated the podCIDR.
func PeerFromNode(n *corev1.Node) (p Peer, ok bool) {
	p.Name = n.Name
	cidrs := n.Spec.PodCIDRs
	if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
		cidrs = []string{n.Spec.PodCIDR}
	}
	for _, c := range cidrs {
		if pfx, err := netip.ParsePrefix(c); err == nil && pfx.Addr().Is4() {
			p.PodCIDR = pfx.Masked()
			break
		}
	}
	for _, a := range n.Status.Addresses {
		if ip, err := netip.ParseAddr(a.Address); err == nil && a.Type == corev1.NodeInternalIP && ip.Is4() {
			p.InternalIP = ip
			break
		}
	}
	return p, p.PodCIDR.IsValid()
}

// Route sends one peer's pods' traffic to that peer.
type Route struct {
	Dst netip.Prefix
	Via netip.Addr
}

// DesiredRoutes is one route per other node that has a podCIDR and an
// InternalIP, sorted by destination. If two nodes claim one podCIDR (a
// transient state during node replacement) the first by name wins.
func DesiredRoutes(self string, peers []Peer) []Route {
	peers = slices.Clone(peers)
	slices.SortFunc(peers, func(a, b Peer) int { return cmp.Compare(a.Name, b.Name) })
	seen := map[netip.Prefix]bool{}
	var routes []Route
	for _, p := range peers {
		if p.Name == self || !p.PodCIDR.IsValid() || !p.InternalIP.IsValid() || seen[p.PodCIDR] {
			continue
		}
		seen[p.PodCIDR] = true
		routes = append(routes, Route{Dst: p.PodCIDR, Via: p.InternalIP})
	}
	slices.SortFunc(routes, compareRoutes)
	return routes
}

// PlanRoutes diffs desired against the routes we own: add holds routes to
// create or re-point (applied with replace), del our routes to destinations
// nobody wants any more (deleted nodes).
func PlanRoutes(desired, current []Route) (add, del []Route) {
	want := map[netip.Prefix]netip.Addr{}
	for _, r := range desired {
		want[r.Dst] = r.Via
	}
	have := map[Route]bool{}
	for _, r := range current {
		have[r] = true
		if _, ok := want[r.Dst]; !ok {
			del = append(del, r)
		}
	}
	for _, r := range desired {
		if !have[r] {
			add = append(add, r)
		}
	}
	slices.SortFunc(add, compareRoutes)
	slices.SortFunc(del, compareRoutes)
	return add, del
}

func compareRoutes(a, b Route) int {
	return cmp.Or(a.Dst.Addr().Compare(b.Dst.Addr()), cmp.Compare(a.Dst.Bits(), b.Dst.Bits()), a.Via.Compare(b.Via))
}

// ownRoutes lists the main-table IPv4 routes carrying RouteProtocol.
func ownRoutes() ([]Route, error) {
	filter := &netlink.Route{Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN}
	var list []netlink.Route
	var err error
	for range 5 { // a dump interrupted by a concurrent change is retried
		list, err = netlink.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	routes := make([]Route, 0, len(list))
	for _, r := range list {
		if r.Dst == nil {
			continue
		}
		dst, ok1 := netip.AddrFromSlice(r.Dst.IP)
		via, ok2 := netip.AddrFromSlice(r.Gw)
		ones, _ := r.Dst.Mask.Size()
		if ok1 && ok2 {
			routes = append(routes, Route{Dst: netip.PrefixFrom(dst.Unmap(), ones), Via: via.Unmap()})
		}
	}
	return routes, nil
}

func toNetlink(r Route) *netlink.Route {
	return &netlink.Route{
		Dst:      &net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), 32)},
		Gw:       r.Via.AsSlice(),
		Protocol: RouteProtocol,
		Table:    unix.RT_TABLE_MAIN,
	}
}

// applyRoutes carries out a plan, continuing past failures (one unreachable
// peer must not block routes to the others).
func applyRoutes(add, del []Route) error {
	var errs []error
	for _, r := range del {
		if err := netlink.RouteDel(toNetlink(r)); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route %s via %s: %w", r.Dst, r.Via, err))
		}
	}
	for _, r := range add {
		if err := netlink.RouteReplace(toNetlink(r)); err != nil {
			errs = append(errs, fmt.Errorf("route %s via %s: %w", r.Dst, r.Via, err))
		}
	}
	return errors.Join(errs...)
}
