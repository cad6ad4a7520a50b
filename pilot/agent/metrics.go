package agent

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// metrics of the agent (after export: weft_agent_svid_expiry_timestamp_seconds,
// weft_agent_svid_fetches_total{result}).
type metrics struct {
	fetches metric.Int64Counter
}

func newMetrics(mp metric.MeterProvider, store *svidStore) (*metrics, error) {
	m := mp.Meter("github.com/weftmesh/weft/pilot/agent")
	fetches, err := m.Int64Counter("weft_agent_svid_fetches",
		metric.WithDescription("SVID requests to the CA, by result (ok or error)."))
	if err != nil {
		return nil, fmt.Errorf("create fetch counter: %w", err)
	}
	expiry, err := m.Float64ObservableGauge("weft_agent_svid_expiry_timestamp",
		metric.WithUnit("s"),
		metric.WithDescription("NotAfter of the workload's current X.509-SVID, in Unix seconds."))
	if err != nil {
		return nil, fmt.Errorf("create expiry gauge: %w", err)
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if s, _ := store.get(); s != nil {
			o.ObserveFloat64(expiry, float64(s.Leaf().NotAfter.Unix()),
				metric.WithAttributes(attribute.String("spiffe_id", s.ID.String())))
		}
		return nil
	}, expiry)
	if err != nil {
		return nil, fmt.Errorf("register expiry gauge: %w", err)
	}
	return &metrics{fetches: fetches}, nil
}

func (m *metrics) fetched(ctx context.Context, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.fetches.Add(ctx, 1, metric.WithAttributes(attribute.String("result", result)))
}

// exitAttrs labels weft_agent_envoy_restarts_total by Envoy's exit code.
func exitAttrs(code int) attribute.Set {
	return attribute.NewSet(attribute.Int("exit_code", code))
}
