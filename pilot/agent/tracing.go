package agent

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/weftmesh/weft/pilot/telemetry"
)

// TracerName is the instrumentation scope of weft-agent's spans.
const TracerName = "github.com/weftmesh/weft/pilot/agent"

// Span names of weft-agent (docs/observability.md). One trace, rooted at
// SpanStart, follows a pod's sidecar from process start to the first
// passing readiness check, after which the kubelet starts the app
// containers; every SVID renewal is a trace of its own (SpanRotate).
const (
	// SpanStart is the root: agent start → first readiness answer 200.
	SpanStart = "agent.start"
	// SpanSVIDFetch is one CSR to pilot's CA (token, key, CSR, call,
	// verification); failed attempts are spans with status Error. pilot's
	// ca.sign span is a descendant through the gRPC call.
	SpanSVIDFetch = "agent.svid.fetch"
	// SpanSDSUpdate publishes the SVID to SDS and the Workload API; the
	// first one is when Envoy may start.
	SpanSDSUpdate = "agent.sds.update"
	// SpanEnvoyStart is starting the Envoy process (the first one).
	SpanEnvoyStart = "agent.envoy.start"
	// SpanEnvoyInit is Envoy started → Envoy LIVE: it fetched its secrets
	// over SDS, connected to pilot with mTLS and applied the first
	// clusters and listeners.
	SpanEnvoyInit = "agent.envoy.init"
	// SpanStartupProbe is Envoy LIVE → the first readiness answer 200,
	// i.e. waiting for the kubelet's startup probe (period 1 s). It is
	// absent when that answer came before the agent's poll of Envoy's
	// admin API (every livePollInterval) noticed LIVE.
	SpanStartupProbe = "agent.startup_probe"
	// SpanRotate is one renewal: from the renewal time until the new SVID
	// is served, with its fetch attempts and SDS update as children and a
	// link to the start trace.
	SpanRotate = "agent.svid.rotate"
)

// Span attributes of weft-agent.
const (
	AttrSPIFFEID     = attribute.Key("weft.spiffe_id")
	AttrAttempt      = attribute.Key("weft.svid.attempt")
	AttrSerial       = attribute.Key("weft.svid.serial")
	AttrNotAfter     = attribute.Key("weft.svid.not_after")
	AttrEnvoyPID     = attribute.Key("weft.envoy.pid")
	AttrEnvoyStarted = attribute.Key("weft.envoy.started")
)

// svidAttrs describe an issued SVID on a span.
func svidAttrs(s *SVID) []attribute.KeyValue {
	return []attribute.KeyValue{
		AttrSPIFFEID.String(s.ID.String()),
		AttrSerial.String(s.Leaf().SerialNumber.Text(16)),
		AttrNotAfter.String(s.Leaf().NotAfter.UTC().Format(time.RFC3339)),
	}
}

// errStopped ends a span whose work the agent's shutdown interrupted.
var errStopped = errors.New("stopped before done")

// stoppedIfNil is err, or errStopped when obtain gave up without an SVID
// and without an error (ctx ended).
func stoppedIfNil(s *SVID, err error) error {
	if s == nil && err == nil {
		return errStopped
	}
	return err
}

// startSpan continues the start trace in ctx, or begins one when ctx has
// none (an Agent run on its own, without Sidecar); end closes only a span
// begun here.
func startSpan(ctx context.Context, tracer trace.Tracer) (context.Context, func(error)) {
	if trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, func(error) {}
	}
	ctx, span := tracer.Start(ctx, SpanStart)
	return ctx, func(err error) { telemetry.EndSpan(span, err) }
}
