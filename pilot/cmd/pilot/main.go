// Command pilot is Weft's control plane. For now it runs the CA: it loads or
// creates the root (Secret weft-system/weft-ca, or the operator's cacerts),
// publishes the trust bundle as the weft-root-cert ConfigMap in meshed
// namespaces, and serves the certificate service on :15012 (TLS) with
// metrics on :15014. The xDS server (:15010) joins run() later.
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
	"k8s.io/klog/v2"
)

// options are pilot's flags.
type options struct {
	kubeconfig    string
	namespace     string
	trustDomain   string
	clusterDomain string
	xdsAddr       string
	caAddr        string
	metricsAddr   string
	certTTL       time.Duration
	maxCertTTL    time.Duration
	rootTTL       time.Duration
	caSecret      string
	pluggedSecret string
	tokenAudience string
	csrRate       float64
	csrBurst      int
	kubeQPS       float64
	kubeBurst     int
	telemetry     telemetryFlags
	leader        leaderFlags
}

func main() {
	var o options
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file; empty means in-cluster configuration")
	flag.StringVar(&o.namespace, "namespace", envOr("POD_NAMESPACE", "weft-system"), "control-plane namespace (holds the CA Secret)")
	flag.StringVar(&o.trustDomain, "trust-domain", "cluster.local", "SPIFFE trust domain of issued identities")
	flag.StringVar(&o.clusterDomain, "cluster-domain", "cluster.local", "cluster DNS domain, for the CA endpoint's serving certificate")
	flag.StringVar(&o.caAddr, "ca-addr", ":15012", "listen address of the CA service (TLS)")
	flag.StringVar(&o.xdsAddr, "xds-addr", ":15010", "listen address of the xDS server (mTLS)")
	flag.StringVar(&o.metricsAddr, "metrics-addr", ":15014", "listen address of /metrics")
	flag.DurationVar(&o.certTTL, "cert-ttl", 24*time.Hour, "default workload certificate lifetime")
	flag.DurationVar(&o.maxCertTTL, "max-cert-ttl", 24*time.Hour, "maximum workload certificate lifetime an agent may request")
	flag.DurationVar(&o.rootTTL, "root-ttl", 10*365*24*time.Hour, "lifetime of a generated self-signed root")
	flag.StringVar(&o.caSecret, "ca-secret", "weft-ca", "Secret holding the self-signed root (created on first start)")
	flag.StringVar(&o.pluggedSecret, "plugged-ca-secret", "cacerts", "Secret with an operator-provided CA (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem); used when present")
	flag.StringVar(&o.tokenAudience, "token-audience", "weft-ca", "audience agents' ServiceAccount tokens must carry")
	flag.Float64Var(&o.csrRate, "csr-rate", 10, "CSRs per second allowed per SPIFFE identity")
	flag.IntVar(&o.csrBurst, "csr-burst", 50, "CSR burst allowed per SPIFFE identity")
	flag.Float64Var(&o.kubeQPS, "kube-api-qps", 50, "API server client QPS (TokenReviews, pod lookups)")
	flag.IntVar(&o.kubeBurst, "kube-api-burst", 100, "API server client burst")
	o.telemetry.register(flag.CommandLine)
	o.leader.register(flag.CommandLine)
	flag.Parse()

	logger := logr.FromSlogHandler(slog.NewJSONHandler(os.Stderr, nil))
	klog.SetLogger(logger.WithName("client-go")) // leader election logs through klog
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(logr.NewContext(ctx, logger), o); err != nil {
		logger.Error(err, "pilot failed")
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
