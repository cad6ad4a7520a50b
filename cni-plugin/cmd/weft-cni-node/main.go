// Command weft-cni-node is the per-node agent of Weft's pod network (a
// privileged, host-network DaemonSet); see package node for what it does.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	flag "github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/weftmesh/weft/cni-plugin/node"
)

type options struct {
	cfg         node.Config
	redirect    node.RedirectConfig
	clusterCIDR string
	kubeconfig  string
	metricsAddr string
	cleanup     bool
}

func main() {
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
	flag.DurationVar(&o.cfg.ResyncPeriod, "resync-period", 5*time.Minute, "full resync interval (binaries, routes, rules, IPAM GC)")
	flag.StringVar(&o.metricsAddr, "metrics-addr", ":9657", "address serving /healthz and /metrics")
	flag.BoolVar(&o.cleanup, "cleanup", false, "remove the conflist, installed binaries, routes and iptables rules, then exit")
	flag.BoolVar(&o.redirect.Enabled, "redirect", true, "chain weft-redirect (sidecar traffic capture) after weft-bridge, write its kubeconfig and check meshed pods' rules")
	flag.StringVar(&o.redirect.HostCNIConfDir, "host-cni-conf-dir", "/etc/cni/net.d", "HOST path of --cni-conf-dir, where weft-redirect reads "+node.KubeconfigName)
	flag.StringVar((*string)(&o.redirect.Repair), "repair", string(node.RepairReport), "meshed pod without redirect rules: report (event + metric) or restart (also delete the pod)")
	flag.DurationVar(&o.redirect.CheckPeriod, "redirect-check-period", time.Minute, "interval of full checks of meshed pods' redirect rules")
	flag.Parse()

	log := logr.FromSlogHandler(slog.NewJSONHandler(os.Stderr, nil))
	klog.SetLogger(log.WithName("client-go"))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(logr.NewContext(ctx, log), o); err != nil {
		log.Error(err, "weft-cni-node failed")
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	cidr, err := netip.ParsePrefix(o.clusterCIDR)
	if err != nil {
		return fmt.Errorf("--cluster-cidr: %w", err)
	}
	o.cfg.ClusterCIDR = cidr.Masked()
	if o.cleanup {
		return node.Cleanup(ctx, o.cfg)
	}
	if err := errors.Join(o.cfg.Validate(), o.redirect.Validate()); err != nil {
		return err
	}
	if o.redirect.Enabled {
		// Fail here rather than write a conflist whose every ADD fails.
		if _, err := os.Stat(filepath.Join(o.cfg.SourceBinDir, "weft-redirect")); err != nil {
			return fmt.Errorf("--redirect needs the weft-redirect plugin in --source-bin-dir: %w", err)
		}
		entry, err := node.RedirectPluginEntry(o.redirect)
		if err != nil {
			return err
		}
		o.cfg.ChainedPlugins = append(o.cfg.ChainedPlugins, entry)
	}
	rc, client, err := kubeClient(o.kubeconfig)
	if err != nil {
		return err
	}
	return serve(ctx, o, rc, client)
}
