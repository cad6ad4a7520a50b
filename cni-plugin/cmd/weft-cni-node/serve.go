package main

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/weftmesh/weft/cni-plugin/node"
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

// serve runs the agent, the /healthz + /metrics server and, with
// --redirect, the kubeconfig writer and redirect checker until ctx ends or
// one fails.
func serve(ctx context.Context, o options, rc *rest.Config, client kubernetes.Interface) error {
	registry := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(registry))
	if err != nil {
		return fmt.Errorf("create prometheus exporter: %w", err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer provider.Shutdown(context.WithoutCancel(ctx)) //nolint:errcheck // exiting anyway
	metrics, err := node.NewMetrics(provider)
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
	g.Go(func() error { return agent.Run(ctx) })
	g.Go(func() error {
		return node.Serve(ctx, o.metricsAddr, agent.Healthy, promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	})
	return g.Wait()
}
