package main

import (
	"fmt"
	"net/netip"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weftmesh/weft/cni-plugin/bridge"
	"github.com/weftmesh/weft/cni-plugin/ipam"
)

// cmdCheck implements CNI CHECK (CNI SPEC, section 2, CHECK): the address in
// prevResult must still be reserved for this attachment, and the interfaces,
// address and default route ADD created must be in place.
func cmdCheck(args *skel.CmdArgs) error {
	conf, err := parseConfig(args.StdinData)
	if err != nil {
		return err
	}
	if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
		return types.NewError(types.ErrDecodingFailure, "decode prevResult", err.Error())
	}
	if conf.PrevResult == nil {
		return types.NewError(types.ErrInvalidNetworkConfig, "CHECK needs a prevResult", "")
	}
	prev, err := current.NewResultFromResult(conf.PrevResult)
	if err != nil {
		return types.NewError(types.ErrDecodingFailure, "convert prevResult", err.Error())
	}
	addr, err := podAddress(prev, args)
	if err != nil {
		return err
	}

	store, err := ipam.Open(conf.DataDir, conf.Name)
	if err != nil {
		return err
	}
	st, err := store.View()
	if err != nil {
		return err
	}
	if held, ok := st.Lookup(args.ContainerID, args.IfName); !ok || held != addr.Addr() {
		return fmt.Errorf("address %s is not reserved for %s/%s", addr.Addr(), args.ContainerID, args.IfName)
	}

	br, err := netlink.LinkByName(conf.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", conf.Bridge, err)
	}
	netns, err := ns.GetNS(args.Netns)
	if err != nil {
		return types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("open netns %q", args.Netns), err.Error())
	}
	defer netns.Close()
	return bridge.Check(bridge.Attachment{
		BridgeIndex: br.Attrs().Index, ContainerID: args.ContainerID, IfName: args.IfName,
		Netns: netns, Address: addr, Gateway: conf.rng.Gateway,
	})
}

// podAddress finds in prevResult the address ADD put on the pod interface.
func podAddress(prev *current.Result, args *skel.CmdArgs) (netip.Prefix, error) {
	for _, ipc := range prev.IPs {
		if ipc.Interface == nil || *ipc.Interface < 0 || *ipc.Interface >= len(prev.Interfaces) {
			continue
		}
		iface := prev.Interfaces[*ipc.Interface]
		if iface.Name != args.IfName || iface.Sandbox != args.Netns {
			continue
		}
		a, ok := netip.AddrFromSlice(ipc.Address.IP)
		ones, _ := ipc.Address.Mask.Size()
		if ok {
			return netip.PrefixFrom(a.Unmap(), ones), nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("prevResult has no address for %s in %s", args.IfName, args.Netns)
}

// cmdStatus implements CNI STATUS (CNI SPEC, section 2, STATUS; spec 1.1.0):
// error 50 when ADD cannot succeed, i.e. the IPAM data dir is unusable or
// the range is exhausted.
func cmdStatus(args *skel.CmdArgs) error {
	conf, err := parseConfig(args.StdinData)
	if err != nil {
		return err
	}
	unavailable := func(msg string, err error) error {
		return types.NewError(types.ErrPluginNotAvailable, msg, err.Error())
	}
	store, err := ipam.Open(conf.DataDir, conf.Name)
	if err != nil {
		return unavailable("ipam data dir unusable", err)
	}
	if err := unix.Access(store.Dir(), unix.W_OK); err != nil {
		return unavailable("ipam data dir unusable", fmt.Errorf("%s not writable: %w", store.Dir(), err))
	}
	st, err := store.View()
	if err != nil {
		return unavailable("ipam data dir unusable", err)
	}
	if st.Free(conf.rng) == 0 {
		return unavailable("no free pod address", fmt.Errorf("range %s %w", conf.rng.Subnet, ipam.ErrExhausted))
	}
	return nil
}
