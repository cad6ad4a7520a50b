package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/go-logr/logr"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/weftmesh/weft/pilot/ca"
	"github.com/weftmesh/weft/pilot/ca/rootpublisher"
	"github.com/weftmesh/weft/pilot/ca/rootstore"
	"github.com/weftmesh/weft/pilot/caserver"
	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/model"
	"github.com/weftmesh/weft/pilot/status"
	"github.com/weftmesh/weft/pilot/telemetry"
	"github.com/weftmesh/weft/pilot/xds"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// run wires pilot's components — the CA (root store, trust-bundle
// publisher, CSR service), the xDS server over the mesh model and the
// status writer (route and policy conditions) — and runs them until ctx is
// done or one fails. Every replica serves the CA and xDS; the elected
// leader alone writes: the root (generation, rotation), the trust bundles
// and the status (see leader.go).
func run(ctx context.Context, o options) error {
	log := logr.FromContextOrDiscard(ctx)
	td, err := spiffeid.TrustDomainFromString(o.trustDomain)
	if err != nil {
		return fmt.Errorf("trust domain: %w", err)
	}
	dataPlane, err := o.telemetry.options()
	if err != nil {
		return err
	}
	restCfg, err := kubeConfig(o)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "weft-pilot", SetGlobal: true})
	if err != nil {
		return err
	}
	defer func() {
		if err := tel.Shutdown(context.WithoutCancel(ctx)); err != nil {
			log.Error(err, "shutdown telemetry")
		}
	}()
	log.Info("telemetry", "otlpTraces", tel.OTLPTraces, "otlpMetrics", tel.OTLPMetrics)

	elector, err := o.leader.elector(client, o.namespace)
	if err != nil {
		return err
	}
	store, err := rootstore.New(rootstore.Config{
		Client: client, Namespace: o.namespace, Secret: o.caSecret, PluggedSecret: o.pluggedSecret,
		TrustDomain: td, RootTTL: o.rootTTL, MeterProvider: tel.MeterProvider,
		CA: ca.Config{DefaultTTL: o.certTTL, MaxTTL: o.maxCertTTL}, Leading: elector.Leading,
	})
	if err != nil {
		return err
	}
	mesh := model.NewStore(model.StoreConfig{RootNamespace: o.namespace, ClusterDomain: o.clusterDomain})
	modelSynced := make(chan struct{})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, ctx := errgroup.WithContext(ctx)
	// The election runs from the start: on a first install the leader
	// generates the root the other replicas wait for.
	g.Go(func() error {
		return elector.Run(ctx, singletons(
			func() (runner, error) {
				return rootpublisher.New(rootpublisher.Config{
					Client: client, Bundle: store.BundlePEM, Changed: store.Subscribe(), Namespaces: []string{o.namespace},
				})
			},
			func() (runner, error) {
				return status.New(status.Config{Dynamic: dyn, Model: mesh, Tracing: dataPlane.Tracing != nil})
			},
			modelSynced))
	})
	stop := func(err error) error {
		cancel()
		return errors.Join(err, g.Wait())
	}
	// The CA must exist before anything is served.
	if err := loadCA(ctx, store); err != nil {
		return stop(err)
	}
	caSrv, err := caserver.New(caserver.Config{
		CA:            store,
		Authenticator: &caserver.TokenAuthenticator{Client: client, Audience: o.tokenAudience},
		Rate:          rate.Limit(o.csrRate), Burst: o.csrBurst,
		MeterProvider: tel.MeterProvider, TracerProvider: tel.TracerProvider,
	})
	if err != nil {
		return stop(err)
	}
	// One serving certificate for both endpoints: an X.509-SVID for
	// spiffe://<td>/ns/<namespace>/sa/weft-pilot with the Service's DNS
	// names, which sidecars check when they connect to xDS.
	serving := &caserver.ServingCert{CA: store, Namespace: o.namespace, DNSNames: caserver.ServingNames(o.namespace, o.clusterDomain)}
	if err := caserver.RegisterServingMetrics(tel.MeterProvider, serving); err != nil {
		return stop(err)
	}
	caGRPC := caserver.NewGRPCServer(caSrv, serving, grpc.ChainUnaryInterceptor(caserver.LoggerInterceptor(log)))
	caLis, err := net.Listen("tcp", o.caAddr)
	if err != nil {
		return stop(fmt.Errorf("listen CA %s: %w", o.caAddr, err))
	}
	roots := func() *x509.CertPool {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(store.BundlePEM())
		return pool
	}
	xdsSrv, err := xds.New(xds.Config{
		Addr: o.xdsAddr, Model: mesh, Generator: generator.Options{TrustDomain: o.trustDomain, Telemetry: dataPlane},
		TLS:           xds.ServerTLSConfig(func() (*tls.Certificate, error) { return serving.GetCertificate(nil) }, roots),
		MeterProvider: tel.MeterProvider, TracerProvider: tel.TracerProvider,
	})
	if err != nil {
		return stop(errors.Join(err, caLis.Close()))
	}
	// /metrics and /debug/syncz (meshctl proxy-status) share the metrics port,
	// which only the control plane and the API server's pod proxy reach.
	mux := http.NewServeMux()
	mux.Handle("/metrics", tel.Handler)
	mux.Handle("/debug/syncz", xdsSrv.DebugHandler())

	if dataPlane.Tracing == nil {
		warner := newTracingWarner(mesh)
		g.Go(func() error { return warner.run(ctx) })
	}
	g.Go(func() error { return store.Run(ctx) })
	g.Go(func() error { return caserver.Serve(ctx, caGRPC, caLis) })
	g.Go(func() error { return telemetry.Serve(ctx, o.metricsAddr, mux) })
	g.Go(func() error {
		// Serve xDS only from a complete model, so no proxy gets config
		// built from a partial view of the cluster.
		if err := model.StartInformers(ctx, model.InformerConfig{Client: client, Dynamic: dyn, Store: mesh}); err != nil {
			return fmt.Errorf("mesh model: %w", err)
		}
		close(modelSynced)
		return xdsSrv.Run(ctx)
	})
	if err := g.Wait(); err != nil {
		return err
	}
	return nil
}

// kubeConfig uses the kubeconfig flag or the in-cluster configuration.
func kubeConfig(o options) (*rest.Config, error) {
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
		return nil, fmt.Errorf("kubernetes client config: %w", err)
	}
	cfg.QPS, cfg.Burst = float32(o.kubeQPS), o.kubeBurst
	cfg.UserAgent = "weft-pilot"
	return cfg, nil
}
