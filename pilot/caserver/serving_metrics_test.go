package caserver

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/weftmesh/weft/pilot/ca"
)

func TestServingCertExpiryGauge(t *testing.T) {
	auth, err := ca.NewSelfSigned(ca.RootConfig{TrustDomain: td})
	require.NoError(t, err)
	authority, err := ca.New(ca.Config{TrustDomain: td, Signer: auth.Signer, Roots: auth.Roots})
	require.NoError(t, err)
	s := &ServingCert{CA: staticCA{authority}, DNSNames: ServingNames("", "cluster.local")}
	reader := sdkmetric.NewManualReader()
	require.NoError(t, RegisterServingMetrics(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)), s))

	collect := func() []metricdata.DataPoint[float64] {
		var rm metricdata.ResourceMetrics
		require.NoError(t, reader.Collect(context.Background(), &rm))
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name == MetricServingCertExpiry {
					assert.Equal(t, "s", m.Unit)
					return m.Data.(metricdata.Gauge[float64]).DataPoints
				}
			}
		}
		return nil
	}
	assert.Empty(t, collect(), "nothing before the first certificate")
	cert, err := s.GetCertificate(nil)
	require.NoError(t, err)
	dps := collect()
	require.Len(t, dps, 1)
	assert.Equal(t, float64(cert.Leaf.NotAfter.Unix()), dps[0].Value)
}
