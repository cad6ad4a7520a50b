package agent

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/pilot/caserver"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/time/rate"
)

// discard is a span exporter that drops everything, so the benchmark
// measures the instrumentation and the SDK's batch processor, not a
// collector.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkStartToSDSReady measures a pod's identity bootstrap: from
// starting a fresh agent (new key, CSR over loopback TLS to an in-process
// CA) until Envoy's SDS stream has received the "default" secret, with
// tracing off (the no-op provider of a mesh without a collector) and on
// (agent and CA both recording, batched to a discarding exporter).
//
//	go test -run '^$' -bench StartToSDSReady -benchtime 200x ./pilot/agent/
func BenchmarkStartToSDSReady(b *testing.B) {
	b.Run("tracing=off", func(b *testing.B) { benchStart(b, noop.NewTracerProvider()) })
	b.Run("tracing=on", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}))
		b.Cleanup(func() { require.NoError(b, tp.Shutdown(context.Background())) })
		benchStart(b, tp)
	})
}

func benchStart(b *testing.B, tp trace.TracerProvider) {
	// One identity asks b.N times: without rate.Inf the CA's per-identity
	// budget (burst 50, then 10/s) and the agent's backoff would be what
	// is measured after the 50th iteration.
	c := startCA(b, func(cfg *caserver.Config) { cfg.TracerProvider, cfg.Rate = tp, rate.Inf })
	cfg := c.agentConfig(b, "")
	cfg.TracerProvider = tp
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		cfg.SDSSocket, cfg.WorkloadSocket = socketPaths(shortDir(b))
		a, err := New(cfg)
		require.NoError(b, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		b.StartTimer()
		start := time.Now()
		go func() { done <- a.Run(ctx) }()
		waitListening(b, a)
		sds, closeSDS := openSDS(b, a.cfg.SDSSocket, SecretDefault)
		if _, ok := sds.next(b)[SecretDefault]; !ok {
			b.Fatal("no default secret")
		}
		lat = append(lat, time.Since(start))
		b.StopTimer()
		closeSDS()
		cancel()
		require.NoError(b, <-done)
		b.StartTimer()
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
