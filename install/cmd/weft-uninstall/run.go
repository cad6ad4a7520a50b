package main

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"
	"github.com/weftmesh/weft/install/nodecleanup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// run checks the flags and runs the cleanup.
func run(ctx context.Context, o options) error {
	switch p := corev1.PullPolicy(o.pullPolicy); p {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		return fmt.Errorf("--pull-policy %q: want Always, IfNotPresent or Never", o.pullPolicy)
	}
	if o.pauseImage == "" {
		return fmt.Errorf("--pause-image is required")
	}
	var (
		cfg *rest.Config
		err error
	)
	if o.kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return fmt.Errorf("kubernetes client config: %w", err)
	}
	cfg.UserAgent = "weft-uninstall"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	rep, err := nodecleanup.Run(ctx, nodecleanup.Config{
		Client: client, Namespace: o.namespace, Webhook: o.webhook, Deployments: o.deployments,
		PauseImage: o.pauseImage, PullPolicy: corev1.PullPolicy(o.pullPolicy), Timeout: o.timeout,
	})
	if err != nil {
		return err
	}
	logr.FromContextOrDiscard(ctx).Info("done", "nodesCleaned", rep.Nodes)
	return nil
}
