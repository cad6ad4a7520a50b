package tracestore

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func kv(k string, v *commonpb.AnyValue) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: v}
}

func request(spans ...*tracepb.Span) *coltracepb.ExportTraceServiceRequest {
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "weft-proxy"), str("k8s.node.name", "node-1")}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}},
	}}}
}

func otlpSpan(trace, span, parent []byte, name string) *tracepb.Span {
	return &tracepb.Span{
		TraceId: trace, SpanId: span, ParentSpanId: parent, Name: name,
		Kind:              tracepb.Span_SPAN_KIND_SERVER,
		StartTimeUnixNano: uint64(t0.UnixNano()), EndTimeUnixNano: uint64(t0.Add(1500 * time.Microsecond).UnixNano()),
		Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "NACK: bad cluster"},
	}
}

var (
	traceBytes  = []byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	spanBytes   = []byte{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	parentBytes = []byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}
)

func TestFromOTLPConvertsEveryField(t *testing.T) {
	sp := otlpSpan(traceBytes, spanBytes, parentBytes, "weft-proxy.sync")
	sp.Attributes = []*commonpb.KeyValue{
		str("k8s.namespace.name", "shop"),
		kv("weft.proxy.rules_written", &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 42}}),
		kv("weft.superseded", &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}),
		kv("ratio", &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 0.25}}),
		kv("raw", &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte{0xca, 0xfe}}}),
		kv("weft.xds.type_urls", &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{
			Values: []*commonpb.AnyValue{{Value: &commonpb.AnyValue_StringValue{StringValue: "EDS"}}, {Value: &commonpb.AnyValue_IntValue{IntValue: 2}}}}}}),
		kv("map", &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{
			Values: []*commonpb.KeyValue{kv("on", &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: false}})}}}}),
		kv("empty", &commonpb.AnyValue{}),
	}
	spans, rejected, why := FromOTLP(request(sp))
	assert.Zero(t, rejected)
	assert.Empty(t, why)
	require.Len(t, spans, 1)
	assert.Equal(t, Span{
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", ParentSpanID: "0102030405060708",
		Name: "weft-proxy.sync", Service: "weft-proxy", Kind: KindServer,
		Start: t0, End: t0.Add(1500 * time.Microsecond),
		Status: Status{Code: StatusError, Message: "NACK: bad cluster"},
		Attributes: map[string]string{
			"k8s.namespace.name": "shop", "weft.proxy.rules_written": "42", "weft.superseded": "true",
			"ratio": "0.25", "raw": "cafe", "weft.xds.type_urls": `["EDS",2]`, "map": `{"on":false}`, "empty": "",
		},
		Resource: map[string]string{"service.name": "weft-proxy", "k8s.node.name": "node-1"},
	}, spans[0])
}

func TestFromOTLPKindsAndStatuses(t *testing.T) {
	for k, want := range map[tracepb.Span_SpanKind]string{
		tracepb.Span_SPAN_KIND_UNSPECIFIED: KindUnspecified, tracepb.Span_SPAN_KIND_INTERNAL: KindInternal,
		tracepb.Span_SPAN_KIND_SERVER: KindServer, tracepb.Span_SPAN_KIND_CLIENT: KindClient,
		tracepb.Span_SPAN_KIND_PRODUCER: KindProducer, tracepb.Span_SPAN_KIND_CONSUMER: KindConsumer,
	} {
		assert.Equal(t, want, spanKind(k))
	}
	for c, want := range map[tracepb.Status_StatusCode]string{
		tracepb.Status_STATUS_CODE_UNSET: StatusUnset, tracepb.Status_STATUS_CODE_OK: StatusOK, tracepb.Status_STATUS_CODE_ERROR: StatusError,
	} {
		assert.Equal(t, want, statusCode(c))
	}
	sp := otlpSpan(traceBytes, spanBytes, nil, "root")
	sp.Status = nil
	spans, _, _ := FromOTLP(request(sp))
	require.Len(t, spans, 1)
	assert.Equal(t, Status{Code: StatusUnset}, spans[0].Status, "no status is UNSET")
	assert.Empty(t, spans[0].ParentSpanID)
}

func TestFromOTLPRejectsMalformedIDsAndKeepsTheRest(t *testing.T) {
	spans, rejected, why := FromOTLP(request(
		otlpSpan(traceBytes[:8], spanBytes, nil, "short-trace"),
		otlpSpan(traceBytes, spanBytes[:4], nil, "short-span"),
		otlpSpan(traceBytes, spanBytes, []byte{1}, "short-parent"),
		otlpSpan(traceBytes, spanBytes, nil, "good"),
	))
	assert.Equal(t, 3, rejected)
	assert.Equal(t, `span "short-trace": trace id has 8 bytes, want 16`, why)
	require.Len(t, spans, 1)
	assert.Equal(t, "good", spans[0].Name)
}

func TestReceiverReportsPartialSuccess(t *testing.T) {
	s := newStore(t, Config{MaxSpansPerTrace: 1})
	r := &Receiver{Store: s}
	other := append([]byte(nil), spanBytes...)
	other[7]++
	res, err := r.Export(context.Background(), request(
		otlpSpan(traceBytes, spanBytes, nil, "kept"),
		otlpSpan(traceBytes, other, spanBytes, "dropped: trace full"),
		otlpSpan(traceBytes[:3], spanBytes, nil, "malformed"),
	))
	require.NoError(t, err, "bad spans are partial success, not an error the exporter retries")
	require.NotNil(t, res.PartialSuccess)
	assert.EqualValues(t, 2, res.PartialSuccess.RejectedSpans)
	assert.Contains(t, res.PartialSuccess.ErrorMessage, "trace id has 3 bytes")
	assert.Contains(t, res.PartialSuccess.ErrorMessage, "1 spans dropped")
	assert.Equal(t, 1, s.Stats().Spans)

	res, err = r.Export(context.Background(), request(otlpSpan(traceBytes, spanBytes, nil, "again")))
	require.NoError(t, err)
	assert.Nil(t, res.PartialSuccess, "full success has no partial_success")
}
