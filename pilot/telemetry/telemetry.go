// Package telemetry sets up the metrics pipeline shared by Weft's binaries:
// the OpenTelemetry metric API (https://opentelemetry.io/docs/specs/otel/metrics/api/)
// exported in the Prometheus text format on each component's metrics port
// (pilot 15014, weft-agent 15020), so components instrument once with OTel
// and are scraped like any Prometheus target.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Config names the component whose metrics are exported.
type Config struct {
	// ServiceName becomes the service.name resource attribute (target_info).
	ServiceName string
	// SetGlobal also installs the provider as OTel's global MeterProvider,
	// for libraries that only use otel.GetMeterProvider.
	SetGlobal bool
}

// Telemetry is a running metrics pipeline.
type Telemetry struct {
	// MeterProvider is what components take in their Config to create
	// instruments.
	MeterProvider metric.MeterProvider
	// Handler serves /metrics in the Prometheus exposition format.
	Handler http.Handler
	// Shutdown flushes and stops the provider.
	Shutdown func(context.Context) error
}

// Setup builds a MeterProvider backed by a private Prometheus registry (with
// Go runtime and process collectors) so tests and binaries never share
// global registry state.
func Setup(ctx context.Context, cfg Config) (*Telemetry, error) {
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
		resource.NewSchemaless(semconv.ServiceName(cfg.ServiceName)))
	if err != nil {
		return nil, fmt.Errorf("metrics resource: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
	if cfg.SetGlobal {
		otel.SetMeterProvider(mp)
	}
	return &Telemetry{
		MeterProvider: mp,
		Handler:       promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		Shutdown:      mp.Shutdown,
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
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
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
