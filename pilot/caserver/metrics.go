package caserver

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// metrics are the CA service's instruments (Prometheus names after export:
// weft_ca_csr_signed_total, weft_ca_csr_refused_total{reason},
// weft_ca_sign_duration_seconds).
type metrics struct {
	signed   metric.Int64Counter
	refused  metric.Int64Counter
	duration metric.Float64Histogram
}

func newMetrics(mp metric.MeterProvider) (*metrics, error) {
	m := mp.Meter("github.com/weftmesh/weft/pilot/caserver")
	signed, err := m.Int64Counter("weft_ca_csr_signed",
		metric.WithDescription("CSRs signed by the CA."))
	if err != nil {
		return nil, fmt.Errorf("create signed counter: %w", err)
	}
	refused, err := m.Int64Counter("weft_ca_csr_refused",
		metric.WithDescription("CSRs refused by the CA, by reason."))
	if err != nil {
		return nil, fmt.Errorf("create refused counter: %w", err)
	}
	duration, err := m.Float64Histogram("weft_ca_sign_duration",
		metric.WithUnit("s"),
		metric.WithDescription("Time from receiving a CSR to answering it (authentication and signing), for signed CSRs."),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
	if err != nil {
		return nil, fmt.Errorf("create duration histogram: %w", err)
	}
	return &metrics{signed: signed, refused: refused, duration: duration}, nil
}

func (m *metrics) recordSigned(ctx context.Context, d time.Duration) {
	m.signed.Add(ctx, 1)
	m.duration.Record(ctx, d.Seconds())
}

func (m *metrics) recordRefused(ctx context.Context, r Reason) {
	m.refused.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", string(r))))
}
