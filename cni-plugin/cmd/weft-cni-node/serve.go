package main

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/weftmesh/weft/cni-plugin/netpol"
	"github.com/weftmesh/weft/cni-plugin/node"
	"github.com/weftmesh/weft/pilot/telemetry"
)

// kubeClient uses the kubeconfig file if given, else the in-cluster config
// (KUBERNETES_SERVICE_HOST/PORT, which the local cluster points straight at
// the API server since no Service VIP works before the network does).
// The config is returned too: weft-redirect's kubeconfig is rendered from it.
func kubeClient(kubeconfig string) (*rest.Config, kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("load kubernetes config: %w", err)
	}
	cfg.UserAgent = "weft-cni-node"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("create kubernetes client: %w", err)
	}
	return cfg, client, nil
}

// serve runs the agent, the /healthz + /metrics server, with --redirect
// the kubeconfig writer and redirect checker, and with --network-policy
// the policy controller, until ctx ends or one fails.
func serve(ctx context.Context, o options, rc *rest.Config, client kubernetes.Interface) error {
	tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "weft-cni-node"})
	if err != nil {
		return fmt.Errorf("set up metrics: %w", err)
	}
	defer tel.Shutdown(context.WithoutCancel(ctx)) //nolint:errcheck // exiting anyway
	metrics, err := node.NewMetrics(tel.MeterProvider)
	if err != nil {
		return err
	}
	agent, err := node.NewAgent(o.cfg, client, metrics)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	if o.redirect.Enabled {
		// Before the agent writes the conflist naming weft-redirect, whose
		// every ADD needs this file.
		kc := node.NewKubeconfigWriter(o.cfg.CNIConfDir, rc)
		if _, err := kc.Write(); err != nil {
			return fmt.Errorf("write weft-redirect kubeconfig: %w", err)
		}
		checker := node.NewRedirectChecker(o.cfg, o.redirect, client, metrics)
		g.Go(func() error { return kc.Run(ctx) })
		g.Go(func() error { return checker.Run(ctx) })
	}
	if o.networkPolicy {
		policies, err := newPolicyController(o.netpol, client, tel)
		if err != nil {
			return err
		}
		g.Go(func() error { return policies.Run(ctx) })
	} else if err := netpol.Cleanup(ctx); err != nil {
		// A table left by an earlier run would keep enforcing stale
		// policies; failing to remove it must not stop the pod network.
		logr.FromContextOrDiscard(ctx).Error(err, "--network-policy=false: could not remove the network policy table")
	}
	g.Go(func() error { return agent.Run(ctx) })
	g.Go(func() error { return node.Serve(ctx, o.metricsAddr, agent.Healthy, tel.Handler) })
	return g.Wait()
}

// newPolicyController enforces NetworkPolicy through the node's nftables.
func newPolicyController(cfg netpol.Config, client kubernetes.Interface, tel *telemetry.Telemetry) (*netpol.Controller, error) {
	kernel := &netpol.NFT{}
	m, err := netpol.NewMetrics(tel.MeterProvider, kernel)
	if err != nil {
		return nil, err
	}
	return netpol.New(cfg, client, kernel, m)
}
