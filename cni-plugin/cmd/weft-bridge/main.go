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
	"encoding/json"
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/weftmesh/weft/cni-plugin/opstats"
)

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{
		Add:    opstats.Wrap("weft-bridge", "ADD", opsDir, cmdAdd),
		Del:    opstats.Wrap("weft-bridge", "DEL", opsDir, cmdDel),
		Check:  opstats.Wrap("weft-bridge", "CHECK", opsDir, cmdCheck),
		Status: cmdStatus,
		GC:     cmdGC,
	}, version.PluginSupports("1.0.0", "1.1.0"), "weft-bridge: Weft pod network plugin (bridge + IPAM)")
}

// opsDir is where command outcomes are spooled for weft-cni-node's
// metrics: the IPAM data directory, which weft-cni-node mounts. Nothing is
// recorded when it does not exist (a failed ADD before IPAM ran).
func opsDir(stdin []byte) string {
	var c struct {
		DataDir string `json:"dataDir"`
	}
	if err := json.Unmarshal(stdin, &c); err != nil {
		return ""
	}
	if c.DataDir == "" {
		c.DataDir = defaultDataDir
	}
	if fi, err := os.Stat(c.DataDir); err != nil || !fi.IsDir() {
		return ""
	}
	return c.DataDir
}
