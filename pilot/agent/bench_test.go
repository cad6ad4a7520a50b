package agent

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkStartToSDSReady measures a pod's identity bootstrap: from
// starting a fresh agent (new key, CSR over loopback TLS to an in-process
// CA) until Envoy's SDS stream has received the "default" secret.
//
//	go test -run '^$' -bench StartToSDSReady -benchtime 200x ./pilot/agent/
func BenchmarkStartToSDSReady(b *testing.B) {
	c := startCA(b)
	cfg := c.agentConfig(b, "")
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
		sds := dialSDSWhenUp(b, a)
		if _, ok := sds.next(b)[SecretDefault]; !ok {
			b.Fatal("no default secret")
		}
		lat = append(lat, time.Since(start))
		b.StopTimer()
		cancel()
		require.NoError(b, <-done)
		b.StartTimer()
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
