// Command weft-proxy is Weft's Service proxy, a kube-proxy replacement that
// runs on every node (DaemonSet, host network, NET_ADMIN). It watches
// Services, EndpointSlices and its Node and programs ClusterIP, NodePort,
// external and load-balancer IPs with one iptables-restore transaction per
// sync. See proxy/rules for the rule layout.
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
)

func main() {
	var o options
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file; empty means in-cluster credentials")
	flag.StringVar(&o.master, "master", "", "API server URL, overriding the kubeconfig or in-cluster address (reach the API server without a Service VIP)")
	flag.StringVar(&o.nodeName, "hostname-override", os.Getenv("NODE_NAME"), "this node's name (default $NODE_NAME, else the hostname)")
	flag.StringVar(&o.clusterCIDR, "cluster-cidr", "10.244.0.0/16", "pod network; cluster-IP traffic from outside it is masqueraded")
	flag.StringVar(&o.nodeIP, "node-ip", "", "comma-separated node IPv4 addresses (default: from the Node object)")
	flag.DurationVar(&o.minSyncPeriod, "min-sync-period", time.Second, "minimum time between rule syncs (after a burst of 2)")
	flag.DurationVar(&o.syncPeriod, "sync-period", 30*time.Second, "periodic full resync interval")
	flag.StringVar(&o.healthzAddr, "healthz-bind-address", ":10256", "node /healthz and /livez address (load balancers probe it)")
	flag.StringVar(&o.metricsAddr, "metrics-bind-address", ":10249", "Prometheus /metrics address")
	flag.BoolVar(&o.cleanup, "cleanup", false, "remove every weft-proxy chain and hook, then exit")
	flag.Parse()

	logger := logr.FromSlogHandler(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(logr.NewContext(ctx, logger), o); err != nil {
		logger.Error(err, "weft-proxy failed")
		stop()
		os.Exit(1)
	}
}
