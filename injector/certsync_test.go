package injector

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// clock is a settable test clock.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func webhookConfig() *admissionregistrationv1.MutatingWebhookConfiguration {
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "weft-sidecar-injector"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{
			{Name: "namespace.sidecar-injector.weft.dev"},
			{Name: "object.sidecar-injector.weft.dev"},
		},
	}
}

func newTestCertSync(t *testing.T, c client.Client, clk *clock) *CertSync {
	t.Helper()
	s, err := NewCertSync(CertSyncConfig{
		Client: c, Namespace: "weft-system", SecretName: "weft-injector-tls", ServiceName: "weft-injector",
		WebhookConfigName: "weft-sidecar-injector", CertDir: filepath.Join(t.TempDir(), "certs"),
		Now: clk.Now, Resync: time.Hour,
	})
	require.NoError(t, err)
	return s
}

type observed struct {
	bundle             Bundle
	secretRV, configRV string
	caBundles          [][]byte
	fileCert, fileKey  []byte
}

func observe(t *testing.T, c client.Client, s *CertSync) observed {
	t.Helper()
	ctx := context.Background()
	var o observed
	var sec corev1.Secret
	require.NoError(t, c.Get(ctx, types.NamespacedName{Namespace: "weft-system", Name: "weft-injector-tls"}, &sec))
	assert.Equal(t, corev1.SecretTypeTLS, sec.Type)
	o.bundle, o.secretRV = BundleFromData(sec.Data), sec.ResourceVersion
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	require.NoError(t, c.Get(ctx, types.NamespacedName{Name: "weft-sidecar-injector"}, &mwc))
	o.configRV = mwc.ResourceVersion
	for _, w := range mwc.Webhooks {
		o.caBundles = append(o.caBundles, w.ClientConfig.CABundle)
	}
	var err error
	o.fileCert, err = os.ReadFile(filepath.Join(s.cfg.CertDir, "tls.crt"))
	require.NoError(t, err)
	o.fileKey, err = os.ReadFile(filepath.Join(s.cfg.CertDir, "tls.key"))
	require.NoError(t, err)
	return o
}

func TestCertSyncBootstrapsRepairsAndRotates(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientBuilder().WithObjects(webhookConfig()).Build()
	clk := &clock{now: t0}
	s := newTestCertSync(t, c, clk)

	next, err := s.Sync(ctx)
	require.NoError(t, err)
	assert.Equal(t, time.Hour, next, "next pass at the resync cap while renewal is far away")
	first := observe(t, c, s)
	assert.Equal(t, CertKeep, PlanCerts(t0, first.bundle, names).Action)
	assert.Equal(t, [][]byte{first.bundle.CACert, first.bundle.CACert}, first.caBundles)
	assert.Equal(t, first.bundle.Cert, first.fileCert)
	assert.Equal(t, first.bundle.Key, first.fileKey)
	_, err = tls.X509KeyPair(first.fileCert, first.fileKey)
	require.NoError(t, err)

	// A second pass changes nothing (no writes at all).
	_, err = s.Sync(ctx)
	require.NoError(t, err)
	again := observe(t, c, s)
	assert.Equal(t, first.secretRV, again.secretRV)
	assert.Equal(t, first.configRV, again.configRV)

	// Re-applying the manifest drops caBundle; the next pass restores it.
	reapplied := webhookConfig()
	var cur admissionregistrationv1.MutatingWebhookConfiguration
	require.NoError(t, c.Get(ctx, types.NamespacedName{Name: reapplied.Name}, &cur))
	reapplied.ResourceVersion = cur.ResourceVersion
	require.NoError(t, c.Update(ctx, reapplied))
	_, err = s.Sync(ctx)
	require.NoError(t, err)
	assert.Equal(t, [][]byte{first.bundle.CACert, first.bundle.CACert}, observe(t, c, s).caBundles)

	// Close to renewal the pass asks to run again exactly when it is due.
	renewAt := PlanCerts(t0, first.bundle, names).RenewAt
	clk.now = renewAt.Add(-10 * time.Minute)
	next, err = s.Sync(ctx)
	require.NoError(t, err)
	assert.Equal(t, 10*time.Minute, next)

	// Renewal: new serving cert and files, same CA, caBundle untouched.
	clk.now = renewAt
	beforeRenew := observe(t, c, s)
	_, err = s.Sync(ctx)
	require.NoError(t, err)
	renewed := observe(t, c, s)
	assert.NotEqual(t, first.bundle.Cert, renewed.bundle.Cert)
	assert.Equal(t, first.bundle.CACert, renewed.bundle.CACert)
	assert.Equal(t, renewed.bundle.Cert, renewed.fileCert)
	assert.Equal(t, renewed.bundle.Key, renewed.fileKey)
	assert.Equal(t, beforeRenew.configRV, renewed.configRV, "caBundle must not change on renewal")
}

func TestCertSyncReplacesDamagedSecretAndToleratesMissingConfig(t *testing.T) {
	ctx := context.Background()
	damaged := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "weft-system", Name: "weft-injector-tls"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": []byte("junk"), "tls.key": []byte("junk")},
	}
	c := fake.NewClientBuilder().WithObjects(damaged).Build()
	s := newTestCertSync(t, c, &clock{now: t0})
	_, err := s.Sync(ctx)
	require.NoError(t, err, "no webhook configuration yet is fine")

	var sec corev1.Secret
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(damaged), &sec))
	assert.Equal(t, CertKeep, PlanCerts(t0, BundleFromData(sec.Data), names).Action)

	// The configuration appears later; the next pass patches it.
	require.NoError(t, c.Create(ctx, webhookConfig()))
	_, err = s.Sync(ctx)
	require.NoError(t, err)
	assert.Equal(t, [][]byte{sec.Data["ca.crt"], sec.Data["ca.crt"]}, observe(t, c, s).caBundles)
}

func TestNewCertSyncRequiresConfig(t *testing.T) {
	_, err := NewCertSync(CertSyncConfig{})
	assert.Error(t, err)
}

func TestCertSyncRunStopsWithContext(t *testing.T) {
	c := fake.NewClientBuilder().WithObjects(webhookConfig()).Build()
	s := newTestCertSync(t, c, &clock{now: t0})
	ctx, cancel := context.WithCancel(context.Background())
	trigger := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, trigger) }()
	trigger <- struct{}{}
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(s.cfg.CertDir, "tls.crt"))
		return err == nil
	}, 5*time.Second, 10*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
