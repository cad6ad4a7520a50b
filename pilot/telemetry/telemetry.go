// Package telemetry sets up the telemetry pipeline shared by Weft's
// binaries: the OpenTelemetry metric API
// (https://opentelemetry.io/docs/specs/otel/metrics/api/) exported in the
// Prometheus text format on each component's metrics port (pilot 15014,
// weft-agent 15020), so components instrument once with OTel and are
// scraped like any Prometheus target; and, when an OTLP collector is
// configured (OTEL_EXPORTER_OTLP_ENDPOINT or Config.OTLPEndpoint), the same
// metrics pushed over OTLP/gRPC plus traces. W3C trace context
// (https://www.w3.org/TR/trace-context/) is the global propagator either way.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Version is the build's version, set at link time
// (-X github.com/weftmesh/weft/pilot/telemetry.Version=...; `make images`
// stamps the upgrade test's second build "next"). Every component reports
// it as the service.version resource attribute, i.e. in target_info on its
// /metrics and on every span, so an upgrade can be seen component by
// component.
var Version = "dev"

// Config names the component whose metrics are exported.
type Config struct {
	// ServiceName becomes the service.name resource attribute (target_info).
	ServiceName string
	// SetGlobal also installs the providers as OTel's global MeterProvider
	// and TracerProvider, for libraries that only use otel.Get*Provider.
	SetGlobal bool
	// OTLPEndpoint is the collector's OTLP/gRPC URL (http://host:4317 for
	// plaintext, https://... for TLS). Empty means the standard
	// environment variables (OTEL_EXPORTER_OTLP_ENDPOINT and the
	// per-signal _TRACES_/_METRICS_ variants); with neither, nothing is
	// pushed over OTLP and tracing is a no-op.
	OTLPEndpoint string
	// MetricInterval is how often metrics are pushed over OTLP; zero means
	// OTEL_METRIC_EXPORT_INTERVAL or the SDK's 60s.
	MetricInterval time.Duration
	// TraceBatchTimeout bounds how long a finished span waits to be
	// exported; zero means the SDK's default (OTEL_BSP_SCHEDULE_DELAY or
	// 5s).
	TraceBatchTimeout time.Duration
	// Getenv reads the environment; os.Getenv when nil (tests inject it).
	Getenv func(string) string
}

// Telemetry is a running metrics pipeline.
type Telemetry struct {
	// MeterProvider is what components take in their Config to create
	// instruments.
	MeterProvider metric.MeterProvider
	// TracerProvider creates spans; a no-op provider when no OTLP endpoint
	// is configured.
	TracerProvider trace.TracerProvider
	// OTLPMetrics and OTLPTraces say what is pushed to a collector (for
	// the start-up log line).
	OTLPMetrics, OTLPTraces bool
	// Handler serves /metrics in the Prometheus exposition format.
	Handler http.Handler
	// Shutdown flushes and stops the provider.
	Shutdown func(context.Context) error
}

// Setup builds a MeterProvider backed by a private Prometheus registry (with
// Go runtime and process collectors) so tests and binaries never share
// global registry state, plus the OTLP exporters the configuration asks
// for.
func Setup(ctx context.Context, cfg Config) (*Telemetry, error) {
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("register go collector: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("register process collector: %w", err)
	}
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(),
		resource.NewSchemaless(semconv.ServiceName(cfg.ServiceName), semconv.ServiceVersion(Version)))
	if err != nil {
		return nil, fmt.Errorf("metrics resource: %w", err)
	}
	mopts := []sdkmetric.Option{sdkmetric.WithReader(exp), sdkmetric.WithResource(res)}
	otlpMetrics := cfg.otlpEnabled("METRICS")
	if otlpMetrics {
		r, err := otlpMetricReader(ctx, cfg)
		if err != nil {
			return nil, err
		}
		mopts = append(mopts, sdkmetric.WithReader(r))
	}
	mp := sdkmetric.NewMeterProvider(mopts...)
	tp, tpShutdown, err := tracerProvider(ctx, cfg, res)
	if err != nil {
		return nil, errors.Join(err, mp.Shutdown(ctx))
	}
	// Always W3C trace context (and baggage), so a traceparent that
	// arrives on any request continues the caller's trace.
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if cfg.SetGlobal {
		otel.SetMeterProvider(mp)
		otel.SetTracerProvider(tp)
	}
	return &Telemetry{
		MeterProvider:  mp,
		TracerProvider: tp,
		OTLPMetrics:    otlpMetrics,
		OTLPTraces:     cfg.otlpEnabled("TRACES"),
		Handler:        promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		Shutdown: func(ctx context.Context) error {
			// Traces first: their exporter may still record metrics.
			return errors.Join(tpShutdown(ctx), mp.Shutdown(ctx))
		},
	}, nil
}

// Serve serves h under /metrics on addr until ctx is done, then shuts the
// server down gracefully. It is the metrics listener of every Weft binary.
func Serve(ctx context.Context, addr string, h http.Handler) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen metrics %s: %w", addr, err)
	}
	return ServeListener(ctx, lis, h)
}

// ServeListener is Serve on an existing listener (tests use port 0).
func ServeListener(ctx context.Context, lis net.Listener, h http.Handler) error {
	// A ServeMux is served as it is (pilot adds /debug/syncz next to
	// /metrics); any other handler is the metrics handler.
	mux, ok := h.(*http.ServeMux)
	if !ok {
		mux = http.NewServeMux()
		mux.Handle("/metrics", h)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	logr.FromContextOrDiscard(ctx).Info("serving metrics", "addr", lis.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve metrics: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown metrics server: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve metrics: %w", err)
	}
	return nil
}
