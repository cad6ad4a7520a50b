package caserver

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/metric"
)

// MetricServingCertExpiry is the NotAfter of pilot's own serving
// certificate, the leaf every sidecar verifies on xDS and CA connections.
// It renews itself at half its lifetime, so a value closer than that
// means renewal is failing. (Workload leaves are reported by each agent as
// weft_agent_svid_expiry_timestamp, the CA's own certificate by
// weft_ca_cert_expiry_timestamp.)
const MetricServingCertExpiry = "weft.ca.serving_cert.expiry_timestamp"

// RegisterServingMetrics exports the expiry of s's current certificate.
func RegisterServingMetrics(mp metric.MeterProvider, s *ServingCert) error {
	m := mp.Meter("github.com/weftmesh/weft/pilot/caserver")
	g, err := m.Float64ObservableGauge(MetricServingCertExpiry, metric.WithUnit("s"),
		metric.WithDescription("NotAfter of pilot's serving certificate (xDS and CA endpoints), in Unix seconds."))
	if err != nil {
		return fmt.Errorf("create serving certificate expiry gauge: %w", err)
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.cert != nil && s.cert.Leaf != nil {
			o.ObserveFloat64(g, float64(s.cert.Leaf.NotAfter.Unix()))
		}
		return nil
	}, g)
	if err != nil {
		return fmt.Errorf("register serving certificate expiry gauge: %w", err)
	}
	return nil
}
