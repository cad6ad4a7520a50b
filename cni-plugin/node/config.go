// Package node is weft-cni-node, the per-node agent of Weft's pod network
// (a DaemonSet with host networking). It installs the CNI plugin binaries and
// the conflist the runtime reads (CNI SPEC, section 1 "Configuration
// format"), routes every other node's podCIDR via that node's InternalIP,
// masquerades pod traffic leaving the cluster CIDR, and reclaims IPAM
// addresses of sandboxes that vanished without a CNI DEL.
//
// It reconciles rather than scripts: informer handlers only mark the state
// dirty; one loop, at most once a second, lists, diffs and fixes; a full
// resync (binaries, IPAM GC) runs periodically and after errors, with backoff.
package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"time"
)

const (
	// NetworkName is the CNI network name of the pod network; the IPAM
	// state lives in <IPAMDataDir>/<NetworkName>.
	NetworkName = "weft"
	// ConflistName sorts first in the conf dir, so the runtime picks it.
	ConflistName = "10-weft.conflist"
)

// Config is weft-cni-node's configuration; each field is one flag.
type Config struct {
	NodeName string
	// CNIBinDir and CNIConfDir are where the runtime looks (host paths
	// mounted into the pod); SourceBinDir holds the binaries in our image.
	CNIBinDir, CNIConfDir, SourceBinDir string
	// IPAMDataDir is the host path written into the conflist; the agent
	// sees it at the same path to garbage-collect allocations.
	IPAMDataDir string
	CNIVersion  string
	ClusterCIDR netip.Prefix
	Bridge      string
	// MTU of the pod network; 0 means the MTU of the node's interface that
	// holds its InternalIP.
	MTU          int
	ResyncPeriod time.Duration
	// ChainedPlugins are plugin entries appended after weft-bridge in the
	// conflist, e.g. weft-redirect for sidecar pods.
	ChainedPlugins []json.RawMessage
}

// Validate reports every invalid field at once.
func (c Config) Validate() error {
	var errs []error
	if c.NodeName == "" {
		errs = append(errs, errors.New("node name is empty (set --node-name or NODE_NAME)"))
	}
	for _, d := range []struct{ flag, dir string }{
		{"cni-bin-dir", c.CNIBinDir}, {"cni-conf-dir", c.CNIConfDir},
		{"source-bin-dir", c.SourceBinDir}, {"ipam-data-dir", c.IPAMDataDir},
	} {
		if !filepath.IsAbs(d.dir) {
			errs = append(errs, fmt.Errorf("--%s %q is not an absolute path", d.flag, d.dir))
		}
	}
	if c.CNIVersion != "1.0.0" && c.CNIVersion != "1.1.0" {
		errs = append(errs, fmt.Errorf("--cni-version %q: weft-bridge speaks 1.0.0 and 1.1.0", c.CNIVersion))
	}
	if !c.ClusterCIDR.IsValid() || !c.ClusterCIDR.Addr().Is4() {
		errs = append(errs, fmt.Errorf("--cluster-cidr %q is not an IPv4 CIDR", c.ClusterCIDR))
	}
	if c.Bridge == "" || len(c.Bridge) > 15 {
		errs = append(errs, fmt.Errorf("--bridge %q must be 1-15 characters", c.Bridge))
	}
	if c.MTU != 0 && (c.MTU < 576 || c.MTU > 65535) {
		errs = append(errs, fmt.Errorf("--mtu %d out of range 576-65535", c.MTU))
	}
	if c.ResyncPeriod < time.Second {
		errs = append(errs, fmt.Errorf("--resync-period %s is shorter than 1s", c.ResyncPeriod))
	}
	return errors.Join(errs...)
}
