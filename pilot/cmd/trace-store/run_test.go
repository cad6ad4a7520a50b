package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/pilot/telemetry/tracestore"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TestExportedSpansAreQueryable: the OpenTelemetry SDK's OTLP/gRPC
// exporter (gzip, as the collector's exporter sends by default) feeds the
// store, and the HTTP API answers with what was exported.
func TestExportedSpansAreQueryable(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	store, err := tracestore.New(tracestore.Config{})
	require.NoError(t, err)
	otlpLis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	httpLis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, logr.Discard(), store, otlpLis, httpLis) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done, "a cancelled context is a clean stop")
	})

	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(otlpLis.Addr().String()),
		otlptracegrpc.WithInsecure(), otlptracegrpc.WithCompressor("gzip"))
	require.NoError(t, err)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "weft-pilot"))))
	tr := tp.Tracer("test")
	rootCtx, root := tr.Start(ctx, "endpointslice.change")
	_, child := tr.Start(rootCtx, "pilot.push", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("weft.xds.status", "ACK")))
	child.End()
	root.End()
	require.NoError(t, tp.Shutdown(ctx))
	traceID := root.SpanContext().TraceID().String()

	var list tracestore.ListResponse
	getJSON(t, "http://"+httpLis.Addr().String()+"/api/traces?name=endpointslice.change&service=weft-pilot", &list)
	require.Len(t, list.Traces, 1)
	assert.Equal(t, traceID, list.Traces[0].TraceID)
	assert.Equal(t, 2, list.Traces[0].SpanCount)

	var tr1 tracestore.TraceResponse
	getJSON(t, "http://"+httpLis.Addr().String()+"/api/traces/"+traceID, &tr1)
	require.Len(t, tr1.Spans, 2)
	push := tr1.Spans[1]
	assert.Equal(t, "pilot.push", push.Name)
	assert.Equal(t, root.SpanContext().SpanID().String(), push.ParentSpanID)
	assert.Equal(t, "SERVER", push.Kind)
	assert.Equal(t, "ACK", push.Attributes["weft.xds.status"])
	assert.Equal(t, "weft-pilot", push.Service)
}

func getJSON(t *testing.T, url string, into any) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	res, err := c.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.NoError(t, json.NewDecoder(res.Body).Decode(into))
}

func TestRunRejectsBadBoundsAndAddresses(t *testing.T) {
	err := run(context.Background(), options{otlpAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0",
		store: tracestore.Config{MaxSpansPerTrace: 10, MaxSpans: 1}})
	assert.ErrorContains(t, err, "below max spans per trace")
	err = run(context.Background(), options{otlpAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:99999"})
	assert.ErrorContains(t, err, "listen http 127.0.0.1:99999")
}
