package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/utils"

	"github.com/weftmesh/weft/cni-plugin/ipam"
)

const (
	defaultDataDir = "/var/lib/cni/weft"
	defaultMTU     = 1500
)

// NetConf is weft-bridge's plugin configuration object (CNI SPEC, section 1
// "Plugin configuration objects"), as weft-cni-node writes it into the
// conflist.
type NetConf struct {
	types.PluginConf
	// Bridge is the node's pod bridge, e.g. "weft0".
	Bridge string `json:"bridge"`
	// PodCIDR is the node's Node.spec.podCIDR.
	PodCIDR string `json:"podCIDR"`
	// Gateway defaults to the first usable address of PodCIDR.
	Gateway string `json:"gateway,omitempty"`
	// MTU of the bridge and both veth ends; defaults to 1500.
	MTU int `json:"mtu,omitempty"`
	// HairpinMode lets a pod reach itself through a Service VIP; default on.
	HairpinMode *bool `json:"hairpinMode,omitempty"`
	// DataDir holds the IPAM state, one directory per network name.
	DataDir string `json:"dataDir,omitempty"`
}

// config is a validated NetConf.
type config struct {
	NetConf
	rng     ipam.Range
	hairpin bool
}

func invalid(format string, args ...any) *types.Error {
	return types.NewError(types.ErrInvalidNetworkConfig, "invalid weft-bridge config: "+fmt.Sprintf(format, args...), "")
}

// parseConfig decodes and validates the configuration on stdin, failing
// with a CNI error (code 6 or 7) that names the offending field.
func parseConfig(data []byte) (*config, error) {
	c := &config{}
	if err := json.Unmarshal(data, &c.NetConf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "decode weft-bridge config", err.Error())
	}
	if c.Bridge == "" {
		return nil, invalid(`"bridge" is required`)
	}
	if err := utils.ValidateInterfaceName(c.Bridge); err != nil {
		return nil, invalid("bridge %q: %s", c.Bridge, err.Msg)
	}
	if c.PodCIDR == "" {
		return nil, invalid(`"podCIDR" is required`)
	}
	subnet, err := netip.ParsePrefix(c.PodCIDR)
	if err != nil {
		return nil, invalid("podCIDR %q is not a CIDR", c.PodCIDR)
	}
	var gw netip.Addr
	if c.Gateway != "" {
		if gw, err = netip.ParseAddr(c.Gateway); err != nil {
			return nil, invalid("gateway %q is not an IP address", c.Gateway)
		}
	}
	if c.rng, err = ipam.NewRange(subnet, gw); err != nil {
		return nil, invalid("%v", err)
	}
	if c.MTU == 0 {
		c.MTU = defaultMTU
	}
	if c.MTU < 576 || c.MTU > 65535 {
		return nil, invalid("mtu %d out of range 576-65535", c.MTU)
	}
	c.hairpin = c.HairpinMode == nil || *c.HairpinMode
	if c.DataDir == "" {
		c.DataDir = defaultDataDir
	}
	if !filepath.IsAbs(c.DataDir) {
		return nil, invalid("dataDir %q is not an absolute path", c.DataDir)
	}
	return c, nil
}
