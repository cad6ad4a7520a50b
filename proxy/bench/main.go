// Command bench compares weft-proxy with kube-proxy (iptables mode) on a
// real API server: for each size it creates N Services with 2–5 endpoints
// each in a dedicated namespace, starts both proxies in their own network
// namespaces (reaching the API server through a forwarder, so no rule or
// packet touches the host's namespace), measures the time to the first full
// sync and a one-endpoint-change sync from each proxy's own metrics, counts
// the rules each wrote, and deletes everything again.
//
//	go run ./proxy/bench -kubeconfig .cache/cluster/kubeconfig -sizes 1000,5000,10000
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
)

func main() {
	var o options
	var sizes string
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster to benchmark against (required)")
	flag.StringVar(&sizes, "sizes", "1000,5000,10000", "comma-separated Service counts")
	flag.StringVar(&o.kubeProxy, "kube-proxy", ".cache/bin/kube-proxy", "kube-proxy binary")
	flag.StringVar(&o.weftProxy, "weft-proxy", "", "weft-proxy binary (default: build it)")
	flag.IntVar(&o.changes, "changes", 5, "one-endpoint changes measured per size")
	flag.DurationVar(&o.timeout, "sync-timeout", 15*time.Minute, "longest wait for a proxy's first sync")
	flag.StringVar(&o.node, "node", "", "node name both proxies run as (default: the first Node)")
	flag.StringVar(&o.workDir, "work-dir", "", "where logs and kubeconfigs go (default: a temp dir)")
	flag.Parse()
	logger := logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, nil))
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > maxServices {
			logger.Error(err, "bad size", "size", s, "max", maxServices)
			os.Exit(2)
		}
		o.sizes = append(o.sizes, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(logr.NewContext(ctx, logger), o); err != nil {
		logger.Error(err, "benchmark failed")
		stop()
		os.Exit(1)
	}
	fmt.Println("done")
}
