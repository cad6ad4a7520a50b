package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/weftmesh/weft/cni-plugin/bridge"
	"github.com/weftmesh/weft/cni-plugin/ipam"
)

// cmdAdd implements CNI ADD (CNI SPEC, section 2, ADD). Any failure undoes
// what this call did: the address it reserved and the veth it created.
func cmdAdd(args *skel.CmdArgs) (err error) {
	conf, err := parseConfig(args.StdinData)
	if err != nil {
		return err
	}
	netns, err := ns.GetNS(args.Netns)
	if err != nil {
		return types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("open netns %q", args.Netns), err.Error())
	}
	defer netns.Close()
	store, err := ipam.Open(conf.DataDir, conf.Name)
	if err != nil {
		return err
	}
	br, err := bridge.Ensure(bridge.Config{Name: conf.Bridge, Address: conf.rng.GatewayPrefix(), MTU: conf.MTU})
	if err != nil {
		return fmt.Errorf("ensure bridge: %w", err)
	}

	ip, fresh, err := store.Allocate(conf.rng, ipam.Attachment{ContainerID: args.ContainerID, IfName: args.IfName, Netns: args.Netns})
	if err != nil {
		return fmt.Errorf("allocate address: %w", err)
	}
	if fresh {
		defer func() {
			if err != nil {
				if _, rerr := store.Release(args.ContainerID, args.IfName); rerr != nil {
					err = errors.Join(err, fmt.Errorf("roll back address %s: %w", ip, rerr))
				}
			}
		}()
	}

	addr := netip.PrefixFrom(ip, conf.rng.Subnet.Bits())
	host, cont, err := bridge.Attach(bridge.Attachment{
		BridgeIndex: br.Index, ContainerID: args.ContainerID, IfName: args.IfName, Netns: netns,
		Address: addr, Gateway: conf.rng.Gateway, MTU: conf.MTU, Hairpin: conf.hairpin,
	})
	if err != nil {
		return fmt.Errorf("attach pod: %w", err)
	}
	defer func() {
		if err != nil {
			if derr := bridge.Detach(args.ContainerID, args.IfName); derr != nil {
				err = errors.Join(err, fmt.Errorf("roll back veth: %w", derr))
			}
		}
	}()

	result := newResult(conf, args.Netns, br.Attrs(), host, cont, addr)
	if err := types.PrintResult(result, conf.CNIVersion); err != nil {
		return fmt.Errorf("print result: %w", err)
	}
	return nil
}

// newResult is the ADD result (CNI SPEC, section 5 "ADD Success"): bridge,
// host veth and pod interface, the pod address on interface 2 with its
// gateway, and the default route.
func newResult(conf *config, netnsPath string, br *netlink.LinkAttrs, host, cont net.Interface, addr netip.Prefix) *current.Result {
	gw := net.IP(conf.rng.Gateway.AsSlice())
	ifaces := []*current.Interface{
		{Name: br.Name, Mac: br.HardwareAddr.String(), Mtu: br.MTU},
		{Name: host.Name, Mac: host.HardwareAddr.String(), Mtu: host.MTU},
		{Name: cont.Name, Mac: cont.HardwareAddr.String(), Mtu: cont.MTU, Sandbox: netnsPath},
	}
	if newer, err := version.GreaterThanOrEqualTo(conf.CNIVersion, "1.1.0"); err != nil || !newer {
		for _, i := range ifaces {
			i.Mtu = 0 // "mtu" is a 1.1.0 field
		}
	}
	return &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: ifaces,
		IPs:        []*current.IPConfig{{Interface: current.Int(2), Address: *bridge.IPNet(addr), Gateway: gw}},
		Routes:     []*types.Route{{Dst: net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, GW: gw}},
		DNS:        conf.DNS,
	}
}
