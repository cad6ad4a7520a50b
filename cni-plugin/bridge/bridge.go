// Package bridge is the netlink edge of weft-bridge: it keeps the node's pod
// bridge and plumbs each pod into it with a veth pair, the way the CNI
// reference bridge plugin does (CNI SPEC, section 2 "ADD"/"DEL"/"CHECK"), but
// in one process with Weft's own IPAM.
package bridge

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Config describes a node's pod bridge.
type Config struct {
	Name string
	// Address is the pods' gateway with the podCIDR's prefix length, e.g.
	// 10.244.1.1/24; it also gives the node a connected route to its pods.
	Address netip.Prefix
	MTU     int
}

// Ensure makes the bridge exist, be up and carry cfg.MTU and (only)
// cfg.Address. It is idempotent and safe against concurrent plugin processes. Before creating
// the bridge it turns on forwarding (see EnableForwarding).
func Ensure(cfg Config) (*netlink.Bridge, error) {
	link, err := netlink.LinkByName(cfg.Name)
	if isNotFound(err) {
		if err := create(cfg); err != nil {
			return nil, err
		}
		link, err = netlink.LinkByName(cfg.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("look up bridge %s: %w", cfg.Name, err)
	}
	br, ok := link.(*netlink.Bridge)
	if !ok {
		return nil, fmt.Errorf("%s is a %s device, not a bridge", cfg.Name, link.Type())
	}
	if br.MTU != cfg.MTU {
		if err := netlink.LinkSetMTU(br, cfg.MTU); err != nil {
			return nil, fmt.Errorf("set bridge %s mtu %d: %w", cfg.Name, cfg.MTU, err)
		}
	}
	if br.Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(br); err != nil {
			return nil, fmt.Errorf("set bridge %s up: %w", cfg.Name, err)
		}
	}
	if err := ensureAddr(br, cfg.Address); err != nil {
		return nil, err
	}
	return br, nil
}

func create(cfg Config) error {
	if err := EnableForwarding(); err != nil && !errors.Is(err, ErrNoBridgeNetfilter) {
		return err
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = cfg.Name
	attrs.MTU = cfg.MTU
	attrs.Flags = net.FlagUp
	// A fixed MAC: otherwise the bridge takes the lowest MAC of its ports
	// and changes it as pods come and go, breaking every pod's ARP entry
	// for the gateway.
	attrs.HardwareAddr = MAC(cfg.Address.Addr())
	err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs})
	if err != nil && !errors.Is(err, unix.EEXIST) { // EEXIST: a concurrent ADD won
		return fmt.Errorf("create bridge %s: %w", cfg.Name, err)
	}
	return nil
}

// ensureAddr leaves want as the bridge's only IPv4 address: an address of an
// earlier podCIDR would keep a connected route to pods that now live on
// another node.
func ensureAddr(br netlink.Link, want netip.Prefix) error {
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return netlink.AddrList(br, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", br.Attrs().Name, err)
	}
	found := false
	for _, a := range addrs {
		if ipNetEqual(a.IPNet, want) {
			found = true
			continue
		}
		if err := netlink.AddrDel(br, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("remove stale %s from %s: %w", a.IPNet, br.Attrs().Name, err)
		}
	}
	if found {
		return nil
	}
	err = netlink.AddrAdd(br, &netlink.Addr{IPNet: IPNet(want)})
	if err != nil && !errors.Is(err, unix.EEXIST) { // EEXIST: a concurrent ADD added it
		return fmt.Errorf("add %s to %s: %w", want, br.Attrs().Name, err)
	}
	return nil
}

// ErrNoBridgeNetfilter says br_netfilter is not loaded, so bridged pod
// traffic bypasses iptables (and Service rules) until someone loads it.
var ErrNoBridgeNetfilter = errors.New("net/bridge/bridge-nf-call-iptables missing: br_netfilter module not loaded")

// EnableForwarding sets net.ipv4.ip_forward=1 (the node routes pod traffic)
// and net.bridge.bridge-nf-call-iptables=1 (traffic between pods on one
// bridge passes iptables, as kube-proxy and Service rules need) in the
// calling thread's network namespace. Values already set are not rewritten.
func EnableForwarding() error {
	if err := sysctlOne("/proc/sys/net/ipv4/ip_forward"); err != nil {
		return err
	}
	err := sysctlOne("/proc/sys/net/bridge/bridge-nf-call-iptables")
	if errors.Is(err, os.ErrNotExist) {
		return ErrNoBridgeNetfilter
	}
	return err
}

func sysctlOne(path string) error {
	cur, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read sysctl: %w", err)
	}
	if strings.TrimSpace(string(cur)) == "1" {
		return nil
	}
	if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
		return fmt.Errorf("write sysctl: %w", err)
	}
	return nil
}

// MAC is the locally administered, deterministic MAC Weft gives an interface
// whose address is a: 0a:58 followed by the IPv4 octets (the scheme OVN
// uses). A pod that reuses an address gets the same MAC, so stale ARP
// entries elsewhere stay right.
func MAC(a netip.Addr) net.HardwareAddr {
	b := a.As4()
	return net.HardwareAddr{0x0a, 0x58, b[0], b[1], b[2], b[3]}
}

// IPNet converts a prefix that keeps its host bits (10.244.1.5/24) to the
// form netlink and CNI results use.
func IPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func ipNetEqual(n *net.IPNet, p netip.Prefix) bool {
	if n == nil {
		return false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	ones, _ := n.Mask.Size()
	return ok && a.Unmap() == p.Addr() && ones == p.Bits()
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

// retryDump repeats a netlink dump the kernel interrupted because the table
// changed underneath it (netlink returns partial data with
// ErrDumpInterrupted), as containernetworking's netlinksafe does.
func retryDump[T any](f func() (T, error)) (T, error) {
	for i := 0; ; i++ {
		v, err := f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) || i == 4 {
			return v, err
		}
	}
}
