// Command trace-store keeps the mesh's recent traces in memory for
// `meshctl trace`, `meshctl dashboard` and the e2e suite. It runs beside
// the OpenTelemetry Collector in the weft-otel-collector pod: the collector
// exports traces to it over OTLP/gRPC on loopback (--otlp-addr), and it
// answers the JSON query API of pilot/telemetry/tracestore on --http-addr.
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/weftmesh/weft/pilot/telemetry/tracestore"
)

// options are trace-store's flags.
type options struct {
	otlpAddr string
	httpAddr string
	store    tracestore.Config
}

func main() {
	var o options
	flag.StringVar(&o.otlpAddr, "otlp-addr", "127.0.0.1:4319", "listen address of the OTLP/gRPC trace receiver (the collector's exporter)")
	flag.StringVar(&o.httpAddr, "http-addr", ":16686", "listen address of the query API")
	flag.IntVar(&o.store.MaxTraces, "max-traces", tracestore.DefaultMaxTraces, "traces kept; the oldest is evicted beyond")
	flag.IntVar(&o.store.MaxSpansPerTrace, "max-spans-per-trace", tracestore.DefaultMaxSpansPerTrace, "spans kept per trace; later ones are dropped")
	flag.IntVar(&o.store.MaxSpans, "max-spans", tracestore.DefaultMaxSpans, "spans kept in all traces together; the oldest traces are evicted beyond")
	flag.Parse()

	logger := logr.FromSlogHandler(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(logr.NewContext(ctx, logger), o); err != nil {
		logger.Error(err, "trace-store failed")
		stop()
		os.Exit(1)
	}
}
