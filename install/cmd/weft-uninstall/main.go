// Command weft-uninstall is the weft chart's Helm pre-delete hook: run as
// a Job before `helm uninstall` deletes the release, it removes the
// injection webhook and the Deployments on the pod network, stops the node
// agents and runs their cleanup on every node (package nodecleanup), the
// same cleanup `meshctl uninstall` runs. It ships in the cni-node image.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
)

// options are weft-uninstall's flags.
type options struct {
	kubeconfig  string
	namespace   string
	webhook     string
	deployments deploymentList
	pauseImage  string
	pullPolicy  string
	timeout     time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file; empty means in-cluster configuration")
	flag.StringVar(&o.namespace, "namespace", envOr("POD_NAMESPACE", "weft-system"), "namespace of the node agents and the cleanup DaemonSet")
	flag.StringVar(&o.webhook, "webhook", "", "MutatingWebhookConfiguration to remove first (empty: none)")
	flag.Var(&o.deployments, "deployment", "namespace/name of a Deployment on the pod network, removed before the nodes are cleaned (repeatable)")
	flag.StringVar(&o.pauseImage, "pause-image", "", "image of the container that keeps a cleaned node's pod Ready")
	flag.StringVar(&o.pullPolicy, "pull-policy", "IfNotPresent", "imagePullPolicy of the pause container")
	flag.DurationVar(&o.timeout, "timeout", 2*time.Minute, "bound on each wait (pods gone, cleanup Ready on every node)")
	flag.Parse()

	logger := logr.FromSlogHandler(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(logr.NewContext(ctx, logger), o); err != nil {
		logger.Error(err, "weft-uninstall failed")
		stop()
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// deploymentList is a repeatable namespace/name flag.
type deploymentList []types.NamespacedName

func (l *deploymentList) String() string {
	var s []string
	for _, d := range *l {
		s = append(s, d.String())
	}
	return strings.Join(s, ",")
}

func (l *deploymentList) Set(v string) error {
	ns, name, ok := strings.Cut(v, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("want namespace/name, got %q", v)
	}
	*l = append(*l, types.NamespacedName{Namespace: ns, Name: name})
	return nil
}
