package agent

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/pilot/caserver"
	"github.com/weftmesh/weft/pilot/telemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// createCertificate is the gRPC method's span name (otelgrpc).
const createCertificate = "weft.ca.v1.CertificateService/CreateCertificate"

// traced is one in-memory exporter behind two providers, so spans carry
// the service that made them, as the agent's and pilot's do in a cluster.
type traced struct {
	exp          *tracetest.InMemoryExporter
	agent, pilot *sdktrace.TracerProvider
}

func newTraced(t testing.TB) *traced {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	mk := func(service string) *sdktrace.TracerProvider {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
			sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))))
		t.Cleanup(func() { require.NoError(t, tp.Shutdown(context.Background())) })
		return tp
	}
	return &traced{exp: exp, agent: mk("weft-agent"), pilot: mk("weft-pilot")}
}

// ca is the option that makes startCA trace with pilot's provider.
func (tr *traced) ca(c *caserver.Config) { c.TracerProvider = tr.pilot }

func serviceOf(s tracetest.SpanStub) string {
	v, _ := s.Resource.Set().Value("service.name")
	return v.AsString()
}

// children are the spans whose parent is p, in the order they ended.
func children(spans tracetest.SpanStubs, p tracetest.SpanStub) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range spans {
		if s.Parent.SpanID() == p.SpanContext.SpanID() && s.SpanContext.TraceID() == p.SpanContext.TraceID() {
			out = append(out, s)
		}
	}
	return out
}

// onlyChild is p's one child called name.
func onlyChild(t *testing.T, spans tracetest.SpanStubs, p tracetest.SpanStub, name string) tracetest.SpanStub {
	t.Helper()
	var found tracetest.SpanStubs
	for _, c := range children(spans, p) {
		if c.Name == name {
			found = append(found, c)
		}
	}
	require.Len(t, found, 1, "children of %s called %s", p.Name, name)
	return found[0]
}

// assertCASign checks the chain under an agent.svid.fetch span: the
// agent's CLIENT span, pilot's SERVER span continuing it through the call's
// metadata, and pilot's ca.sign under that.
func assertCASign(t *testing.T, spans tracetest.SpanStubs, fetch tracetest.SpanStub, result string) tracetest.SpanStub {
	t.Helper()
	client := onlyChild(t, spans, fetch, createCertificate)
	assert.Equal(t, trace.SpanKindClient, client.SpanKind)
	assert.Equal(t, "weft-agent", serviceOf(client))
	server := onlyChild(t, spans, client, createCertificate)
	assert.Equal(t, trace.SpanKindServer, server.SpanKind)
	assert.Equal(t, "weft-pilot", serviceOf(server))
	assert.True(t, server.Parent.IsRemote(), "pilot's span continues a remote parent")
	sign := onlyChild(t, spans, server, caserver.SpanSign)
	assert.Equal(t, "weft-pilot", serviceOf(sign))
	assert.Equal(t, result, attrMap(sign)[caserver.AttrResult])
	return sign
}

// TestAgentStartTraceReachesCA: an agent on its own roots agent.start,
// each CSR attempt is a child (failures with status Error), and pilot's
// ca.sign continues the trace through real gRPC on loopback.
func TestAgentStartTraceReachesCA(t *testing.T) {
	tr := newTraced(t)
	c := startCA(t, tr.ca)
	c.auth.failNext = 1
	cfg := c.agentConfig(t, shortDir(t))
	cfg.TracerProvider = tr.agent
	a, _ := runAgent(t, cfg)
	select {
	case <-a.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("agent never became ready")
	}
	spans := waitSpans(t, tr.exp, SpanStart, 5*time.Second, time.Millisecond, "agent.start ends once the SVID is served")
	root := spanByName(t, spans, SpanStart)
	assert.False(t, root.Parent.IsValid())
	assert.Equal(t, codes.Ok, root.Status.Code)

	var fetches tracetest.SpanStubs
	for _, s := range children(spans, root) {
		if s.Name == SpanSVIDFetch {
			fetches = append(fetches, s)
		}
	}
	require.Len(t, fetches, 2, "one failed attempt, one good one")
	assert.Equal(t, "1", attrMap(fetches[0])[AttrAttempt])
	assert.Equal(t, codes.Error, fetches[0].Status.Code)
	assert.Contains(t, fetches[0].Status.Description, string(caserver.ReasonAuthUnavailable))
	refused := assertCASign(t, spans, fetches[0], caserver.ResultRefused)
	assert.Equal(t, string(caserver.ReasonAuthUnavailable), attrMap(refused)[caserver.AttrReason])
	assert.Equal(t, codes.Error, refused.Status.Code)

	good := fetches[1]
	assert.Equal(t, "2", attrMap(good)[AttrAttempt])
	assert.Equal(t, codes.Ok, good.Status.Code)
	assert.Equal(t, wantID, attrMap(good)[AttrSPIFFEID])
	serial := a.Current().Leaf().SerialNumber.Text(16)
	assert.Equal(t, serial, attrMap(good)[AttrSerial])
	sign := assertCASign(t, spans, good, caserver.ResultSigned)
	assert.Equal(t, map[attribute.Key]string{
		caserver.AttrResult: caserver.ResultSigned, caserver.AttrIdentity: wantID, caserver.AttrSerial: serial,
		caserver.AttrAuthCached: "false", caserver.AttrCallerPod: "default/p",
	}, attrMap(sign))

	sds := onlyChild(t, spans, root, SpanSDSUpdate)
	assert.Equal(t, serial, attrMap(sds)[AttrSerial])
	assert.False(t, sds.StartTime.Before(good.EndTime), "published after the fetch")
}

// TestRotationIsItsOwnTrace: a renewal is a new root, agent.svid.rotate,
// linked to the start, with its CSR (reaching pilot) and SDS update.
func TestRotationIsItsOwnTrace(t *testing.T) {
	tr := newTraced(t)
	c := startCA(t, tr.ca)
	cfg := c.agentConfig(t, shortDir(t))
	cfg.TracerProvider = tr.agent
	cfg.CertTTL, cfg.RenewFraction = 4*time.Second, 0.25
	runAgent(t, cfg)
	spans := waitSpans(t, tr.exp, SpanRotate, 10*time.Second, 10*time.Millisecond, "no renewal within 10s of a 4s SVID renewed at 25%")
	start, rotate := spanByName(t, spans, SpanStart), spanByName(t, spans, SpanRotate)
	assert.False(t, rotate.Parent.IsValid(), "a root")
	assert.NotEqual(t, start.SpanContext.TraceID(), rotate.SpanContext.TraceID(), "a trace of its own")
	require.Len(t, rotate.Links, 1)
	assert.Equal(t, start.SpanContext.SpanID(), rotate.Links[0].SpanContext.SpanID(), "linked to the start")
	assert.Equal(t, codes.Ok, rotate.Status.Code)
	fetch := onlyChild(t, spans, rotate, SpanSVIDFetch)
	assertCASign(t, spans, fetch, caserver.ResultSigned)
	sds := onlyChild(t, spans, rotate, SpanSDSUpdate)
	assert.Equal(t, attrMap(fetch)[AttrSerial], attrMap(sds)[AttrSerial])
	assert.NotEqual(t, attrMap(onlyChild(t, spans, start, SpanSDSUpdate))[AttrSerial], attrMap(sds)[AttrSerial], "a new certificate")
}

// TestNoTraceWithoutEndpoint: with the provider telemetry.Setup gives when
// no OTLP endpoint is configured the agent records nothing and sends no
// trace context, so pilot's span for its CSR is a root of its own.
func TestNoTraceWithoutEndpoint(t *testing.T) {
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "weft-agent", Getenv: func(string) string { return "" }})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	require.False(t, tel.OTLPTraces)

	tr := newTraced(t)
	c := startCA(t, tr.ca)
	cfg := c.agentConfig(t, shortDir(t))
	cfg.TracerProvider = tel.TracerProvider
	a, _ := runAgent(t, cfg)
	select {
	case <-a.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("agent never became ready")
	}
	spans := tr.exp.GetSpans()
	for _, s := range spans {
		assert.Equal(t, "weft-pilot", serviceOf(s), "only pilot traced: %s", s.Name)
	}
	server := spanByName(t, spans, createCertificate)
	assert.False(t, server.Parent.IsValid(), "no traceparent came with the CSR")
	assert.Equal(t, server.SpanContext.SpanID(), spanByName(t, spans, caserver.SpanSign).Parent.SpanID())
}

// TestSidecarStartTrace is the whole chain with a real Envoy: agent.start
// from the process start to the first readiness 200 through Envoy's
// readiness listener, with the CSR (continued by pilot), the SDS update,
// Envoy's start, its initialization (SDS, mTLS to pilot, first config) and
// the wait for the probe as children, in that order.
func TestSidecarStartTrace(t *testing.T) {
	pilotID, err := PilotID(td)
	require.NoError(t, err)
	tr := newTraced(t)
	e := newSidecarEnv(t, pilotID, tr.ca)
	e.cfg.Agent.TracerProvider = tr.agent
	e.cfg.Started = time.Now().Add(-50 * time.Millisecond)
	e.run(t)

	ready := loopURL(e.readinessPort, ReadinessPath)
	require.Eventually(t, func() bool {
		code, _, _, err := httpGet(ready)
		return err == nil && code == http.StatusOK
	}, 30*time.Second, 5*time.Millisecond, "the readiness listener never said ready")
	spans := waitSpans(t, tr.exp, SpanStart, 5*time.Second, time.Millisecond)

	root := spanByName(t, spans, SpanStart)
	assert.Equal(t, e.cfg.Started, root.StartTime)
	assert.Equal(t, codes.Ok, root.Status.Code)
	assert.Equal(t, "weft-agent", serviceOf(root))
	order := []string{SpanSVIDFetch, SpanSDSUpdate, SpanEnvoyStart, SpanEnvoyInit}
	// The wait for the probe is there unless the probe came within the
	// poll interval after LIVE (this test probes every 5 ms, the kubelet
	// every second).
	if len(children(spans, root)) == len(order)+1 {
		order = append(order, SpanStartupProbe)
	}
	var prev tracetest.SpanStub
	for i, name := range order {
		s := onlyChild(t, spans, root, name)
		assert.Equal(t, codes.Ok, s.Status.Code, name)
		if i > 0 {
			assert.False(t, s.StartTime.Before(prev.EndTime), "%s starts after %s ended", name, prev.Name)
		}
		prev = s
	}
	assert.Equal(t, root.EndTime, prev.EndTime, "the first readiness 200 ends the trace")
	assertCASign(t, spans, onlyChild(t, spans, root, SpanSVIDFetch), caserver.ResultSigned)
	for _, s := range spans {
		assert.False(t, s.EndTime.After(root.EndTime), "%s ends within the start", s.Name)
	}
	t.Logf("start chain:\n%s", spanTimeline(spans, root))
}

// spanTimeline renders a trace's spans by offset from root, for the log.
func spanTimeline(spans tracetest.SpanStubs, root tracetest.SpanStub) string {
	var b []byte
	for _, s := range spans {
		if s.SpanContext.TraceID() != root.SpanContext.TraceID() {
			continue
		}
		b = append(b, []byte("  "+s.Name+" ("+serviceOf(s)+") +"+s.StartTime.Sub(root.StartTime).Round(time.Microsecond).String()+
			" "+s.EndTime.Sub(s.StartTime).Round(time.Microsecond).String()+"\n")...)
	}
	return string(b)
}
