// Command weft-agent is Weft's per-pod sidecar agent and the entrypoint of
// the sidecar image. It gets the pod's SPIFFE X.509-SVID from pilot's CA
// with the projected ServiceAccount token and rotates it, serves it to
// Envoy over SDS (--sds-socket, secrets "default" and "ROOTCA") and to
// applications over the SPIFFE Workload API (--workload-socket), writes
// Envoy's bootstrap (--bootstrap-path), runs Envoy once the SVID is ready
// (restarting it after crashes, draining it on SIGTERM), and serves
// readiness, the kubelet's rewritten app probes and metrics on :15020.
// The pod is described by the injector's environment: POD_NAME,
// POD_NAMESPACE, POD_IP, NODE_NAME, SERVICE_ACCOUNT, WEFT_APP_PROBERS.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/weftmesh/weft/pilot/agent"
)

func main() {
	started := time.Now()
	cfg, trustDomain, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	} else if err != nil {
		os.Exit(2) // the FlagSet printed the error and usage
	}
	logger := logr.FromSlogHandler(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg.Started = started
	if err := run(logr.NewContext(ctx, logger), cfg, trustDomain); err != nil {
		logger.Error(err, "weft-agent failed")
		stop()
		os.Exit(1)
	}
}

// parseFlags reads the flags the injector passes (injector/sidecar.go).
func parseFlags(args []string) (cfg agent.SidecarConfig, trustDomain string, err error) {
	fs := flag.NewFlagSet("weft-agent", flag.ContinueOnError)
	a, b, e := &cfg.Agent, &cfg.Bootstrap, &cfg.Envoy
	fs.StringVar(&a.SDSSocket, "sds-socket", agent.DefaultSDSSocket, "Unix socket of the SDS server for Envoy")
	fs.StringVar(&a.WorkloadSocket, "workload-socket", agent.DefaultWorkloadSocket, "Unix socket of the SPIFFE Workload API for applications")
	fs.StringVar(&a.TokenFile, "token-file", agent.DefaultTokenFile, "projected ServiceAccount token with audience weft-ca")
	fs.StringVar(&a.CARootFile, "ca-root-file", agent.DefaultCARootFile, "PEM trust bundle used to verify the CA endpoint (weft-root-cert ConfigMap mount)")
	fs.StringVar(&a.CAAddress, "ca-address", agent.DefaultCAAddress, "pilot's CA endpoint (host:port)")
	fs.StringVar(&a.CAServerName, "ca-server-name", "", "name pilot's CA certificate is verified for (default: host of --ca-address)")
	fs.DurationVar(&a.CertTTL, "cert-ttl", 24*time.Hour, "requested SVID lifetime (the CA may cap it)")
	fs.StringVar(&b.XDSAddress, "xds-address", agent.DefaultXDSAddress, "pilot's xDS endpoint (host:port), resolved by Envoy")
	fs.StringVar(&b.XDSServerName, "xds-server-name", "", "SNI Envoy sends to pilot's xDS endpoint (default: host of --xds-address)")
	fs.StringVar(&trustDomain, "trust-domain", "cluster.local", "SPIFFE trust domain")
	fs.StringVar(&b.ClusterDomain, "cluster-domain", "cluster.local", "cluster DNS domain (Envoy's stats tags parse it out of cluster names)")
	fs.StringVar(&e.Binary, "envoy-binary", agent.DefaultEnvoyBinary, "Envoy executable")
	fs.StringVar(&e.BootstrapPath, "bootstrap-path", agent.DefaultBootstrapPath, "where Envoy's bootstrap is written (a writable emptyDir)")
	fs.DurationVar(&e.DrainDuration, "drain-duration", agent.DefaultDrainDuration, "how long Envoy drains connections on SIGTERM before it is stopped")
	fs.IntVar(&e.Concurrency, "concurrency", agent.DefaultConcurrency, "Envoy worker threads")
	fs.StringVar(&e.LogLevel, "log-level", agent.DefaultEnvoyLogLevel, "Envoy log level: trace, debug, info, warning, error, critical, off")
	return cfg, trustDomain, fs.Parse(args)
}
