package main

import (
	"os"
	"time"

	flag "github.com/spf13/pflag"

	"github.com/weftmesh/weft/cni-plugin/netpol"
	"github.com/weftmesh/weft/cni-plugin/node"
)

type options struct {
	cfg           node.Config
	redirect      node.RedirectConfig
	netpol        netpol.Config
	networkPolicy bool
	clusterCIDR   string
	kubeconfig    string
	metricsAddr   string
	cleanup       bool
}

// parseFlags reads the command line; every flag has a default that works
// on a standard node.
func parseFlags() options {
	var o options
	flag.StringVar(&o.cfg.NodeName, "node-name", os.Getenv("NODE_NAME"), "this node's name (default $NODE_NAME)")
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file; empty means the in-cluster config")
	flag.StringVar(&o.cfg.CNIBinDir, "cni-bin-dir", "/host/opt/cni/bin", "where to install the plugin binaries (the runtime's CNI bin dir, mounted)")
	flag.StringVar(&o.cfg.CNIConfDir, "cni-conf-dir", "/host/etc/cni/net.d", "where to write "+node.ConflistName+" (the runtime's CNI conf dir, mounted)")
	flag.StringVar(&o.cfg.SourceBinDir, "source-bin-dir", "/opt/weft/cni/bin", "plugin binaries shipped in the image")
	flag.StringVar(&o.cfg.IPAMDataDir, "ipam-data-dir", "/var/lib/cni/weft", "IPAM data dir as a HOST path, written into the conflist; mounted at the same path")
	flag.StringVar(&o.cfg.CNIVersion, "cni-version", "1.0.0", "cniVersion of the conflist (1.0.0 or 1.1.0)")
	flag.StringVar(&o.clusterCIDR, "cluster-cidr", "10.244.0.0/16", "the cluster's pod CIDR; traffic from it to elsewhere is masqueraded")
	flag.StringVar(&o.cfg.Bridge, "bridge", "weft0", "name of the pod bridge")
	flag.IntVar(&o.cfg.MTU, "mtu", 0, "pod MTU; 0 means the MTU of the interface holding the node's InternalIP")
	flag.DurationVar(&o.cfg.ResyncPeriod, "resync-period", 5*time.Minute, "full resync interval (binaries, routes, rules, IPAM GC, the network policy table)")
	flag.StringVar(&o.metricsAddr, "metrics-addr", ":9657", "address serving /healthz and /metrics")
	flag.BoolVar(&o.cleanup, "cleanup", false, "remove the conflist, installed binaries, routes, iptables rules and the network policy table, then exit")
	flag.BoolVar(&o.redirect.Enabled, "redirect", true, "chain weft-redirect (sidecar traffic capture) after weft-bridge, write its kubeconfig and check meshed pods' rules")
	flag.StringVar(&o.redirect.HostCNIConfDir, "host-cni-conf-dir", "/etc/cni/net.d", "HOST path of --cni-conf-dir, where weft-redirect reads "+node.KubeconfigName)
	flag.StringVar((*string)(&o.redirect.Repair), "repair", string(node.RepairReport), "meshed pod without redirect rules: report (event + metric) or restart (also delete the pod)")
	flag.DurationVar(&o.redirect.CheckPeriod, "redirect-check-period", time.Minute, "interval of full checks of meshed pods' redirect rules")
	flag.BoolVar(&o.networkPolicy, "network-policy", true, "enforce Kubernetes NetworkPolicy for this node's pods (nftables table inet "+netpol.TableName+")")
	flag.DurationVar(&o.netpol.MinSyncInterval, "netpol-min-sync-period", time.Second, "minimum time between network policy syncs (two may run back to back)")
	flag.DurationVar(&o.netpol.CheckInterval, "netpol-sync-period", 30*time.Second, "longest time between network policy syncs; an idle one checks the table is intact")
	flag.Parse()
	o.netpol.NodeName = o.cfg.NodeName
	o.netpol.FullSyncPeriod = o.cfg.ResyncPeriod
	return o
}
