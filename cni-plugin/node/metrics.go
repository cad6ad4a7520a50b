package node

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metrics are weft-cni-node's OpenTelemetry instruments. Served through the
// Prometheus exporter they read weft_cni_node_routes,
// weft_cni_node_ipam_allocated_ips, weft_cni_node_sync_duration_seconds,
// weft_cni_node_sync_errors_total{stage}, and for the redirect checker
// weft_cni_node_redirect_missing_total (meshed pods found without redirect
// rules, once per pod), weft_cni_node_redirect_missing_pods (such pods now)
// and weft_cni_node_redirect_restarts_total (pods deleted to repair them).
type Metrics struct {
	syncDuration     metric.Float64Histogram
	syncErrors       metric.Int64Counter
	redirectMissing  metric.Int64Counter
	redirectRestarts metric.Int64Counter
	routes, ips      atomic.Int64
	missingPods      atomic.Int64
	ops              *opsMetrics
}

// NewMetrics registers the instruments with a meter of mp.
func NewMetrics(mp metric.MeterProvider) (*Metrics, error) {
	meter := mp.Meter("github.com/weftmesh/weft/cni-plugin/node")
	m := &Metrics{}
	var err error
	if m.syncDuration, err = meter.Float64Histogram("weft.cni_node.sync.duration", metric.WithUnit("s"),
		metric.WithDescription("Time one reconcile of the node's pod network took."),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)); err != nil {
		return nil, fmt.Errorf("create sync duration histogram: %w", err)
	}
	if m.syncErrors, err = meter.Int64Counter("weft.cni_node.sync.errors",
		metric.WithDescription("Reconcile steps that failed, by stage.")); err != nil {
		return nil, fmt.Errorf("create sync error counter: %w", err)
	}
	if m.redirectMissing, err = meter.Int64Counter("weft.cni_node.redirect.missing",
		metric.WithDescription("Meshed pods found running without redirect rules in their network namespace.")); err != nil {
		return nil, fmt.Errorf("create redirect missing counter: %w", err)
	}
	if m.redirectRestarts, err = meter.Int64Counter("weft.cni_node.redirect.restarts",
		metric.WithDescription("Meshed pods without redirect rules deleted so their owner recreates them (--repair=restart).")); err != nil {
		return nil, fmt.Errorf("create redirect restart counter: %w", err)
	}
	gauges := []struct {
		name, desc string
		v          *atomic.Int64
	}{
		{"weft.cni_node.routes", "Routes to other nodes' pod CIDRs this node has programmed.", &m.routes},
		{"weft.cni_node.ipam.allocated_ips", "Pod addresses allocated on this node.", &m.ips},
		{"weft.cni_node.redirect.missing_pods", "Meshed pods on this node whose network namespace now lacks redirect rules.", &m.missingPods},
	}
	for _, g := range gauges {
		if _, err := meter.Int64ObservableGauge(g.name, metric.WithDescription(g.desc),
			metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
				o.Observe(g.v.Load())
				return nil
			})); err != nil {
			return nil, fmt.Errorf("create gauge %s: %w", g.name, err)
		}
	}
	if m.ops, err = newOpsMetrics(meter); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Metrics) observeSync(ctx context.Context, took time.Duration) {
	m.syncDuration.Record(ctx, took.Seconds())
}

func (m *Metrics) countError(ctx context.Context, stage string) {
	m.syncErrors.Add(ctx, 1, metric.WithAttributes(attribute.String("stage", stage)))
}
