package xds

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weftmesh/weft/pilot/model"
	mt "github.com/weftmesh/weft/pilot/model/modeltest"
	"github.com/weftmesh/weft/pilot/telemetry/netprog"
)

type observed struct {
	reader *sdkmetric.ManualReader
	spans  *tracetest.InMemoryExporter
}

func withTelemetry(o *observed) func(*Config) {
	o.reader = sdkmetric.NewManualReader()
	o.spans = tracetest.NewInMemoryExporter()
	return func(c *Config) {
		c.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(o.reader))
		c.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithSyncer(o.spans), sdktrace.WithIDGenerator(netprog.IDGenerator()))
	}
}

func (o *observed) metrics(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, o.reader.Collect(context.Background(), &rm))
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

func spanAttr(s tracetest.SpanStub, k attribute.Key) attribute.Value {
	for _, kv := range s.Attributes {
		if kv.Key == k {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// TestEndpointChangeIsTracedToEveryACK: one EndpointSlice change yields one
// trace with a pilot.push span per affected proxy, each ending at its ACK,
// under the change's root span, plus the convergence metric.
func TestEndpointChangeIsTracedToEveryACK(t *testing.T) {
	var o observed
	h := startServer(t, withTelemetry(&o))
	clients := map[string]bool{"productpage-1": false, "reviews-1": true, "db-1": true}
	for pod, delta := range clients {
		h.client(pod, spiffe(ns, map[string]string{"productpage-1": "productpage", "reviews-1": "reviews", "db-1": "db"}[pod]), delta, nil)
	}
	for pod := range clients {
		h.waitSynced(pod + "." + ns)
	}

	svc, _ := h.store.View().Service(model.Key{Namespace: ns, Name: "reviews"})
	r1, _ := h.store.Pod(model.Key{Namespace: ns, Name: "reviews-1"})
	r3 := mt.Pod(ns, "reviews-3", "reviews", "10.0.2.12", "reviews", true)
	es := mt.Slice(svc, r1, r3)
	es.UID, es.ResourceVersion = "5e1f-uid", "4242"
	h.store.UpsertEndpointSlice(es)
	change := netprog.Change{UID: es.UID, ResourceVersion: es.ResourceVersion}

	var root tracetest.SpanStub
	deadline := time.Now().Add(10 * time.Second)
	for root.Name == "" {
		for _, s := range o.spans.GetSpans() {
			if s.Name == netprog.SpanChange {
				root = s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no root span; spans: %v", o.spans.GetSpans())
		}
		time.Sleep(10 * time.Millisecond)
	}
	assert.Equal(t, change.TraceID(), root.SpanContext.TraceID())
	assert.Equal(t, int64(3), spanAttr(root, netprog.AttrAffected).AsInt64(), "every proxy of the namespace sees reviews")
	assert.Equal(t, "4242", spanAttr(root, netprog.AttrResourceVersion).AsString())
	assert.Equal(t, "reviews", spanAttr(root, netprog.AttrService).AsString())

	proxies := map[string]bool{}
	for _, s := range o.spans.GetSpans() {
		if s.Name != netprog.SpanPush {
			continue
		}
		assert.Equal(t, change.TraceID(), s.SpanContext.TraceID())
		assert.Equal(t, root.SpanContext.SpanID(), s.Parent.SpanID())
		assert.Equal(t, "ACK", spanAttr(s, netprog.AttrStatus).AsString())
		assert.Contains(t, spanAttr(s, netprog.AttrTypeURLs).AsStringSlice(), resource.EndpointType)
		assert.Equal(t, attribute.INVALID, spanAttr(s, netprog.AttrResourceVersion).Type(), "the root carries the change")
		assert.False(t, s.EndTime.Before(s.StartTime))
		proxies[spanAttr(s, netprog.AttrProxyID).AsString()] = true
	}
	assert.Equal(t, map[string]bool{"productpage-1.shop": true, "reviews-1.shop": true, "db-1.shop": true}, proxies)

	m := o.metrics(t)
	conv := m[MetricConvergence]
	assert.Equal(t, "s", conv.Unit)
	hist := conv.Data.(metricdata.Histogram[float64])
	require.Len(t, hist.DataPoints, 1)
	assert.Equal(t, uint64(1), hist.DataPoints[0].Count)
	status, _ := hist.DataPoints[0].Attributes.Value("status")
	assert.Equal(t, "ACK", status.AsString())

	conn := m[MetricConnectedProxies].Data.(metricdata.Gauge[int64])
	byAPI := map[string]int64{}
	for _, dp := range conn.DataPoints {
		api, _ := dp.Attributes.Value("api")
		byAPI[api.AsString()] = dp.Value
	}
	assert.Equal(t, map[string]int64{"delta": 2, "sotw": 1}, byAPI)
	assert.Equal(t, "{proxy}", m[MetricConnectedProxies].Unit)

	pushes := m[MetricPushes].Data.(metricdata.Sum[int64])
	types := map[string]bool{}
	for _, dp := range pushes.DataPoints {
		typ, _ := dp.Attributes.Value("type")
		types[typ.AsString()] = dp.Value > 0
	}
	assert.Equal(t, map[string]bool{"CDS": true, "EDS": true, "LDS": true, "RDS": true}, types)
	assert.Equal(t, "By", m[MetricSnapshotSize].Unit)
	assert.NotZero(t, m[MetricSnapshotSize].Data.(metricdata.Histogram[float64]).DataPoints[0].Count)
	assert.NotZero(t, m[MetricPushDuration].Data.(metricdata.Histogram[float64]).DataPoints[0].Count)
	assert.NotZero(t, m[MetricGenerateDuration].Data.(metricdata.Histogram[float64]).DataPoints[0].Count)
}

func TestNACKsAreCounted(t *testing.T) {
	var o observed
	h := startServer(t, withTelemetry(&o))
	h.client("productpage-1", spiffe(ns, "productpage"), true, func(url string, _ []*anypb.Any) error {
		if url == resource.ListenerType {
			return errors.New("bad listener")
		}
		return nil
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if typeStatus(h.srv.SyncStatus(), "productpage-1.shop", "LDS").State == NACKed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("NACK not recorded")
		}
		time.Sleep(5 * time.Millisecond)
	}
	nacks := o.metrics(t)[MetricNACKs]
	assert.Equal(t, "{nack}", nacks.Unit)
	dps := nacks.Data.(metricdata.Sum[int64]).DataPoints
	require.Len(t, dps, 1)
	typ, _ := dps[0].Attributes.Value("type")
	assert.Equal(t, "LDS", typ.AsString())
}
