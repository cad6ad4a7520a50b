// Command weft-bridge is Weft's CNI plugin for the base pod network: it puts
// each pod on the node's Linux bridge with a veth pair and gives it an
// address from the node's podCIDR using Weft's own file-backed IPAM. It
// implements CNI spec 1.0.0 and 1.1.0 (ADD, DEL, CHECK, VERSION, STATUS, GC;
// https://github.com/containernetworking/cni/blob/main/SPEC.md, section 2).
//
// Leaked addresses: DEL may be lost (a runtime crash), and containerd 1.6
// never sends CNI GC. So when the range is exhausted, ADD first reclaims the
// addresses whose recorded netns no longer exists, and weft-cni-node does the
// same periodically. Doing it on every ADD would cost a stat per allocation
// on the hot path for no gain while addresses are free.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"
)

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{
		Add:    cmdAdd,
		Del:    cmdDel,
		Check:  cmdCheck,
		Status: cmdStatus,
		GC:     cmdGC,
	}, version.PluginSupports("1.0.0", "1.1.0"), "weft-bridge: Weft pod network plugin (bridge + IPAM)")
}
