package node

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/weftmesh/weft/cni-plugin/opstats"
)

func TestCNIOperationMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	m, err := NewMetrics(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	require.NoError(t, err)
	dir := t.TempDir()
	a := &Agent{cfg: Config{IPAMDataDir: dir}, metrics: m}
	require.NoError(t, opstats.Append(dir, opstats.Record{Plugin: "weft-bridge", Command: "ADD", Seconds: 0.02}))
	require.NoError(t, opstats.Append(dir, opstats.Record{Plugin: "weft-redirect", Command: "ADD", Seconds: 0.3, Error: "11"}))
	require.NoError(t, a.drainOps(context.Background()))

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	got := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, x := range sm.Metrics {
			got[x.Name] = x
		}
	}
	dur := got[MetricCNIOperationDuration]
	assert.Equal(t, "s", dur.Unit)
	results := map[string]uint64{}
	for _, dp := range dur.Data.(metricdata.Histogram[float64]).DataPoints {
		plugin, _ := dp.Attributes.Value("plugin")
		result, _ := dp.Attributes.Value("result")
		cmd, _ := dp.Attributes.Value("command")
		assert.Equal(t, "ADD", cmd.AsString())
		results[plugin.AsString()+"/"+result.AsString()] = dp.Count
	}
	assert.Equal(t, map[string]uint64{"weft-bridge/ok": 1, "weft-redirect/error": 1}, results)

	errs := got[MetricCNIOperationErrors]
	assert.Equal(t, "{error}", errs.Unit)
	dps := errs.Data.(metricdata.Sum[int64]).DataPoints
	require.Len(t, dps, 1)
	assert.Equal(t, attribute.NewSet(attribute.String("plugin", "weft-redirect"), attribute.String("command", "ADD"),
		attribute.String("code", "11")), dps[0].Attributes)
}
