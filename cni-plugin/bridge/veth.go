package bridge

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// VethPrefix starts the host-side name of every pod veth Weft creates, so
// GC can tell its own ports from anything else on the bridge.
const VethPrefix = "weft"

// HostVethName is the host side's name for an attachment: "weft" and 11 hex
// digits of sha256(containerID/ifName), 15 characters (IFNAMSIZ-1). Being a
// function of the CNI attachment key (CNI SPEC, section 3), DEL finds the
// veth without the netns and a retried ADD finds its own leftover.
func HostVethName(containerID, ifName string) string {
	sum := sha256.Sum256([]byte(containerID + "/" + ifName))
	return VethPrefix + hex.EncodeToString(sum[:])[:15-len(VethPrefix)]
}

// Attachment is one pod interface on the bridge.
type Attachment struct {
	BridgeIndex int
	ContainerID string
	IfName      string
	Netns       ns.NetNS
	// Address is the pod IP with the podCIDR's prefix length.
	Address netip.Prefix
	Gateway netip.Addr
	MTU     int
	Hairpin bool
}

// Attach creates the veth pair with one RTM_NEWLINK (host side up, peer
// created directly inside the pod netns as IfName with a deterministic MAC),
// puts the host side on the bridge with hairpin mode (so a pod can reach
// itself through a Service VIP), then configures link, address and default
// route inside the pod. On error it deletes what it created and nothing else.
func Attach(a Attachment) (host, container net.Interface, err error) {
	name := HostVethName(a.ContainerID, a.IfName)
	veth, err := createVeth(a, name)
	if err != nil {
		return host, container, err
	}
	defer func() {
		if err != nil {
			if derr := netlink.LinkDel(veth); derr != nil && !isNotFound(derr) {
				err = errors.Join(err, fmt.Errorf("roll back veth %s: %w", name, derr))
			}
		}
	}()
	if a.Hairpin {
		if err := netlink.LinkSetHairpin(veth, true); err != nil {
			return host, container, fmt.Errorf("set hairpin on %s: %w", name, err)
		}
	}
	hostLink, err := netlink.LinkByIndex(veth.Index)
	if err != nil {
		return host, container, fmt.Errorf("look up %s: %w", name, err)
	}
	err = a.Netns.Do(func(ns.NetNS) error {
		var cerr error
		container, cerr = configurePod(a)
		return cerr
	})
	if err != nil {
		return host, container, err
	}
	attrs := hostLink.Attrs()
	host = net.Interface{Index: attrs.Index, MTU: attrs.MTU, Name: attrs.Name, HardwareAddr: attrs.HardwareAddr}
	return host, container, nil
}

func createVeth(a Attachment, name string) (*netlink.Veth, error) {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	attrs.MTU = a.MTU
	attrs.Flags = net.FlagUp
	attrs.MasterIndex = a.BridgeIndex
	veth := netlink.NewVeth(attrs)
	veth.PeerName = a.IfName
	veth.PeerNamespace = netlink.NsFd(int(a.Netns.Fd()))
	veth.PeerHardwareAddr = MAC(a.Address.Addr())
	veth.PeerMTU = uint32(a.MTU)
	err := netlink.LinkAdd(veth)
	if err == nil {
		return veth, nil
	}
	_, lerr := netlink.LinkByName(name)
	hostExists := lerr == nil
	switch {
	case errors.Is(err, unix.EEXIST) && hostExists:
		// A runtime must not ADD an attachment twice; the existing pair
		// may be live, so it is left alone (CNI SPEC, section 2, ADD).
		return nil, fmt.Errorf("veth %s exists: %s/%s is already attached", name, a.ContainerID, a.IfName)
	case errors.Is(err, unix.EEXIST):
		return nil, fmt.Errorf("interface %s already exists in %s", a.IfName, a.Netns.Path())
	case hostExists:
		// LinkAdd created the pair, then failed to put it on the bridge.
		if derr := netlink.LinkDel(veth); derr != nil && !isNotFound(derr) {
			return nil, fmt.Errorf("create veth %s: %w (and delete it: %w)", name, err, derr)
		}
	}
	return nil, fmt.Errorf("create veth %s: %w", name, err)
}

// configurePod runs inside the pod netns.
func configurePod(a Attachment) (net.Interface, error) {
	link, err := netlink.LinkByName(a.IfName)
	if err != nil {
		return net.Interface{}, fmt.Errorf("look up %s in pod: %w", a.IfName, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return net.Interface{}, fmt.Errorf("set %s up: %w", a.IfName, err)
	}
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: IPNet(a.Address)}); err != nil {
		return net.Interface{}, fmt.Errorf("add %s to %s: %w", a.Address, a.IfName, err)
	}
	route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: a.Gateway.AsSlice()}
	if err := netlink.RouteAdd(route); err != nil {
		return net.Interface{}, fmt.Errorf("add default route via %s: %w", a.Gateway, err)
	}
	attrs := link.Attrs()
	return net.Interface{Index: attrs.Index, MTU: attrs.MTU, Name: attrs.Name, HardwareAddr: attrs.HardwareAddr}, nil
}

// Detach deletes an attachment's veth pair by its host-side name, which
// takes the pod side with it. A missing veth is success: CNI DEL must be
// idempotent and may come after the netns is gone (CNI SPEC, section 2, DEL).
func Detach(containerID, ifName string) error {
	name := HostVethName(containerID, ifName)
	link, err := netlink.LinkByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up %s: %w", name, err)
	}
	if err := netlink.LinkDel(link); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}
