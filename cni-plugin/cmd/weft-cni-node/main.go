// Command weft-cni-node is the per-node agent of Weft's pod network (a
// privileged, host-network DaemonSet); see package node for what it does,
// and package netpol for its NetworkPolicy enforcement.
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

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"

	"github.com/weftmesh/weft/cni-plugin/netpol"
	"github.com/weftmesh/weft/cni-plugin/node"
)

func main() {
	o := parseFlags()
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
		return errors.Join(node.Cleanup(ctx, o.cfg), netpol.Cleanup(ctx))
	}
	if err := errors.Join(o.cfg.Validate(), o.redirect.Validate()); err != nil {
		return err
	}
	if o.networkPolicy {
		if err := o.netpol.Validate(); err != nil {
			return err
		}
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
