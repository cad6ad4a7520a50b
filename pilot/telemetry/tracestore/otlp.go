package tracestore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// ServiceNameKey is the resource attribute a span's Service comes from
// (OpenTelemetry semantic conventions, service.name).
const ServiceNameKey = "service.name"

// FromOTLP converts an OTLP trace export
// (https://opentelemetry.io/docs/specs/otlp/) into spans. Spans whose trace
// or span ID has the wrong length are left out and counted in rejected;
// why says what was wrong with the first of them.
func FromOTLP(req *coltracepb.ExportTraceServiceRequest) (spans []Span, rejected int, why string) {
	for _, rs := range req.GetResourceSpans() {
		resource := attributes(rs.GetResource().GetAttributes())
		service := resource[ServiceNameKey]
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				out, err := fromOTLPSpan(sp)
				if err != nil {
					if rejected == 0 {
						why = err.Error()
					}
					rejected++
					continue
				}
				out.Service, out.Resource = service, resource
				spans = append(spans, out)
			}
		}
	}
	return spans, rejected, why
}

func fromOTLPSpan(sp *tracepb.Span) (Span, error) {
	if len(sp.GetTraceId()) != 16 {
		return Span{}, fmt.Errorf("span %q: trace id has %d bytes, want 16", sp.GetName(), len(sp.GetTraceId()))
	}
	if len(sp.GetSpanId()) != 8 {
		return Span{}, fmt.Errorf("span %q: span id has %d bytes, want 8", sp.GetName(), len(sp.GetSpanId()))
	}
	parent := ""
	switch n := len(sp.GetParentSpanId()); n {
	case 0:
	case 8:
		parent = hex.EncodeToString(sp.GetParentSpanId())
	default:
		return Span{}, fmt.Errorf("span %q: parent span id has %d bytes, want 8 or none", sp.GetName(), n)
	}
	return Span{
		TraceID:      hex.EncodeToString(sp.GetTraceId()),
		SpanID:       hex.EncodeToString(sp.GetSpanId()),
		ParentSpanID: parent,
		Name:         sp.GetName(),
		Kind:         spanKind(sp.GetKind()),
		Start:        unixNano(sp.GetStartTimeUnixNano()),
		End:          unixNano(sp.GetEndTimeUnixNano()),
		Status:       Status{Code: statusCode(sp.GetStatus().GetCode()), Message: sp.GetStatus().GetMessage()},
		Attributes:   attributes(sp.GetAttributes()),
	}, nil
}

func unixNano(ns uint64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(ns)).UTC()
}

func spanKind(k tracepb.Span_SpanKind) string {
	switch k {
	case tracepb.Span_SPAN_KIND_INTERNAL:
		return KindInternal
	case tracepb.Span_SPAN_KIND_SERVER:
		return KindServer
	case tracepb.Span_SPAN_KIND_CLIENT:
		return KindClient
	case tracepb.Span_SPAN_KIND_PRODUCER:
		return KindProducer
	case tracepb.Span_SPAN_KIND_CONSUMER:
		return KindConsumer
	default:
		return KindUnspecified
	}
}

func statusCode(c tracepb.Status_StatusCode) string {
	switch c {
	case tracepb.Status_STATUS_CODE_OK:
		return StatusOK
	case tracepb.Status_STATUS_CODE_ERROR:
		return StatusError
	default:
		return StatusUnset
	}
}

// attributes flattens OTLP key-values to strings: strings as they are,
// booleans and numbers in Go's formatting, bytes in hex, arrays and maps
// as JSON.
func attributes(kvs []*commonpb.KeyValue) map[string]string {
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		out[kv.GetKey()] = valueString(kv.GetValue())
	}
	return out
}

func valueString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	case *commonpb.AnyValue_BytesValue:
		return hex.EncodeToString(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue, *commonpb.AnyValue_KvlistValue:
		data, err := json.Marshal(jsonValue(v))
		if err != nil {
			return fmt.Sprint(jsonValue(v))
		}
		return string(data)
	default:
		return ""
	}
}

// jsonValue is v as a value encoding/json renders: arrays as lists and
// key-value lists as objects, scalars as their string forms' natural type.
func jsonValue(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_ArrayValue:
		out := make([]any, 0, len(x.ArrayValue.GetValues()))
		for _, e := range x.ArrayValue.GetValues() {
			out = append(out, jsonValue(e))
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		out := make(map[string]any, len(x.KvlistValue.GetValues()))
		for _, kv := range x.KvlistValue.GetValues() {
			out[kv.GetKey()] = jsonValue(kv.GetValue())
		}
		return out
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	default:
		return valueString(v)
	}
}

// Receiver is the OTLP/gRPC trace service
// (opentelemetry.proto.collector.trace.v1.TraceService) that feeds a
// Store. Malformed and dropped spans are reported back as OTLP partial
// success, which exporters log and do not retry.
type Receiver struct {
	coltracepb.UnimplementedTraceServiceServer
	Store *Store
}

// Export implements the TraceService.
func (r *Receiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	spans, rejected, why := FromOTLP(req)
	res := r.Store.Add(spans)
	var msgs []string
	if why != "" {
		msgs = append(msgs, why)
	}
	if res.Rejected > 0 {
		msgs = append(msgs, fmt.Sprintf("%d spans with malformed ids", res.Rejected))
	}
	if res.Dropped > 0 {
		msgs = append(msgs, fmt.Sprintf("%d spans dropped: their trace holds the maximum number of spans", res.Dropped))
	}
	out := &coltracepb.ExportTraceServiceResponse{}
	if n := rejected + res.Rejected + res.Dropped; n > 0 {
		out.PartialSuccess = &coltracepb.ExportTracePartialSuccess{
			RejectedSpans: int64(n), ErrorMessage: strings.Join(msgs, "; "),
		}
	}
	return out, nil
}
