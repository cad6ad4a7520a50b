package main

import (
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/weftmesh/weft/pilot/generator"
)

// telemetryFlags are the mesh's data-plane telemetry settings
// (generator.Telemetry). Pilot's own OTLP export is configured with the
// standard OTEL_EXPORTER_OTLP_* environment (pilot/telemetry).
type telemetryFlags struct {
	accessLog           bool
	accessLogNamespaces string
	collector           string
	sampling            float64
}

func (t *telemetryFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&t.accessLog, "access-log", false, "JSON access logs on every sidecar's stdout (pods opt in or out with label "+generator.LabelAccessLog+"=true|false)")
	fs.StringVar(&t.accessLogNamespaces, "access-log-namespaces", "", "comma-separated namespaces --access-log applies to (empty: all)")
	fs.StringVar(&t.collector, "tracing-collector", "", "host:port of an OTLP/gRPC collector sidecars send spans to (empty: no tracing)")
	fs.Float64Var(&t.sampling, "tracing-sampling", generator.DefaultSamplingPercent, "percent of requests without a sampled traceparent that start a trace")
}

// options turns the flags into generator.Telemetry.
func (t telemetryFlags) options() (generator.Telemetry, error) {
	out := generator.Telemetry{AccessLog: generator.AccessLog{Enabled: t.accessLog}}
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
	out.Tracing = &generator.Tracing{CollectorHost: host, CollectorPort: uint32(p), SamplingPercent: t.sampling}
	return out, nil
}
