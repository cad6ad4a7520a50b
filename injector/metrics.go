package injector

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Refusal reasons (the reason attribute of weft_injector_refusals_total).
const (
	RefusalDecode    = "decode"    // the request's object is not a Pod the injector can read
	RefusalNamespace = "namespace" // the pod's Namespace could not be read
	RefusalMutate    = "mutate"    // Mutate returned an error (bad annotation, name clash)
)

// Metrics counts what the injector decided, so operators can alert on
// refusals (failurePolicy Fail means a refused pod is not created) and see
// why pods were skipped. Prometheus names carry the _total suffix:
// weft_injector_requests_total, weft_injector_injections_total{reason},
// weft_injector_skips_total{reason}, weft_injector_refusals_total{reason}.
type Metrics struct {
	requests, injections, skips, refusals metric.Int64Counter
}

// NewMetrics creates the instruments on mp (nil: a no-op provider, for
// tests that do not look at metrics).
func NewMetrics(mp metric.MeterProvider) (*Metrics, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter("github.com/weftmesh/weft/injector")
	var out Metrics
	for _, c := range []struct {
		dst        *metric.Int64Counter
		name, help string
	}{
		{&out.requests, "weft_injector_requests", "Admission requests received."},
		{&out.injections, "weft_injector_injections", "Pods injected with weft-sidecar, by reason."},
		{&out.skips, "weft_injector_skips", "Pods admitted without injection, by reason."},
		{&out.refusals, "weft_injector_refusals", "Pods refused because they could not be injected, by reason."},
	} {
		ctr, err := m.Int64Counter(c.name, metric.WithDescription(c.help))
		if err != nil {
			return nil, fmt.Errorf("create counter %s: %w", c.name, err)
		}
		*c.dst = ctr
	}
	return &out, nil
}

func (m *Metrics) request(ctx context.Context) { m.requests.Add(ctx, 1) }

func (m *Metrics) decided(ctx context.Context, d Decision) {
	attrs := metric.WithAttributes(attribute.String("reason", string(d.Reason)))
	if d.Inject {
		m.injections.Add(ctx, 1, attrs)
		return
	}
	m.skips.Add(ctx, 1, attrs)
}

func (m *Metrics) refused(ctx context.Context, reason string) {
	m.refusals.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reason)))
}
