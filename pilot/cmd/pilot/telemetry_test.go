package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftmesh/weft/pilot/generator"
)

func TestTelemetryFlags(t *testing.T) {
	got, err := telemetryFlags{accessLog: true, accessLogNamespaces: "shop, bookinfo", collector: "otel.weft-system.svc:4317", sampling: 5}.options()
	require.NoError(t, err)
	assert.Equal(t, generator.Telemetry{
		AccessLog: generator.AccessLog{Enabled: true, Namespaces: []string{"shop", "bookinfo"}},
		Tracing:   &generator.Tracing{CollectorHost: "otel.weft-system.svc", CollectorPort: 4317, SamplingPercent: 5},
	}, got)

	off, err := telemetryFlags{}.options()
	require.NoError(t, err)
	assert.Equal(t, generator.Telemetry{}, off)

	for _, bad := range []string{"otel", "otel:0", "otel:x"} {
		_, err := telemetryFlags{collector: bad}.options()
		assert.Error(t, err, bad)
	}
}
