package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/coreos/go-iptables/iptables"
	"github.com/go-logr/logr"
)

// Cleanup undoes what the agent installed on this node, for uninstall: the
// conflist (the runtime stops using Weft for new pods), weft-redirect's
// kubeconfig, the plugin binaries
// it copied, its routes (by RouteProtocol) and its iptables chain. The
// bridge stays: pods still attached to it are deleted with the namespace.
// Missing pieces are fine, so it can run any number of times.
func Cleanup(ctx context.Context, cfg Config) error {
	log := logr.FromContextOrDiscard(ctx)
	var errs []error
	remove := func(path string) {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove %s: %w", path, err))
		}
	}
	remove(filepath.Join(cfg.CNIConfDir, ConflistName))
	remove(filepath.Join(cfg.CNIConfDir, KubeconfigName))
	entries, err := os.ReadDir(cfg.SourceBinDir)
	if err != nil {
		errs = append(errs, fmt.Errorf("read source bin dir: %w", err))
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			remove(filepath.Join(cfg.CNIBinDir, e.Name()))
		}
	}

	routes, err := ownRoutes()
	if err == nil {
		err = applyRoutes(nil, routes)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("remove routes: %w", err))
	}

	ipt, err := iptables.New()
	if err == nil {
		err = removeMasquerade(ipt, cfg.ClusterCIDR)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("remove masquerade: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	log.Info("removed Weft's CNI config, plugins, routes and iptables rules", "routes", len(routes))
	return nil
}
