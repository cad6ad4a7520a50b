package netpol

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metrics are the policy controller's OpenTelemetry instruments. Served
// through the Prometheus exporter they read
// weft_cni_node_netpol_policies{state="programmed"|"invalid"} (policies
// with chains on this node; policies with parts left out),
// weft_cni_node_netpol_isolated_pods,
// weft_cni_node_netpol_sync_duration_seconds{mode="full"|"partial"},
// weft_cni_node_netpol_sync_errors_total{stage} and
// weft_cni_node_netpol_dropped_packets_total{direction,namespace}, read
// from the drop rules' counter objects in the kernel at scrape time.
type Metrics struct {
	syncDuration metric.Float64Histogram
	syncErrors   metric.Int64Counter
	programmed   atomic.Int64
	invalid      atomic.Int64
	isolated     atomic.Int64
}

// NewMetrics registers the instruments with a meter of mp; drops are read
// from kernel when scraped.
func NewMetrics(mp metric.MeterProvider, kernel Kernel) (*Metrics, error) {
	meter := mp.Meter("github.com/weftmesh/weft/cni-plugin/netpol")
	m := &Metrics{}
	var err error
	if m.syncDuration, err = meter.Float64Histogram("weft.cni_node.netpol.sync.duration", metric.WithUnit("s"),
		metric.WithDescription("Time one NetworkPolicy sync took (plan and nftables transaction), by mode."),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)); err != nil {
		return nil, fmt.Errorf("create netpol sync duration histogram: %w", err)
	}
	if m.syncErrors, err = meter.Int64Counter("weft.cni_node.netpol.sync.errors",
		metric.WithDescription("NetworkPolicy syncs that failed, by stage; each is retried as a full sync.")); err != nil {
		return nil, fmt.Errorf("create netpol sync error counter: %w", err)
	}
	if _, err := meter.Int64ObservableGauge("weft.cni_node.netpol.policies",
		metric.WithDescription("NetworkPolicies programmed on this node (selecting one of its pods), and policies with parts left out as invalid."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(m.programmed.Load(), metric.WithAttributes(attribute.String("state", "programmed")))
			o.Observe(m.invalid.Load(), metric.WithAttributes(attribute.String("state", "invalid")))
			return nil
		})); err != nil {
		return nil, fmt.Errorf("create netpol policies gauge: %w", err)
	}
	if _, err := meter.Int64ObservableGauge("weft.cni_node.netpol.isolated_pods",
		metric.WithDescription("Pods of this node isolated by at least one NetworkPolicy."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(m.isolated.Load())
			return nil
		})); err != nil {
		return nil, fmt.Errorf("create netpol isolated pods gauge: %w", err)
	}
	if _, err := meter.Int64ObservableCounter("weft.cni_node.netpol.dropped_packets", metric.WithUnit("{packet}"),
		metric.WithDescription("Packets dropped because no NetworkPolicy allowed them, by direction and namespace of the isolated pod."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			return observeDrops(kernel, o)
		})); err != nil {
		return nil, fmt.Errorf("create netpol drop counter: %w", err)
	}
	return m, nil
}

func observeDrops(kernel Kernel, o metric.Int64Observer) error {
	counters, err := kernel.DropCounters()
	if err != nil {
		return err
	}
	for name, packets := range counters {
		for _, d := range []Direction{Ingress, Egress} {
			if ns, ok := strings.CutPrefix(name, "drop-"+d.String()+"-"); ok {
				o.Observe(int64(packets), metric.WithAttributes(
					attribute.String("direction", d.String()), attribute.String("namespace", ns)))
			}
		}
	}
	return nil
}

func mode(full bool) attribute.KeyValue {
	if full {
		return attribute.String("mode", "full")
	}
	return attribute.String("mode", "partial")
}

func (m *Metrics) recordSync(ctx context.Context, full bool, took time.Duration, rs *Ruleset, invalid int) {
	m.syncDuration.Record(ctx, took.Seconds(), metric.WithAttributes(mode(full)))
	m.programmed.Store(int64(len(rs.Policies)))
	m.isolated.Store(int64(rs.Isolated))
	m.invalid.Store(int64(invalid))
}

func (m *Metrics) countError(ctx context.Context, stage string) {
	m.syncErrors.Add(ctx, 1, metric.WithAttributes(attribute.String("stage", stage)))
}
