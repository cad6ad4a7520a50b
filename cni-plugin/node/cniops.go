package node

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/weftmesh/weft/cni-plugin/opstats"
)

// Metrics of the CNI commands the plugins ran on this node. The plugins
// are short-lived binaries without a metrics endpoint; they spool each
// command's outcome in the IPAM data directory (package opstats) and every
// sync drains it here, so the numbers lag by up to one sync.
const (
	MetricCNIOperationDuration = "weft.cni.operation.duration"
	MetricCNIOperationErrors   = "weft.cni.operation.errors"
)

type opsMetrics struct {
	duration metric.Float64Histogram
	errors   metric.Int64Counter
	dropped  metric.Int64Counter
}

func newOpsMetrics(meter metric.Meter) (*opsMetrics, error) {
	var m opsMetrics
	var err error
	if m.duration, err = meter.Float64Histogram(MetricCNIOperationDuration, metric.WithUnit("s"),
		metric.WithDescription("Time a CNI command took in a Weft plugin, by plugin, command (ADD, DEL, CHECK) and result (ok or error)."),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)); err != nil {
		return nil, fmt.Errorf("create cni operation histogram: %w", err)
	}
	if m.errors, err = meter.Int64Counter(MetricCNIOperationErrors, metric.WithUnit("{error}"),
		metric.WithDescription("CNI commands a Weft plugin failed, by plugin, command and CNI error code (\"error\" when it has none).")); err != nil {
		return nil, fmt.Errorf("create cni operation error counter: %w", err)
	}
	if m.dropped, err = meter.Int64Counter("weft.cni.operation.unreadable", metric.WithUnit("{record}"),
		metric.WithDescription("Spooled CNI command records that could not be parsed (torn writes).")); err != nil {
		return nil, fmt.Errorf("create cni operation unreadable counter: %w", err)
	}
	return &m, nil
}

func (m *opsMetrics) record(ctx context.Context, recs []opstats.Record, bad int) {
	for _, r := range recs {
		attrs := []attribute.KeyValue{attribute.String("plugin", r.Plugin), attribute.String("command", r.Command)}
		result := "ok"
		if r.Error != "" {
			result = "error"
			m.errors.Add(ctx, 1, metric.WithAttributes(append(attrs, attribute.String("code", r.Error))...))
		}
		m.duration.Record(ctx, r.Seconds, metric.WithAttributes(append(attrs, attribute.String("result", result))...))
	}
	if bad > 0 {
		m.dropped.Add(ctx, int64(bad))
	}
}

// drainOps moves the plugins' spooled command outcomes into the metrics.
func (a *Agent) drainOps(ctx context.Context) error {
	recs, bad, err := opstats.Drain(a.cfg.IPAMDataDir)
	a.metrics.ops.record(ctx, recs, bad)
	return err
}
