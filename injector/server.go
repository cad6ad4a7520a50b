package injector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"github.com/weftmesh/weft/pilot/telemetry"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Default addresses and names of the weft-injector Deployment (DESIGN.md
// and install/helm/weft/templates/injector.yaml).
const (
	DefaultPort              = 15017                          // webhook (Service weft-injector:443 targets it)
	DefaultHealthAddr        = ":15018"                       // /healthz, /readyz for the kubelet
	DefaultMetricsAddr       = ":15016"                       // /metrics (15014 is pilot's)
	DefaultWebhookConfigName = "weft-sidecar-injector"        // the MutatingWebhookConfiguration kept patched
	DefaultServiceName       = "weft-injector"                // names in the serving certificate
	DefaultSecretName        = "weft-injector-tls"            // stores CA + serving certificate across restarts
	DefaultCertDir           = "/var/run/weft/injector/certs" // emptyDir the webhook server reads from
)

// ServerConfig configures the weft-injector process.
type ServerConfig struct {
	// Injection is what every pod gets (see Mutate).
	Injection Config
	// RestConfig reaches the API server (in-cluster config in the pod).
	RestConfig *rest.Config
	// Namespace, ServiceName, SecretName and WebhookConfigName name the
	// objects CertSync maintains.
	Namespace, ServiceName, SecretName, WebhookConfigName string
	// Port serves the webhook over TLS with the files in CertDir.
	Port    int
	CertDir string
	// HealthAddr serves /healthz and /readyz; MetricsAddr serves /metrics.
	HealthAddr, MetricsAddr string
	// Resync caps the time between two certificate checks.
	Resync time.Duration
}

// Run serves the injector until ctx ends. Certificates are ensured before
// the webhook server starts (it needs the files), then kept up to date by
// CertSync, woken by changes to the webhook configuration.
func Run(ctx context.Context, cfg ServerConfig) error {
	log := logr.FromContextOrDiscard(ctx)
	if err := cfg.Injection.Validate(); err != nil {
		return fmt.Errorf("injection config: %w", err)
	}
	tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "weft-injector"})
	if err != nil {
		return fmt.Errorf("set up telemetry: %w", err)
	}
	defer func() {
		if err := tel.Shutdown(context.WithoutCancel(ctx)); err != nil {
			log.Error(err, "shut down telemetry")
		}
	}()
	metrics, err := NewMetrics(tel.MeterProvider)
	if err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return fmt.Errorf("build scheme: %w", err)
	}
	direct, err := client.New(cfg.RestConfig, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	certs, err := NewCertSync(CertSyncConfig{
		Client: direct, Namespace: cfg.Namespace, SecretName: cfg.SecretName, ServiceName: cfg.ServiceName,
		WebhookConfigName: cfg.WebhookConfigName, CertDir: cfg.CertDir, Resync: cfg.Resync,
	})
	if err != nil {
		return err
	}
	if err := firstSync(ctx, certs); err != nil {
		return err
	}
	mgr, err := newManager(cfg, scheme, log)
	if err != nil {
		return err
	}
	handler, err := NewHandler(HandlerConfig{
		Injection: cfg.Injection, Namespaces: mgr.GetClient(), Fallback: mgr.GetAPIReader(),
		Metrics: metrics, TracerProvider: tel.TracerProvider,
	})
	if err != nil {
		return err
	}
	mgr.GetWebhookServer().Register(InjectPath, &admission.Webhook{Handler: handler, WithContextFunc: TraceContext})
	trigger, err := watchWebhookConfig(ctx, mgr)
	if err != nil {
		return err
	}
	for name, r := range map[string]manager.RunnableFunc{
		"cert sync": func(ctx context.Context) error { return certs.Run(ctx, trigger) },
		"metrics":   func(ctx context.Context) error { return telemetry.Serve(ctx, cfg.MetricsAddr, tel.Handler) },
	} {
		if err := mgr.Add(r); err != nil {
			return fmt.Errorf("add %s: %w", name, err)
		}
	}
	log.Info("starting weft-injector", "port", cfg.Port, "revision", cfg.Injection.Revision, "image", cfg.Injection.Image,
		"otlpTraces", tel.OTLPTraces, "otlpMetrics", tel.OTLPMetrics, "sidecarOTLPEndpoint", cfg.Injection.OTLPEndpoint)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("run manager: %w", err)
	}
	return nil
}

// The cache: Namespaces (injection decisions) and our one webhook
// configuration, watched by name so RBAC can pin it.
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=list;watch
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations,resourceNames=weft-sidecar-injector,verbs=list;watch

// newManager builds the controller-runtime manager: webhook server, health
// probes, and a cache limited to Namespaces (for injection decisions) and
// our one MutatingWebhookConfiguration (field-selected, so RBAC can pin it
// by resourceNames). Its own metrics server is off: ours is on MetricsAddr.
func newManager(cfg ServerConfig, scheme *runtime.Scheme, log logr.Logger) (manager.Manager, error) {
	mgr, err := manager.New(cfg.RestConfig, manager.Options{
		Scheme: scheme,
		Logger: log,
		// Runnables get a fresh context, not Run's: give them the logger.
		BaseContext:            func() context.Context { return logr.NewContext(context.Background(), log) },
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: cfg.HealthAddr,
		WebhookServer:          webhook.NewServer(webhook.Options{Port: cfg.Port, CertDir: cfg.CertDir}),
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&admissionregistrationv1.MutatingWebhookConfiguration{}: {
				Field: fields.OneTermEqualSelector("metadata.name", cfg.WebhookConfigName),
			},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, fmt.Errorf("add healthz: %w", err)
	}
	if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return nil, fmt.Errorf("add readyz: %w", err)
	}
	return mgr, nil
}

// watchWebhookConfig returns a channel that fires when the webhook
// configuration is created, changed or deleted (e.g. a re-applied manifest
// reset caBundle). It also starts the Namespace informer with the cache,
// so the first admission request does not wait for a list.
func watchWebhookConfig(ctx context.Context, mgr manager.Manager) (<-chan struct{}, error) {
	if _, err := mgr.GetCache().GetInformer(ctx, &corev1.Namespace{}); err != nil {
		return nil, fmt.Errorf("namespace informer: %w", err)
	}
	inf, err := mgr.GetCache().GetInformer(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{})
	if err != nil {
		return nil, fmt.Errorf("webhook configuration informer: %w", err)
	}
	trigger := make(chan struct{}, 1)
	poke := func() {
		select {
		case trigger <- struct{}{}:
		default: // a pass is already pending
		}
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(any, any) { poke() },
		DeleteFunc: func(any) { poke() },
	})
	if err != nil {
		return nil, fmt.Errorf("watch webhook configuration: %w", err)
	}
	return trigger, nil
}

// firstSync retries the initial certificate pass until it succeeds: the
// webhook server cannot start without its files, and the API server may
// not be reachable yet when the pod starts.
func firstSync(ctx context.Context, certs *CertSync) error {
	backoff := time.Second
	for {
		_, err := certs.Sync(ctx)
		if err == nil {
			return nil
		}
		logr.FromContextOrDiscard(ctx).Error(err, "initial certificate sync failed", "retryIn", backoff)
		select {
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("initial certificate sync: %w", err), ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}
