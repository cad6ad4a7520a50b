// Command injector is weft-injector, the mutating admission webhook that
// adds weft-sidecar to pods (Deployment weft-injector in weft-system). It
// generates and rotates its own serving certificate and keeps the caBundle
// of MutatingWebhookConfiguration weft-sidecar-injector patched.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/weftmesh/weft/injector"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
)

type flags struct {
	cfg                                injector.Config
	srv                                injector.ServerConfig
	pullPolicy                         string
	cpu, memory, cpuLimit, memoryLimit string
	verbose                            bool
}

func parseFlags() flags {
	var f flags
	def := injector.DefaultConfig()
	ns := os.Getenv("POD_NAMESPACE")
	if ns == "" {
		ns = "weft-system"
	}
	flag.StringVar(&f.cfg.Image, "sidecar-image", def.Image, "image of the injected weft-sidecar (weft-agent + Envoy)")
	flag.StringVar(&f.pullPolicy, "sidecar-image-pull-policy", string(corev1.PullIfNotPresent), "imagePullPolicy of weft-sidecar")
	flag.StringVar(&f.cfg.TrustDomain, "trust-domain", def.TrustDomain, "SPIFFE trust domain")
	flag.StringVar(&f.cfg.Revision, "revision", def.Revision, "control-plane revision served (label weft.dev/rev)")
	flag.StringVar(&f.cpu, "proxy-cpu", "10m", "default CPU request of weft-sidecar")
	flag.StringVar(&f.memory, "proxy-memory", "40Mi", "default memory request of weft-sidecar")
	flag.StringVar(&f.cpuLimit, "proxy-cpu-limit", "", "default CPU limit of weft-sidecar (empty: none)")
	flag.StringVar(&f.memoryLimit, "proxy-memory-limit", "", "default memory limit of weft-sidecar (empty: none)")
	flag.StringVar(&f.cfg.OTLPEndpoint, "sidecar-otlp-endpoint", "", "OTLP/gRPC collector URL (http://host:4317) weft-agent in every injected sidecar exports metrics and spans to (empty: none)")
	flag.DurationVar(&f.cfg.MetricExportInterval, "sidecar-metric-export-interval", injector.DefaultMetricExportInterval, "how often the sidecar's agent pushes metrics over OTLP")
	flag.IntVar(&f.srv.Port, "port", injector.DefaultPort, "webhook HTTPS port")
	flag.StringVar(&f.srv.CertDir, "cert-dir", injector.DefaultCertDir, "directory where the serving certificate is written")
	flag.StringVar(&f.srv.WebhookConfigName, "webhook-config-name", injector.DefaultWebhookConfigName, "MutatingWebhookConfiguration whose caBundle is kept patched")
	flag.StringVar(&f.srv.Namespace, "namespace", ns, "namespace of the injector (env POD_NAMESPACE)")
	flag.StringVar(&f.srv.ServiceName, "service-name", injector.DefaultServiceName, "Service fronting the webhook")
	flag.StringVar(&f.srv.SecretName, "secret-name", injector.DefaultSecretName, "Secret storing the CA and serving certificate")
	flag.StringVar(&f.srv.HealthAddr, "health-addr", injector.DefaultHealthAddr, "address of /healthz and /readyz")
	flag.StringVar(&f.srv.MetricsAddr, "metrics-addr", injector.DefaultMetricsAddr, "address of /metrics")
	flag.DurationVar(&f.srv.Resync, "cert-resync", time.Hour, "longest time between two certificate checks")
	flag.BoolVar(&f.verbose, "v", false, "debug logging")
	flag.Parse()
	return f
}

func main() {
	f := parseFlags()
	level := slog.LevelInfo
	if f.verbose {
		level = slog.LevelDebug
	}
	log := logr.FromSlogHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctrl.SetLogger(log)
	klog.SetLogger(log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(logr.NewContext(ctx, log), f); err != nil {
		log.Error(err, "weft-injector failed")
		os.Exit(1)
	}
}

func run(ctx context.Context, f flags) error {
	res, err := injector.ParseProxyResources(f.cpu, f.memory, f.cpuLimit, f.memoryLimit)
	if err != nil {
		return err
	}
	cfg := f.cfg
	cfg.Resources = res
	cfg.ImagePullPolicy = corev1.PullPolicy(f.pullPolicy)
	cfg.CAAddress = fmt.Sprintf("weft-pilot.%s.svc:15012", f.srv.Namespace)
	cfg.XDSAddress = fmt.Sprintf("weft-pilot.%s.svc:15010", f.srv.Namespace)
	rest, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	srv := f.srv
	srv.Injection, srv.RestConfig = cfg, rest
	return injector.Run(ctx, srv)
}
