package caserver

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// TracerName is the instrumentation scope of the CA's spans.
const TracerName = "github.com/weftmesh/weft/pilot/caserver"

// SpanSign is one CSR on pilot's side: authentication, rate limit, pod
// binding and signing. It is the child of the gRPC SERVER span, which
// continues the agent's trace from the W3C traceparent in the call's
// metadata, so a pod's agent.start trace shows where its CSR's time went.
const SpanSign = "ca.sign"

// Attributes of SpanSign.
const (
	// AttrResult is "signed" or "refused"; a refusal also sets the span's
	// status to Error with the message the agent gets.
	AttrResult = attribute.Key("weft.ca.result")
	// AttrReason is the refusal Reason (the label of
	// weft_ca_csr_refused_total).
	AttrReason = attribute.Key("weft.ca.refusal_reason")
	// AttrIdentity is the SPIFFE ID derived from the token.
	AttrIdentity = attribute.Key("weft.spiffe_id")
	// AttrCallerPod is the pod the token is bound to (namespace/name).
	AttrCallerPod = attribute.Key("weft.ca.caller_pod")
	// AttrAuthCached says the token review came from the cache.
	AttrAuthCached = attribute.Key("weft.ca.auth_cached")
	// AttrSerial is the issued certificate's serial number (hex).
	AttrSerial = attribute.Key("weft.svid.serial")
)

// Values of AttrResult.
const (
	ResultSigned  = "signed"
	ResultRefused = "refused"
)

// startSign opens SpanSign under the call's span.
func (s *Server) startSign(ctx context.Context) (context.Context, trace.Span) {
	return s.tracer.Start(ctx, SpanSign)
}

// endSign records the outcome on span and ends it.
func endSign(span trace.Span, w string, serial string, r Reason, err error) {
	if w != "" {
		span.SetAttributes(AttrIdentity.String(w))
	}
	if err != nil {
		span.SetAttributes(AttrResult.String(ResultRefused), AttrReason.String(string(r)))
		span.SetStatus(codes.Error, err.Error())
	} else {
		span.SetAttributes(AttrResult.String(ResultSigned), AttrSerial.String(serial))
		span.SetStatus(codes.Ok, "")
	}
	span.End()
}
