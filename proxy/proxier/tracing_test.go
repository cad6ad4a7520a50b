package proxier

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/weftmesh/weft/pilot/telemetry/netprog"
	"github.com/weftmesh/weft/proxy/internal/fixtures"
)

// TestSyncSpansPerSliceChange: once the informers synced, every slice
// change a sync applies becomes a weft-proxy.sync span in the change's
// trace; the initial list does not, and a failed sync's changes end with
// the sync that finally applies them.
func TestSyncSpansPerSliceChange(t *testing.T) {
	e := newEnv(t)
	exp := tracetest.NewInMemoryExporter()
	e.p.cfg.Tracing = netprog.NewSyncRecorder(netprog.SyncConfig{
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)), Node: fixtures.NodeName,
	})
	e.track.SetSlice(fixtures.Slice("demo", "web", "http", 8080, v1.ProtocolTCP, "10.244.1.2@local"))
	e.sync(t)
	assert.Empty(t, exp.GetSpans(), "the initial state is not a change")

	e.p.Synced()
	es := fixtures.Slice("demo", "web", "http", 8080, v1.ProtocolTCP, "10.244.1.2@local", "10.244.2.3")
	es.UID, es.ResourceVersion = types.UID("slice-uid"), "77"
	e.track.SetSlice(es)
	e.kernel.FailRestore = func([]byte) error { return errors.New("xtables lock busy") }
	require.Error(t, e.p.Sync(context.Background()))
	assert.Empty(t, exp.GetSpans(), "not applied yet")
	e.kernel.FailRestore = nil
	e.clock.Step(time.Second)
	e.sync(t)

	spans := exp.GetSpans()
	require.Len(t, spans, 1)
	s := spans[0]
	assert.Equal(t, netprog.SpanSync, s.Name)
	assert.Equal(t, netprog.FromEndpointSlice(es, false, time.Time{}).TraceID(), s.SpanContext.TraceID())
	got := map[string]string{}
	for _, kv := range s.Attributes {
		got[string(kv.Key)] = kv.Value.Emit()
	}
	assert.Equal(t, fixtures.NodeName, got[string(netprog.AttrNode)])
	assert.Equal(t, "77", got[string(netprog.AttrResourceVersion)])
	assert.Equal(t, "demo", got[string(netprog.AttrNamespace)])
	assert.Equal(t, "full", got[string(netprog.AttrSyncMode)], "the retry after a failure is a full sync")
	assert.NotEqual(t, "0", got[string(netprog.AttrRulesWritten)])
	assert.True(t, e.clock.Now().Equal(s.EndTime), "the span ends when the rules were applied")
}
