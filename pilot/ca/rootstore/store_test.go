package rootstore

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/pilot/ca"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

var td = spiffeid.RequireTrustDomainFromString("cluster.local")

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

func TestFirstStartCreatesSecretAndReloads(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	clk := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	reader := sdkmetric.NewManualReader()
	s, err := New(Config{Client: client, TrustDomain: td, CA: ca.Config{Clock: clk.Now},
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	require.NoError(t, err)
	assert.Nil(t, s.CA())
	changed := s.Subscribe()

	require.NoError(t, s.Sync(ctx))
	first := s.CA()
	require.NotNil(t, first)
	sec, err := client.CoreV1().Secrets("weft-system").Get(ctx, "weft-ca", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Contains(t, sec.Data, ca.KeyCAKey)
	assert.Equal(t, clk.Now().Add(ca.DefaultRootTTL), first.NotAfter())
	select {
	case <-changed:
	default:
		t.Fatal("no change notification")
	}

	// A restarted pilot (new Store) loads the same root instead of minting one.
	s2, err := New(Config{Client: client, TrustDomain: td, CA: ca.Config{Clock: clk.Now}})
	require.NoError(t, err)
	require.NoError(t, s2.Sync(ctx))
	assert.True(t, s2.CA().SignerCert().Equal(first.SignerCert()))
	assert.Equal(t, ca.EncodeCerts(first.Roots()), s2.BundlePEM())

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	require.Len(t, rm.ScopeMetrics, 1)
	g := rm.ScopeMetrics[0].Metrics[0].Data.(metricdata.Gauge[float64])
	assert.Equal(t, float64(first.NotAfter().Unix()), g.DataPoints[0].Value)
}

func TestRotationIsStoredAndPublished(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	clk := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	cfg := Config{Client: client, TrustDomain: td, RootTTL: 30 * 24 * time.Hour, CA: ca.Config{Clock: clk.Now},
		Rotation: ca.RotationPolicy{RenewBefore: 10 * 24 * time.Hour}}
	s, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, s.Sync(ctx))
	oldSigner := s.CA().SignerCert()
	changed := s.Subscribe()

	clk.Advance(20 * 24 * time.Hour)
	require.NoError(t, s.Sync(ctx))
	<-changed
	assert.Len(t, s.CA().Roots(), 2, "next root published")
	assert.True(t, s.CA().SignerCert().Equal(oldSigner), "old root still signs during overlap")

	// Another replica sees the stored rotation state.
	other, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, other.Sync(ctx))
	assert.Len(t, other.CA().Roots(), 2)

	clk.Advance(24 * time.Hour)
	require.NoError(t, s.Sync(ctx))
	<-changed
	assert.False(t, s.CA().SignerCert().Equal(oldSigner), "new root signs after the overlap")
	assert.Len(t, s.CA().Roots(), 2)

	clk.Advance(24 * time.Hour)
	require.NoError(t, s.Sync(ctx))
	<-changed
	assert.Len(t, s.CA().Roots(), 1, "old root retired")
}

func TestPluggedSecretWins(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	a, err := ca.NewSelfSigned(ca.RootConfig{TrustDomain: td, Clock: func() time.Time { return now }})
	require.NoError(t, err)
	data, err := a.MarshalData()
	require.NoError(t, err)
	client := fake.NewClientset(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "cacerts", Namespace: "weft-system"}, Data: data})
	s, err := New(Config{Client: client, TrustDomain: td, CA: ca.Config{Clock: func() time.Time { return now }}})
	require.NoError(t, err)
	require.NoError(t, s.Sync(ctx))
	assert.True(t, s.CA().SignerCert().Equal(a.Signer.Cert()))
	_, err = client.CoreV1().Secrets("weft-system").Get(ctx, "weft-ca", metav1.GetOptions{})
	assert.Error(t, err, "no self-signed root is generated when cacerts exists")

	// A broken plugged Secret is an error, never a silent fallback.
	delete(data, ca.KeyCAKey)
	_, err = client.CoreV1().Secrets("weft-system").Update(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "cacerts", Namespace: "weft-system"}, Data: data}, metav1.UpdateOptions{})
	require.NoError(t, err)
	assert.Error(t, s.Sync(ctx))
	assert.True(t, s.CA().SignerCert().Equal(a.Signer.Cert()), "last good CA keeps signing")
}
