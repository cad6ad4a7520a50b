package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/go-logr/logr"

	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/model"
)

// telemetryFlags are the mesh's default data-plane telemetry settings
// (generator.Telemetry), which Telemetry resources (mesh.weft.dev)
// override per namespace and, in the root namespace, mesh-wide. Pilot's own
// OTLP export is configured with the standard OTEL_EXPORTER_OTLP_*
// environment (pilot/telemetry).
type telemetryFlags struct {
	accessLog           bool
	accessLogNamespaces string
	collector           string
	sampling            float64
	tracing             bool
	requestMetrics      bool
}

func (t *telemetryFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&t.accessLog, "access-log", false, "JSON access logs on every sidecar's stdout (Telemetry resources override it per namespace; pods opt in or out with label "+generator.LabelAccessLog+"=true|false)")
	fs.StringVar(&t.accessLogNamespaces, "access-log-namespaces", "", "comma-separated namespaces --access-log applies to (empty: all)")
	fs.StringVar(&t.collector, "tracing-collector", "", "host:port of an OTLP/gRPC collector sidecars send spans to (empty: no tracing, and Telemetry resources cannot turn it on)")
	fs.BoolVar(&t.tracing, "tracing", true, "with --tracing-collector: sidecars trace by default; false: only where a Telemetry resource turns tracing on (in a namespace, or mesh-wide in the root namespace)")
	fs.Float64Var(&t.sampling, "tracing-sampling", generator.DefaultSamplingPercent, "percent of requests without a sampled traceparent that start a trace (Telemetry resources override it)")
	fs.BoolVar(&t.requestMetrics, "request-metrics", true, "servers' sidecars record request metrics (envoy_weft_*) naming both workloads, and clients' sidecars send the headers that name them (Telemetry resources override it: per namespace for recording, in the root namespace for the headers)")
}

// options turns the flags into generator.Telemetry.
func (t telemetryFlags) options() (generator.Telemetry, error) {
	out := generator.Telemetry{AccessLog: generator.AccessLog{Enabled: t.accessLog}, RequestMetricsDisabled: !t.requestMetrics}
	for _, ns := range strings.Split(t.accessLogNamespaces, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			out.AccessLog.Namespaces = append(out.AccessLog.Namespaces, ns)
		}
	}
	if t.collector == "" {
		return out, nil
	}
	host, port, err := net.SplitHostPort(t.collector)
	if err != nil {
		return out, fmt.Errorf("--tracing-collector %q: %w", t.collector, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return out, fmt.Errorf("--tracing-collector %q: bad port", t.collector)
	}
	out.Tracing = &generator.Tracing{CollectorHost: host, CollectorPort: uint32(p), SamplingPercent: t.sampling, Off: !t.tracing}
	return out, nil
}

// tracingWarner logs, once per generation of each, the Telemetries in
// force whose tracing settings have no effect because pilot has no
// --tracing-collector (their status says so too, but only the leader
// writes status). Model events only poke it.
type tracingWarner struct {
	mesh   *model.Store
	poke   chan struct{}
	logged map[model.Key]int64
}

// newTracingWarner subscribes to mesh at once, so no Telemetry event that
// arrives before run starts is missed.
func newTracingWarner(mesh *model.Store) *tracingWarner {
	w := &tracingWarner{mesh: mesh, poke: make(chan struct{}, 1), logged: map[model.Key]int64{}}
	mesh.Subscribe(func(e model.Event) {
		if e.Kind == model.KindTelemetry {
			select {
			case w.poke <- struct{}{}:
			default:
			}
		}
	})
	return w
}

func (w *tracingWarner) run(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.poke:
		}
		for _, p := range w.unlogged(w.mesh.View()) {
			log.Info("Telemetry sets tracing but pilot has no --tracing-collector: its tracing settings have no effect",
				"telemetry", p.Key().String(), "generation", p.Generation)
		}
	}
}

// unlogged returns the Telemetries in force in v that would turn tracing
// on and were not reported at their current generation, and records them.
func (w *tracingWarner) unlogged(v *model.View) []*model.TelemetryPolicy {
	var out []*model.TelemetryPolicy
	for _, p := range v.Telemetries() {
		if v.TelemetryWinner(p.Namespace) != p || !p.Settings.SetsTracing() {
			continue
		}
		if gen, ok := w.logged[p.Key()]; ok && gen == p.Generation {
			continue
		}
		w.logged[p.Key()] = p.Generation
		out = append(out, p)
	}
	return out
}
