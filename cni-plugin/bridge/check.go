package bridge

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// Check verifies what Attach built, for CNI CHECK (CNI SPEC, section 2,
// CHECK: error if an interface, address or route the plugin created is
// missing): the host veth is up on the bridge, and inside the pod IfName is
// up with Address and a default route via Gateway.
func Check(a Attachment) error {
	name := HostVethName(a.ContainerID, a.IfName)
	host, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("host veth %s: %w", name, err)
	}
	if host.Attrs().MasterIndex != a.BridgeIndex {
		return fmt.Errorf("host veth %s is not on the bridge", name)
	}
	if host.Attrs().Flags&net.FlagUp == 0 {
		return fmt.Errorf("host veth %s is down", name)
	}
	return a.Netns.Do(func(ns.NetNS) error { return checkPod(a) })
}

func checkPod(a Attachment) error {
	link, err := netlink.LinkByName(a.IfName)
	if err != nil {
		return fmt.Errorf("pod interface %s: %w", a.IfName, err)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		return fmt.Errorf("pod interface %s is down", a.IfName)
	}
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return netlink.AddrList(link, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", a.IfName, err)
	}
	found := false
	for _, addr := range addrs {
		found = found || ipNetEqual(addr.IPNet, a.Address)
	}
	if !found {
		return fmt.Errorf("pod interface %s lacks address %s", a.IfName, a.Address)
	}
	routes, err := retryDump(func() ([]netlink.Route, error) { return netlink.RouteList(link, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("list routes of %s: %w", a.IfName, err)
	}
	for _, r := range routes {
		if isDefault(r.Dst) && r.Gw.Equal(a.Gateway.AsSlice()) {
			return nil
		}
	}
	return fmt.Errorf("pod has no default route via %s on %s", a.Gateway, a.IfName)
}

func isDefault(dst *net.IPNet) bool {
	if dst == nil {
		return true
	}
	ones, _ := dst.Mask.Size()
	return ones == 0
}

// PruneVeths deletes the Weft veths on the bridge whose names are not in
// keep, for CNI GC (CNI SPEC, section 2, GC: remove resources of attachments
// not in cni.dev/valid-attachments). It returns the deleted names.
func PruneVeths(bridgeName string, keep map[string]bool) ([]string, error) {
	br, err := netlink.LinkByName(bridgeName)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up bridge %s: %w", bridgeName, err)
	}
	links, err := retryDump(netlink.LinkList)
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var deleted []string
	var errs []error
	for _, l := range links {
		attrs := l.Attrs()
		if attrs.MasterIndex != br.Attrs().Index || l.Type() != "veth" ||
			!strings.HasPrefix(attrs.Name, VethPrefix) || keep[attrs.Name] {
			continue
		}
		if err := netlink.LinkDel(l); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", attrs.Name, err))
			continue
		}
		deleted = append(deleted, attrs.Name)
	}
	return deleted, errors.Join(errs...)
}
