package telemetry

import (
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/codes"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
)

// EndSpan ends span with status Error and err recorded, or with status OK.
func EndSpan(span trace.Span, err error, opts ...trace.SpanEndOption) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	} else {
		span.SetStatus(codes.Ok, "")
	}
	span.End(opts...)
}

// GRPCClientTracing traces a client's calls: a CLIENT span each, whose
// W3C trace context travels in the call's metadata so the server
// continues the trace. With the no-op provider Setup returns without an
// OTLP endpoint there is no handler at all: nothing is sent or allocated.
func GRPCClientTracing(tp trace.TracerProvider) grpc.DialOption {
	if _, off := tp.(noop.TracerProvider); off {
		return grpc.EmptyDialOption{}
	}
	return grpc.WithStatsHandler(otelgrpc.NewClientHandler(grpcTracing(tp)...))
}

// GRPCServerTracing continues each caller's W3C trace context with a
// SERVER span per call; with the no-op provider there is no handler.
func GRPCServerTracing(tp trace.TracerProvider) grpc.ServerOption {
	if _, off := tp.(noop.TracerProvider); off {
		return grpc.EmptyServerOption{}
	}
	return grpc.StatsHandler(otelgrpc.NewServerHandler(grpcTracing(tp)...))
}

// grpcTracing leaves otelgrpc's RPC metrics out: the components' own
// metrics count and time the calls they make.
func grpcTracing(tp trace.TracerProvider) []otelgrpc.Option {
	return []otelgrpc.Option{
		otelgrpc.WithTracerProvider(tp),
		otelgrpc.WithMeterProvider(noopmetric.NewMeterProvider()),
		otelgrpc.WithPropagators(propagation.TraceContext{}),
	}
}
