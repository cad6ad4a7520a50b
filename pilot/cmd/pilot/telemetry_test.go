package main

import (
	"flag"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/model"
)

func TestTelemetryFlags(t *testing.T) {
	got, err := telemetryFlags{accessLog: true, accessLogNamespaces: "shop, bookinfo", collector: "otel.weft-system.svc:4317", sampling: 5,
		tracing: true, requestMetrics: true}.options()
	require.NoError(t, err)
	assert.Equal(t, generator.Telemetry{
		AccessLog: generator.AccessLog{Enabled: true, Namespaces: []string{"shop", "bookinfo"}},
		Tracing:   &generator.Tracing{CollectorHost: "otel.weft-system.svc", CollectorPort: 4317, SamplingPercent: 5},
	}, got)

	off, err := telemetryFlags{}.options()
	require.NoError(t, err)
	assert.Equal(t, generator.Telemetry{RequestMetricsDisabled: true}, off)

	for _, bad := range []string{"otel", "otel:0", "otel:x"} {
		_, err := telemetryFlags{collector: bad}.options()
		assert.Error(t, err, bad)
	}
}

// TestRequestMetricsFlag: request metrics are on unless
// --request-metrics=false.
func TestRequestMetricsFlag(t *testing.T) {
	for _, tc := range []struct {
		args         []string
		wantDisabled bool
	}{
		{args: nil},
		{args: []string{"--request-metrics=true"}},
		{args: []string{"--request-metrics=false"}, wantDisabled: true},
	} {
		var f telemetryFlags
		fs := flag.NewFlagSet("pilot", flag.ContinueOnError)
		f.register(fs)
		require.NoError(t, fs.Parse(tc.args))
		got, err := f.options()
		require.NoError(t, err)
		assert.Equal(t, tc.wantDisabled, got.RequestMetricsDisabled, "%v", tc.args)
	}
}

// TestTracingFlag: with a collector, tracing is on by default unless
// --tracing=false makes it opt-in (Tracing.Off).
func TestTracingFlag(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantOff bool
	}{
		{args: []string{"--tracing-collector=otel:4317"}},
		{args: []string{"--tracing-collector=otel:4317", "--tracing=false"}, wantOff: true},
	} {
		var f telemetryFlags
		fs := flag.NewFlagSet("pilot", flag.ContinueOnError)
		f.register(fs)
		require.NoError(t, fs.Parse(tc.args))
		got, err := f.options()
		require.NoError(t, err)
		require.NotNil(t, got.Tracing, "%v", tc.args)
		assert.Equal(t, tc.wantOff, got.Tracing.Off, "%v", tc.args)
	}
}

func TestTracingWarnerLogsOncePerGeneration(t *testing.T) {
	mesh := model.NewStore(model.StoreConfig{RootNamespace: "weft-system"})
	w := newTracingWarner(mesh)
	on := model.TelemetrySettings{SamplingPercent: model.Some(5.0)}
	keys := func(ps []*model.TelemetryPolicy) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Key().String())
		}
		return out
	}
	mesh.UpsertTelemetry(&model.TelemetryPolicy{Namespace: "shop", Name: "a", Generation: 1, Settings: on})
	mesh.UpsertTelemetry(&model.TelemetryPolicy{Namespace: "shop", Name: "b", Generation: 1, Settings: on}) // loses to a
	mesh.UpsertTelemetry(&model.TelemetryPolicy{Namespace: "bill", Name: "off", Generation: 1,
		Settings: model.TelemetrySettings{TracingDisabled: model.Some(true)}})
	select {
	case <-w.poke:
	default:
		t.Fatal("a Telemetry event did not poke the warner")
	}
	assert.Equal(t, []string{"shop/a"}, keys(w.unlogged(mesh.View())))
	assert.Empty(t, w.unlogged(mesh.View()), "logged twice")
	mesh.UpsertTelemetry(&model.TelemetryPolicy{Namespace: "shop", Name: "a", Generation: 2, Settings: on})
	assert.Equal(t, []string{"shop/a"}, keys(w.unlogged(mesh.View())), "a new generation is logged again")
}
