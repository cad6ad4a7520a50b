// Command weft-agent is Weft's per-pod sidecar agent: it gets the pod's
// SPIFFE X.509-SVID from pilot's CA with the projected ServiceAccount token,
// rotates it, and serves it to Envoy over SDS (<socket-dir>/sds.sock,
// secrets "default" and "ROOTCA") and to applications over the SPIFFE
// Workload API (<socket-dir>/workload.sock). Metrics are on :15020.
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
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/weftmesh/weft/pilot/agent"
	"github.com/weftmesh/weft/pilot/telemetry"
	"golang.org/x/sync/errgroup"
)

func main() {
	var (
		cfg         agent.Config
		trustDomain string
		metricsAddr string
	)
	flag.StringVar(&cfg.CAAddress, "ca-address", agent.DefaultCAAddress, "pilot's CA endpoint (host:port)")
	flag.StringVar(&cfg.CAServerName, "ca-server-name", "", "name pilot's certificate is verified for (default: host of --ca-address)")
	flag.StringVar(&cfg.CARootFile, "ca-root-file", agent.DefaultCARootFile, "PEM trust bundle used to verify the CA endpoint (weft-root-cert ConfigMap mount)")
	flag.StringVar(&cfg.TokenFile, "token-file", agent.DefaultTokenFile, "projected ServiceAccount token with audience weft-ca")
	flag.StringVar(&cfg.SocketDir, "socket-dir", agent.DefaultSocketDir, "directory of sds.sock and workload.sock")
	flag.StringVar(&trustDomain, "trust-domain", "cluster.local", "SPIFFE trust domain")
	flag.DurationVar(&cfg.CertTTL, "cert-ttl", 24*time.Hour, "requested SVID lifetime (the CA may cap it)")
	flag.StringVar(&metricsAddr, "metrics-addr", ":15020", "listen address of /metrics")
	flag.Parse()

	logger := logr.FromSlogHandler(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(logr.NewContext(ctx, logger), cfg, trustDomain, metricsAddr); err != nil {
		logger.Error(err, "weft-agent failed")
		stop()
		os.Exit(1)
	}
}

// run starts the agent and its metrics endpoint; the Envoy bootstrap
// writer, Envoy supervisor and readiness endpoint join this group later.
func run(ctx context.Context, cfg agent.Config, trustDomain, metricsAddr string) error {
	td, err := spiffeid.TrustDomainFromString(trustDomain)
	if err != nil {
		return fmt.Errorf("trust domain: %w", err)
	}
	cfg.TrustDomain = td
	tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "weft-agent", SetGlobal: true})
	if err != nil {
		return err
	}
	defer func() {
		if err := tel.Shutdown(context.WithoutCancel(ctx)); err != nil {
			logr.FromContextOrDiscard(ctx).Error(err, "shutdown telemetry")
		}
	}()
	cfg.MeterProvider = tel.MeterProvider
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.Run(ctx) })
	g.Go(func() error { return telemetry.Serve(ctx, metricsAddr, tel.Handler) })
	return g.Wait()
}
