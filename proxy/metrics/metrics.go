// Package metrics defines weft-proxy's metrics with the OpenTelemetry metric
// API; pilot/telemetry exports them in Prometheus format like every Weft
// binary. The names follow kube-proxy's sync_proxy_rules_* family so
// dashboards translate one to one.
package metrics

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// latencyBuckets suit both a 1 ms partial sync and a minute-long full sync
// of a huge cluster.
var latencyBuckets = []float64{0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300}

// Metrics are the instruments the proxier records into.
type Metrics struct {
	syncDuration       metric.Float64Histogram
	lastSync           metric.Float64Gauge
	rulesWritten       metric.Int64Counter
	rules              metric.Int64Gauge
	networkProgramming metric.Float64Histogram
	restoreFailures    metric.Int64Counter
	skippedServices    metric.Int64Gauge
	conntrackDeleted   metric.Int64Counter
}

// New creates the instruments on a meter.
func New(meter metric.Meter) (*Metrics, error) {
	var m Metrics
	var errs [8]error
	m.syncDuration, errs[0] = meter.Float64Histogram("weft_proxy_sync_proxy_rules_duration",
		metric.WithUnit("s"), metric.WithDescription("Time to plan and apply one successful sync of the Service rules, by mode (full or partial)."),
		metric.WithExplicitBucketBoundaries(latencyBuckets...))
	m.lastSync, errs[1] = meter.Float64Gauge("weft_proxy_sync_proxy_rules_last_timestamp",
		metric.WithUnit("s"), metric.WithDescription("Unix time of the last successful sync."))
	m.rulesWritten, errs[2] = meter.Int64Counter("weft_proxy_sync_proxy_rules_written",
		metric.WithDescription("Rules written to the kernel by iptables-restore, by mode."))
	m.rules, errs[3] = meter.Int64Gauge("weft_proxy_iptables_rules",
		metric.WithDescription("Rules weft-proxy holds in the kernel after the last sync, by table."))
	m.networkProgramming, errs[4] = meter.Float64Histogram("weft_proxy_network_programming_duration",
		metric.WithUnit("s"), metric.WithDescription("Time from an EndpointSlice change (its last-change-trigger-time) until its rules were applied."),
		metric.WithExplicitBucketBoundaries(latencyBuckets...))
	m.restoreFailures, errs[5] = meter.Int64Counter("weft_proxy_iptables_restore_failures",
		metric.WithDescription("Failed iptables-restore runs, by mode; each is retried as a full sync."))
	m.skippedServices, errs[6] = meter.Int64Gauge("weft_proxy_skipped_services",
		metric.WithDescription("Services (or ports) left out because this node cannot program them."))
	m.conntrackDeleted, errs[7] = meter.Int64Counter("weft_proxy_conntrack_stale_entries_deleted",
		metric.WithDescription("Stale UDP conntrack entries deleted after endpoint changes."))
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("create metric instrument: %w", err)
		}
	}
	return &m, nil
}

func mode(full bool) attribute.KeyValue {
	if full {
		return attribute.String("mode", "full")
	}
	return attribute.String("mode", "partial")
}

// Sync is what one successful sync reports.
type Sync struct {
	Full                  bool
	Duration              time.Duration
	At                    time.Time
	Written               int
	NATRules, FilterRules int
	Skipped               int
}

// RecordSync records a successful sync.
func (m *Metrics) RecordSync(ctx context.Context, s Sync) {
	m.syncDuration.Record(ctx, s.Duration.Seconds(), metric.WithAttributes(mode(s.Full)))
	m.lastSync.Record(ctx, float64(s.At.UnixNano())/1e9)
	m.rulesWritten.Add(ctx, int64(s.Written), metric.WithAttributes(mode(s.Full)))
	m.rules.Record(ctx, int64(s.NATRules), metric.WithAttributes(attribute.String("table", "nat")))
	m.rules.Record(ctx, int64(s.FilterRules), metric.WithAttributes(attribute.String("table", "filter")))
	m.skippedServices.Record(ctx, int64(s.Skipped))
}

// RecordFailure records a failed sync attempt. Its duration is not part of
// the sync-duration histogram, which describes syncs that took effect.
func (m *Metrics) RecordFailure(ctx context.Context, full bool) {
	m.restoreFailures.Add(ctx, 1, metric.WithAttributes(mode(full)))
}

// RecordProgramming records the network-programming latency of one change.
func (m *Metrics) RecordProgramming(ctx context.Context, d time.Duration) {
	m.networkProgramming.Record(ctx, d.Seconds())
}

// RecordConntrack records deleted stale conntrack entries.
func (m *Metrics) RecordConntrack(ctx context.Context, n int) {
	m.conntrackDeleted.Add(ctx, int64(n))
}
