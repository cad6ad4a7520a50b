package telemetry

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric"
)

func TestSetupExportsPrometheusNames(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	tel, err := Setup(ctx, Config{ServiceName: "weft-test"})
	require.NoError(t, err)
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()

	m := tel.MeterProvider.Meter("test")
	c, err := m.Int64Counter("weft_test_events", metric.WithDescription("Events."))
	require.NoError(t, err)
	c.Add(ctx, 3)
	h, err := m.Float64Histogram("weft_test_duration", metric.WithUnit("s"))
	require.NoError(t, err)
	h.Record(ctx, 0.25)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, lis, tel.Handler) }()

	resp, err := http.Get("http://" + lis.Addr().String() + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Contains(t, string(body), "weft_test_events_total 3")
	assert.Contains(t, string(body), "weft_test_duration_seconds_count 1")
	assert.Contains(t, string(body), `service_name="weft-test"`)
	assert.Contains(t, string(body), "go_goroutines")

	cancel()
	require.NoError(t, <-done)
}
