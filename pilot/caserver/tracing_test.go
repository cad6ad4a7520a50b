package caserver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	cav1 "github.com/weftmesh/weft/api/ca/v1"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"
)

// tracedCall sends a CSR with the token and a W3C traceparent, as an
// agent with tracing on does.
func (e *env) tracedCall(t *testing.T, token, traceparent string, csrDER []byte) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token, "traceparent", traceparent)
	_, err := cav1.NewCertificateServiceClient(e.conn).CreateCertificate(ctx, &cav1.CreateCertificateRequest{CsrDer: csrDER})
	return err
}

func spanAttrs(s tracetest.SpanStub) map[attribute.Key]string {
	out := map[attribute.Key]string{}
	for _, kv := range s.Attributes {
		out[kv.Key] = kv.Value.Emit()
	}
	return out
}

// TestSignSpanContinuesCallersTrace: every call is a SERVER span that
// continues the caller's traceparent, with ca.sign under it saying what
// happened: signed (identity, serial, whether the token review was
// cached) or refused (reason, status Error).
func TestSignSpanContinuesCallersTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { require.NoError(t, tp.Shutdown(context.Background())) })
	e := newEnv(t, func(c *Config) { c.TracerProvider = tp })

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	parents := []string{"00f067aa0ba902b7", "00f067aa0ba902b8", "00f067aa0ba902b9"}
	require.NoError(t, e.tracedCall(t, "tok-a", "00-"+traceID+"-"+parents[0]+"-01", csrFor(t, newKey(t), spiffeA)))
	require.NoError(t, e.tracedCall(t, "tok-a", "00-"+traceID+"-"+parents[1]+"-01", csrFor(t, newKey(t), spiffeA)))
	err := e.tracedCall(t, "tok-forged", "00-"+traceID+"-"+parents[2]+"-01", csrFor(t, newKey(t), spiffeA))
	require.Error(t, err)

	spans := exp.GetSpans()
	require.Len(t, spans, 6, "a SERVER span and ca.sign per call")
	var servers, signs []tracetest.SpanStub
	for _, s := range spans {
		switch s.Name {
		case "weft.ca.v1.CertificateService/CreateCertificate":
			servers = append(servers, s)
		case SpanSign:
			signs = append(signs, s)
		}
	}
	require.Len(t, servers, 3)
	require.Len(t, signs, 3)
	for i, srv := range servers {
		assert.Equal(t, trace.SpanKindServer, srv.SpanKind)
		assert.Equal(t, traceID, srv.SpanContext.TraceID().String(), "the caller's trace")
		assert.Equal(t, parents[i], srv.Parent.SpanID().String(), "the caller's span is the parent")
		assert.True(t, srv.Parent.IsRemote())
		assert.Equal(t, srv.SpanContext.SpanID(), signs[i].Parent.SpanID(), "ca.sign under the call")
	}

	first := spanAttrs(signs[0])
	serial := first[AttrSerial]
	assert.NotEmpty(t, serial)
	assert.Equal(t, map[attribute.Key]string{
		AttrResult: ResultSigned, AttrIdentity: spiffeA, AttrSerial: serial,
		AttrAuthCached: "false", AttrCallerPod: "default/pod-a",
	}, first)
	assert.Equal(t, codes.Ok, signs[0].Status.Code)
	assert.Equal(t, "true", spanAttrs(signs[1])[AttrAuthCached], "the second call's token review came from the cache")

	refused := spanAttrs(signs[2])
	assert.Equal(t, map[attribute.Key]string{AttrResult: ResultRefused, AttrReason: string(ReasonInvalidToken)}, refused,
		"no identity: the token did not authenticate")
	assert.Equal(t, codes.Error, signs[2].Status.Code)
	assert.Contains(t, signs[2].Status.Description, string(ReasonInvalidToken)+":")
}
