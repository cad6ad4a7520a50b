package telemetry

import (
	"context"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	collmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	colltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
)

// collector is a minimal OTLP/gRPC receiver that remembers what it got.
type collector struct {
	colltrace.UnimplementedTraceServiceServer

	mu      sync.Mutex
	spans   []string
	metrics []string
	service []string
}

func (c *collector) Export(_ context.Context, req *colltrace.ExportTraceServiceRequest) (*colltrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				c.service = append(c.service, kv.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans = append(c.spans, s.GetName())
			}
		}
	}
	return &colltrace.ExportTraceServiceResponse{}, nil
}

type metricsServer struct {
	collmetrics.UnimplementedMetricsServiceServer
	c *collector
}

func (m metricsServer) Export(_ context.Context, req *collmetrics.ExportMetricsServiceRequest) (*collmetrics.ExportMetricsServiceResponse, error) {
	m.c.mu.Lock()
	defer m.c.mu.Unlock()
	for _, rm := range req.GetResourceMetrics() {
		for _, sm := range rm.GetScopeMetrics() {
			for _, x := range sm.GetMetrics() {
				m.c.metrics = append(m.c.metrics, x.GetName())
			}
		}
	}
	return &collmetrics.ExportMetricsServiceResponse{}, nil
}

func startCollector(t *testing.T) (*collector, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c := &collector{}
	s := grpc.NewServer()
	colltrace.RegisterTraceServiceServer(s, c)
	collmetrics.RegisterMetricsServiceServer(s, metricsServer{c: c})
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return c, "http://" + lis.Addr().String()
}

func TestSetupExportsOTLP(t *testing.T) {
	c, endpoint := startCollector(t)
	ctx := context.Background()
	tel, err := Setup(ctx, Config{ServiceName: "weft-test", OTLPEndpoint: endpoint, Getenv: func(string) string { return "" }})
	require.NoError(t, err)
	assert.True(t, tel.OTLPTraces)
	assert.True(t, tel.OTLPMetrics)

	_, span := tel.TracerProvider.Tracer("test").Start(ctx, "work")
	span.End()
	ctr, err := tel.MeterProvider.Meter("test").Int64Counter("weft.test.events", metric.WithUnit("{event}"))
	require.NoError(t, err)
	ctr.Add(ctx, 1)
	// Shutdown flushes both pipelines.
	require.NoError(t, tel.Shutdown(ctx))

	c.mu.Lock()
	defer c.mu.Unlock()
	assert.Equal(t, []string{"work"}, c.spans)
	assert.Equal(t, []string{"weft-test"}, c.service)
	assert.Contains(t, c.metrics, "weft.test.events")
}

func TestSetupWithoutCollector(t *testing.T) {
	env := map[string]string{}
	tel, err := Setup(context.Background(), Config{ServiceName: "weft-test", Getenv: func(k string) string { return env[k] }})
	require.NoError(t, err)
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	assert.False(t, tel.OTLPTraces)
	assert.False(t, tel.OTLPMetrics)
	_, span := tel.TracerProvider.Tracer("test").Start(context.Background(), "work")
	assert.False(t, span.IsRecording(), "without a collector tracing is a no-op")
	span.End()

	// The W3C propagator is global either way.
	assert.ElementsMatch(t, []string{"traceparent", "tracestate", "baggage"}, otel.GetTextMapPropagator().Fields())
}

func TestOTLPEnabledByEnvironment(t *testing.T) {
	for _, tc := range []struct {
		env             map[string]string
		traces, metrics bool
	}{
		{env: map[string]string{EnvOTLPEndpoint: "http://collector:4317"}, traces: true, metrics: true},
		{env: map[string]string{EnvOTLPTracesEndpoint: "http://collector:4317"}, traces: true},
		{env: map[string]string{EnvOTLPEndpoint: "http://c:4317", EnvMetricsExporter: "none"}, traces: true},
		{env: map[string]string{EnvOTLPEndpoint: "http://c:4317", EnvSDKDisabled: "true"}},
		{env: map[string]string{}},
	} {
		cfg := Config{Getenv: func(k string) string { return tc.env[k] }}
		assert.Equal(t, tc.traces, cfg.otlpEnabled("TRACES"), "%v", tc.env)
		assert.Equal(t, tc.metrics, cfg.otlpEnabled("METRICS"), "%v", tc.env)
	}
}
