package injector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CertSyncConfig says where the injector's certificates live.
type CertSyncConfig struct {
	// Client talks to the API server directly (no cache: the Secret and
	// the webhook configuration are read rarely and must be fresh).
	Client client.Client
	// Namespace and SecretName locate the Secret holding the Bundle.
	Namespace, SecretName string
	// ServiceName is the webhook Service; it determines the DNS names.
	ServiceName string
	// WebhookConfigName is the MutatingWebhookConfiguration to keep patched.
	WebhookConfigName string
	// CertDir receives tls.crt and tls.key for the webhook server.
	CertDir string
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// Resync caps the time between two checks (1h if zero), so a missed
	// watch event or a skewed clock is repaired in bounded time.
	Resync time.Duration
}

// CertSync keeps the serving certificate, the files the webhook server
// reads and the webhooks' caBundle consistent. Sync is the single
// reconcile step; Run calls it on triggers and on a timer.
type CertSync struct {
	cfg   CertSyncConfig
	names []string
	mu    sync.Mutex
}

// NewCertSync validates the config.
func NewCertSync(cfg CertSyncConfig) (*CertSync, error) {
	if cfg.Client == nil || cfg.Namespace == "" || cfg.SecretName == "" || cfg.ServiceName == "" ||
		cfg.WebhookConfigName == "" || cfg.CertDir == "" {
		return nil, errors.New("cert sync needs a client, namespace, secret, service, webhook config and cert dir")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Resync <= 0 {
		cfg.Resync = time.Hour
	}
	return &CertSync{cfg: cfg, names: ServingDNSNames(cfg.ServiceName, cfg.Namespace)}, nil
}

// Sync makes one pass: ensure the Secret holds a valid bundle (generating
// or renewing as PlanCerts says), write the serving files, and patch the
// caBundle of every webhook that differs. It returns how long until the
// next pass is needed.
func (s *CertSync) Sync(ctx context.Context) (time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	log := logr.FromContextOrDiscard(ctx)
	now := s.cfg.Now()

	bundle, plan, err := s.ensureSecret(ctx, now)
	if err != nil {
		return 0, err
	}
	if err := writeServingFiles(s.cfg.CertDir, bundle); err != nil {
		return 0, err
	}
	if err := s.patchCABundle(ctx, bundle.CACert); err != nil {
		return 0, err
	}
	next := s.cfg.Resync
	if until := plan.RenewAt.Sub(now); until < next {
		next = max(until, time.Second)
	}
	log.V(1).Info("certificates in sync", "renewAt", plan.RenewAt, "next", next)
	return next, nil
}

// The webhook's CA and serving certificate. Creation cannot be limited by name.
// +kubebuilder:rbac:groups="",namespace=weft-system,resources=secrets,resourceNames=weft-injector-tls,verbs=get;update
// +kubebuilder:rbac:groups="",namespace=weft-system,resources=secrets,verbs=create

// ensureSecret returns the bundle stored after this pass and the plan for
// it (always CertKeep once stored).
func (s *CertSync) ensureSecret(ctx context.Context, now time.Time) (Bundle, CertPlan, error) {
	log := logr.FromContextOrDiscard(ctx)
	key := types.NamespacedName{Namespace: s.cfg.Namespace, Name: s.cfg.SecretName}
	var sec corev1.Secret
	err := s.cfg.Client.Get(ctx, key, &sec)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return Bundle{}, CertPlan{}, fmt.Errorf("get secret %s: %w", key, err)
	}
	current := BundleFromData(sec.Data)
	plan := PlanCerts(now, current, s.names)
	if plan.Action == CertKeep {
		return current, plan, nil
	}
	next, err := plan.Execute(now, current, s.names)
	if err != nil {
		return Bundle{}, CertPlan{}, fmt.Errorf("%s certificates: %w", plan.Action, err)
	}
	if exists {
		sec.Data = next.Data() // the type is immutable: keep what is there
		if err := s.cfg.Client.Update(ctx, &sec); err != nil {
			return Bundle{}, CertPlan{}, fmt.Errorf("update secret %s: %w", key, err)
		}
	} else {
		sec = corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
				Labels: map[string]string{"app.kubernetes.io/part-of": "weft", "app.kubernetes.io/name": "weft-injector"}},
			Type: corev1.SecretTypeTLS,
			Data: next.Data(),
		}
		// AlreadyExists (another replica won) fails this pass; the next
		// one reads the winner's bundle.
		if err := s.cfg.Client.Create(ctx, &sec); err != nil {
			return Bundle{}, CertPlan{}, fmt.Errorf("create secret %s: %w", key, err)
		}
	}
	log.Info("stored webhook certificates", "action", plan.Action.String(), "reason", plan.Reason)
	after := PlanCerts(now, next, s.names)
	if after.Action != CertKeep {
		return Bundle{}, CertPlan{}, fmt.Errorf("fresh certificates still need %s: %s", after.Action, after.Reason)
	}
	return next, after, nil
}

// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations,resourceNames=weft-sidecar-injector,verbs=get;update

// patchCABundle sets caBundle on every webhook of the configuration that
// lacks it. A missing configuration is not an error: the injector may start
// before the manifest is applied, and the watch triggers a pass when it is.
func (s *CertSync) patchCABundle(ctx context.Context, ca []byte) error {
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	if err := s.cfg.Client.Get(ctx, types.NamespacedName{Name: s.cfg.WebhookConfigName}, &mwc); err != nil {
		if apierrors.IsNotFound(err) {
			logr.FromContextOrDiscard(ctx).Info("webhook configuration not found yet", "name", s.cfg.WebhookConfigName)
			return nil
		}
		return fmt.Errorf("get mutatingwebhookconfiguration %s: %w", s.cfg.WebhookConfigName, err)
	}
	stale := WebhooksNeedingCABundle(&mwc, ca)
	if len(stale) == 0 {
		return nil
	}
	for i := range mwc.Webhooks {
		mwc.Webhooks[i].ClientConfig.CABundle = ca
	}
	// Update carries the resourceVersion: a concurrent re-apply makes it
	// fail with a conflict and the next pass starts from the new object.
	if err := s.cfg.Client.Update(ctx, &mwc); err != nil {
		return fmt.Errorf("patch caBundle of %s: %w", s.cfg.WebhookConfigName, err)
	}
	logr.FromContextOrDiscard(ctx).Info("patched caBundle", "config", s.cfg.WebhookConfigName, "webhooks", stale)
	return nil
}

// writeServingFiles writes tls.crt and tls.key where the webhook server's
// cert watcher reads them, only when they changed, each by rename so the
// watcher never reads a half-written file.
func writeServingFiles(dir string, b Bundle) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create cert dir: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{SecretKey, b.Key}, {SecretCert, b.Cert}} {
		path := filepath.Join(dir, f.name)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, f.data) {
			continue
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", tmp, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("replace %s: %w", path, err)
		}
	}
	return nil
}

// Run reconciles until ctx ends: a pass now, then whenever trigger fires
// (the webhook configuration changed) or the pass's deadline comes. Failed
// passes are retried with exponential backoff from 1s to 1m.
func (s *CertSync) Run(ctx context.Context, trigger <-chan struct{}) error {
	log := logr.FromContextOrDiscard(ctx).WithName("certs")
	ctx = logr.NewContext(ctx, log)
	backoff := time.Second
	for {
		next, err := s.Sync(ctx)
		if err != nil {
			log.Error(err, "certificate sync failed", "retryIn", backoff)
			next, backoff = backoff, min(2*backoff, time.Minute)
		} else {
			backoff = time.Second
		}
		timer := time.NewTimer(next)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-trigger:
		case <-timer.C:
		}
		timer.Stop()
	}
}
