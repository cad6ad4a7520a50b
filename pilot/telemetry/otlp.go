package telemetry

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/weftmesh/weft/pilot/telemetry/netprog"
)

// Environment variables of the OpenTelemetry SDK specification
// (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/
// and .../protocol/exporter/) that decide whether a signal is exported over
// OTLP. The exporters read the rest (headers, TLS, timeouts) themselves.
const (
	EnvOTLPEndpoint        = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvOTLPTracesEndpoint  = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvOTLPMetricsEndpoint = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
	EnvTracesExporter      = "OTEL_TRACES_EXPORTER"
	EnvMetricsExporter     = "OTEL_METRICS_EXPORTER"
	EnvSDKDisabled         = "OTEL_SDK_DISABLED"
)

// otlpEnabled says whether signal ("TRACES" or "METRICS") goes to an OTLP
// collector: an endpoint is configured and the signal's exporter is not
// "none".
func (c Config) otlpEnabled(signal string) bool {
	env := c.Getenv
	if strings.EqualFold(env(EnvSDKDisabled), "true") {
		return false
	}
	if strings.EqualFold(env("OTEL_"+signal+"_EXPORTER"), "none") {
		return false
	}
	return c.OTLPEndpoint != "" || env(EnvOTLPEndpoint) != "" || env("OTEL_EXPORTER_OTLP_"+signal+"_ENDPOINT") != ""
}

// otlpMetricReader pushes metrics to the collector every MetricInterval
// (zero: OTEL_METRIC_EXPORT_INTERVAL, else 60s), next to the Prometheus
// pull endpoint.
func otlpMetricReader(ctx context.Context, cfg Config) (sdkmetric.Reader, error) {
	var opts []otlpmetricgrpc.Option
	if cfg.OTLPEndpoint != "" {
		opts = append(opts, otlpmetricgrpc.WithEndpointURL(cfg.OTLPEndpoint))
	}
	exp, err := otlpmetricgrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("otlp metric exporter: %w", err)
	}
	var ropts []sdkmetric.PeriodicReaderOption
	if cfg.MetricInterval > 0 {
		ropts = append(ropts, sdkmetric.WithInterval(cfg.MetricInterval))
	}
	return sdkmetric.NewPeriodicReader(exp, ropts...), nil
}

// tracerProvider exports spans over OTLP/gRPC in batches when an endpoint
// is configured, and is a no-op otherwise, so instrumented code costs
// nothing in a mesh without a collector. The sampler is the SDK's default,
// ParentBased(AlwaysOn), unless OTEL_TRACES_SAMPLER says otherwise; the ID
// generator lets netprog emit deterministic root spans.
func tracerProvider(ctx context.Context, cfg Config, res *resource.Resource) (trace.TracerProvider, func(context.Context) error, error) {
	if !cfg.otlpEnabled("TRACES") {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	var opts []otlptracegrpc.Option
	if cfg.OTLPEndpoint != "" {
		opts = append(opts, otlptracegrpc.WithEndpointURL(cfg.OTLPEndpoint))
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	bopts := []sdktrace.BatchSpanProcessorOption{}
	if cfg.TraceBatchTimeout > 0 {
		bopts = append(bopts, sdktrace.WithBatchTimeout(cfg.TraceBatchTimeout))
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, bopts...),
		sdktrace.WithResource(res),
		sdktrace.WithIDGenerator(netprog.IDGenerator()),
	)
	return tp, tp.Shutdown, nil
}
