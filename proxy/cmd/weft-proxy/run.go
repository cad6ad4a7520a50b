package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/weftmesh/weft/pilot/telemetry"
	"github.com/weftmesh/weft/pilot/telemetry/netprog"
	"github.com/weftmesh/weft/proxy/conntrack"
	"github.com/weftmesh/weft/proxy/healthcheck"
	"github.com/weftmesh/weft/proxy/iptables"
	"github.com/weftmesh/weft/proxy/metrics"
	"github.com/weftmesh/weft/proxy/model"
	"github.com/weftmesh/weft/proxy/proxier"
)

type options struct {
	kubeconfig, master, nodeName string
	clusterCIDR, nodeIP          string
	minSyncPeriod, syncPeriod    time.Duration
	healthzAddr, metricsAddr     string
	cleanup                      bool
}

// bulkRules is where restores start asking iptables-nft for one chain dump
// (see rules.Config.BulkRules).
const bulkRules = 1000

// serviceAccountDir holds the pod's in-cluster credentials (a variable for
// tests).
var serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

func run(ctx context.Context, o options) error {
	log := logr.FromContextOrDiscard(ctx)
	ipt := iptables.Exec{}
	if o.cleanup {
		return proxier.Cleanup(ctx, ipt)
	}
	cidr, err := netip.ParsePrefix(o.clusterCIDR)
	if err != nil || !cidr.Addr().Is4() {
		return fmt.Errorf("--cluster-cidr %q: want an IPv4 CIDR: %w", o.clusterCIDR, err)
	}
	nodeIPs, err := parseIPs(o.nodeIP)
	if err != nil {
		return err
	}
	if o.nodeName == "" {
		if o.nodeName, err = os.Hostname(); err != nil {
			return fmt.Errorf("node name: %w", err)
		}
	}
	client, err := newClient(o.kubeconfig, o.master)
	if err != nil {
		return err
	}
	nft, err := ipt.NFTables(ctx)
	if err != nil {
		return err
	}
	bulk := 0
	if nft {
		bulk = bulkRules
	}
	sctp := iptables.SupportsSCTP(ctx, ipt)
	tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "weft-proxy"})
	if err != nil {
		return err
	}
	defer func() {
		if err := tel.Shutdown(context.WithoutCancel(ctx)); err != nil {
			log.Error(err, "shut down metrics")
		}
	}()
	m, err := metrics.New(tel.MeterProvider.Meter("github.com/weftmesh/weft/proxy"))
	if err != nil {
		return err
	}
	health := healthcheck.NewNode(2*o.syncPeriod, nil)
	svcHealth := healthcheck.NewServices(healthcheck.ServicesConfig{Node: health, Log: log.WithName("healthcheck")})
	p, err := proxier.New(proxier.Config{
		Tracker:     model.NewTracker(model.TrackerConfig{NodeName: o.nodeName, Protocols: model.Protocols{SCTP: sctp}}),
		ClusterCIDR: cidr, NodeIPs: nodeIPs,
		MinSyncPeriod: o.minSyncPeriod, SyncPeriod: o.syncPeriod, BulkRules: bulk,
		IPTables: ipt, Conntrack: conntrack.Netlink{}, Metrics: m,
		Tracing: netprog.NewSyncRecorder(netprog.SyncConfig{TracerProvider: tel.TracerProvider, Node: o.nodeName}),
		Health:  health, ServiceHealth: svcHealth,
	})
	if err != nil {
		return err
	}
	log.Info("starting weft-proxy", "node", o.nodeName, "clusterCIDR", cidr.String(), "nftables", nft, "sctp", sctp,
		"otlpTraces", tel.OTLPTraces, "otlpMetrics", tel.OTLPMetrics)

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serve(ctx, o.healthzAddr, health.Handler()) })
	g.Go(func() error { return telemetry.Serve(ctx, o.metricsAddr, tel.Handler) })
	g.Go(func() error { p.Run(ctx); return nil })
	g.Go(func() error { svcHealth.Shutdown(ctx); return nil })
	g.Go(func() error { return proxier.Watch(ctx, client, p, o.nodeName) })
	return g.Wait()
}

// newClient builds the API client. --master lets weft-proxy reach the API
// server directly: it is what programs the Service VIP everyone else uses.
// With --master and no kubeconfig, the pod's service-account credentials are
// used against that address (Cilium's k8s-api-server does the same);
// KUBERNETES_SERVICE_HOST/PORT work as in any client-go program.
func newClient(kubeconfig, master string) (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	switch {
	case kubeconfig != "":
		cfg, err = clientcmd.BuildConfigFromFlags(master, kubeconfig)
	case master != "" && os.Getenv("KUBERNETES_SERVICE_HOST") == "":
		cfg = &rest.Config{Host: master, BearerTokenFile: filepath.Join(serviceAccountDir, "token"),
			TLSClientConfig: rest.TLSClientConfig{CAFile: filepath.Join(serviceAccountDir, "ca.crt")}}
	default:
		cfg, err = rest.InClusterConfig()
		if err == nil && master != "" {
			cfg.Host = master
		}
	}
	if err != nil {
		return nil, fmt.Errorf("API server config: %w", err)
	}
	cfg.UserAgent = "weft-proxy"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("API client: %w", err)
	}
	return client, nil
}

func parseIPs(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		ip, err := netip.ParseAddr(f)
		if err != nil || !ip.Is4() {
			return nil, fmt.Errorf("--node-ip %q: want IPv4 addresses: %w", f, err)
		}
		out = append(out, ip)
	}
	return out, nil
}

// serve runs an HTTP server until ctx ends.
func serve(ctx context.Context, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			logr.FromContextOrDiscard(ctx).Error(err, "shut down HTTP server", "addr", addr)
		}
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", addr, err)
	}
	return nil
}
