package main

import (
	"context"
	"fmt"
	"net"

	"github.com/go-logr/logr"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/weftmesh/weft/pilot/ca"
	"github.com/weftmesh/weft/pilot/ca/rootpublisher"
	"github.com/weftmesh/weft/pilot/ca/rootstore"
	"github.com/weftmesh/weft/pilot/caserver"
	"github.com/weftmesh/weft/pilot/telemetry"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// run wires pilot's components and runs them until ctx is done or one
// fails. Each component is a func(ctx) error in the group; the xDS server
// is added the same way.
func run(ctx context.Context, o options) error {
	log := logr.FromContextOrDiscard(ctx)
	td, err := spiffeid.TrustDomainFromString(o.trustDomain)
	if err != nil {
		return fmt.Errorf("trust domain: %w", err)
	}
	client, err := kubeClient(o)
	if err != nil {
		return err
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

	store, err := rootstore.New(rootstore.Config{
		Client: client, Namespace: o.namespace, Secret: o.caSecret, PluggedSecret: o.pluggedSecret,
		TrustDomain: td, RootTTL: o.rootTTL, MeterProvider: tel.MeterProvider,
		CA: ca.Config{DefaultTTL: o.certTTL, MaxTTL: o.maxCertTTL},
	})
	if err != nil {
		return err
	}
	// The CA must exist before anything is served.
	if err := store.Sync(ctx); err != nil {
		return fmt.Errorf("load CA: %w", err)
	}
	publisher, err := rootpublisher.New(rootpublisher.Config{
		Client: client, Bundle: store.BundlePEM, Changed: store.Subscribe(), Namespaces: []string{o.namespace},
	})
	if err != nil {
		return err
	}
	caSrv, err := caserver.New(caserver.Config{
		CA:            store,
		Authenticator: &caserver.TokenAuthenticator{Client: client, Audience: o.tokenAudience},
		Rate:          rate.Limit(o.csrRate), Burst: o.csrBurst,
		MeterProvider: tel.MeterProvider,
	})
	if err != nil {
		return err
	}
	caGRPC := caserver.NewGRPCServer(caSrv,
		&caserver.ServingCert{CA: store, Namespace: o.namespace, DNSNames: caserver.ServingNames(o.namespace, o.clusterDomain)},
		grpc.ChainUnaryInterceptor(caserver.LoggerInterceptor(log)))
	caLis, err := net.Listen("tcp", o.caAddr)
	if err != nil {
		return fmt.Errorf("listen CA %s: %w", o.caAddr, err)
	}

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return store.Run(ctx) })
	g.Go(func() error { return publisher.Run(ctx) })
	g.Go(func() error { return caserver.Serve(ctx, caGRPC, caLis) })
	g.Go(func() error { return telemetry.Serve(ctx, o.metricsAddr, tel.Handler) })
	if err := g.Wait(); err != nil {
		return err
	}
	return nil
}

// kubeClient uses the kubeconfig flag or the in-cluster configuration.
func kubeClient(o options) (kubernetes.Interface, error) {
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
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return client, nil
}
