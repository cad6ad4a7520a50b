package xds

import (
	"fmt"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/model"
	mt "github.com/weftmesh/weft/pilot/model/modeltest"
)

// telemetryWorld is three namespaces a, b and c, each with one HTTP
// Service and one meshed pod; every proxy sees every Service. Pilot's
// flags trace at 10%.
func telemetryWorld(t *testing.T) (*Server, *model.Store, map[string]*proxy) {
	t.Helper()
	st := model.NewStore(model.StoreConfig{RootNamespace: "weft-system"})
	s, err := New(Config{Model: st, Authenticator: headerAuthenticator{}, FullConsistencyCheck: true,
		Generator: generator.Options{Telemetry: generator.Telemetry{Tracing: &generator.Tracing{
			CollectorHost: "weft-otel-collector.weft-system.svc.cluster.local", CollectorPort: 4317, SamplingPercent: 10}}}})
	if err != nil {
		t.Fatal(err)
	}
	proxies := map[string]*proxy{}
	for i, n := range []string{"a", "b", "c"} {
		pod := mt.Pod(n, "app-1", "app", "10.0.0."+string(rune('1'+i)), "app", true)
		svc := mt.Service(n, "app", "10.96.0."+string(rune('1'+i)), "app", mt.Port("http", 80, 8080))
		st.UpsertPod(pod)
		st.UpsertService(svc)
		st.UpsertEndpointSlice(mt.Slice(svc, pod))
	}
	for _, n := range []string{"a", "b", "c"} {
		pod, _ := st.View().Pod(model.Key{Namespace: n, Name: "app-1"})
		proxies[n] = s.connect(t.Context(), &corev3.Node{Id: "app-1." + n}, pod, spiffeid.RequireFromString(spiffe(n, "app")), true)
	}
	return s, st, proxies
}

// cached is what go-control-plane's cache of type url holds for p.
func cached(t *testing.T, s *Server, p *proxy, url string) map[string]types.Resource {
	t.Helper()
	snap, err := s.caches.byURL[url].GetSnapshot(p.nodeID)
	if err != nil {
		t.Fatal(err)
	}
	return snap.GetResources(url)
}

// samplings reads the random sampling of a proxy's current snapshot, as
// the tracing detour's random route in each route table the listener
// uses (-1: no such route, tracing off): the outbound RDS tables, the
// inbound plaintext chains' inline tables (mTLS callers sampled already).
func samplings(t *testing.T, s *Server, p *proxy, listener string) []float64 {
	t.Helper()
	l, ok := cached(t, s, p, resource.ListenerType)[listener].(*listenerv3.Listener)
	if !ok {
		t.Fatalf("%s: no listener %s", p.nodeID, listener)
	}
	rds := cached(t, s, p, resource.RouteType)
	plaintext := func(fc *listenerv3.FilterChain) bool { return fc.GetTransportSocket() == nil }
	var out []float64
	for _, h := range hcmsOf(t, l, plaintext) {
		rc := h.GetRouteConfig()
		if name := h.GetRds().GetRouteConfigName(); name != "" {
			rc, _ = rds[name].(*routev3.RouteConfiguration)
		}
		pct := -1.0
		for _, r := range rc.GetVirtualHosts()[0].GetRoutes() {
			if frac := r.GetMatch().GetRuntimeFraction(); frac != nil && strings.HasPrefix(r.GetRoute().GetCluster(), "traced|") {
				pct = float64(frac.GetDefaultValue().GetNumerator()) / 1e4
			}
		}
		out = append(out, pct)
	}
	if len(out) == 0 {
		t.Fatalf("%s: listener %s has no plaintext HTTP connection manager", p.nodeID, listener)
	}
	return out
}

func wantSampling(t *testing.T, s *Server, p *proxy, want float64) {
	t.Helper()
	for _, l := range []string{generator.ListenerOutbound, generator.ListenerInbound} {
		for _, got := range samplings(t, s, p, l) {
			if got != want {
				t.Errorf("%s %s: sampling %v, want %v (-1: off)", p.nodeID, l, got, want)
			}
		}
	}
}

// A namespace's Telemetry reaches its proxies' snapshots and no others;
// it does not rebuild the per-Service fragments, and namespaces with the
// same effective tracing keep sharing one outbound part.
func TestTelemetryReachesOnlyItsNamespace(t *testing.T) {
	s, st, proxies := telemetryWorld(t)
	part := func(n string) *part {
		t.Helper()
		out, err := s.outbound(st.View(), n)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, n := range []string{"a", "b", "c"} {
		wantSampling(t, s, proxies[n], 10)
	}
	if part("a") != part("b") || part("b") != part("c") {
		t.Fatal("namespaces that see the same Services do not share an outbound part")
	}
	before := map[string]*builtSnapshot{}
	for n, p := range proxies {
		before[n] = p.last
	}
	f1, err := s.fragmentsFor(st.View())
	if err != nil {
		t.Fatal(err)
	}

	// c samples 50%; b says "on", which is what the flags say already.
	st.UpsertTelemetry(&model.TelemetryPolicy{Namespace: "c", Name: "default", Generation: 1,
		Settings: model.TelemetrySettings{TracingDisabled: model.Some(false), SamplingPercent: model.Some(50.0)}})
	st.UpsertTelemetry(&model.TelemetryPolicy{Namespace: "b", Name: "default", Generation: 1,
		Settings: model.TelemetrySettings{TracingDisabled: model.Some(false)}})
	s.pushAll(t.Context())

	wantSampling(t, s, proxies["a"], 10)
	wantSampling(t, s, proxies["b"], 10)
	wantSampling(t, s, proxies["c"], 50)
	for n, p := range proxies {
		if same := sameVersions(before[n], p.last); same != (n != "c") {
			t.Errorf("%s: snapshot unchanged = %v, want a new one only in c", n, same)
		}
	}
	// The sampling is in the detour routes: the outbound route tables
	// (RDS) and the inbound listener's inline ones (LDS).
	for url, v := range before["c"].versions {
		want := url == resource.ListenerType || url == resource.RouteType
		if changed := proxies["c"].last.versions[url] != v; changed != want {
			t.Errorf("c: %s changed = %v, want only LDS and RDS", shortTypes[url], changed)
		}
	}
	if part("a") != part("b") {
		t.Error("a and b have the same tracing but no longer share an outbound part")
	}
	if part("a") == part("c") {
		t.Error("c's tracing differs but it shares a's outbound part")
	}
	f2, err := s.fragmentsFor(st.View())
	if err != nil {
		t.Fatal(err)
	}
	for k, f := range f2.bySvc {
		if f1.bySvc[k] != f {
			t.Errorf("%s: fragment rebuilt for a namespace's Telemetry", k)
		}
	}

	// The root namespace's Telemetry is mesh-wide: it turns tracing off in
	// a and b (fragments rebuilt without a tracer); c's own Telemetry
	// keeps it on there.
	st.UpsertTelemetry(&model.TelemetryPolicy{Namespace: "weft-system", Name: "mesh", Generation: 1,
		Settings: model.TelemetrySettings{TracingDisabled: model.Some(true)}})
	s.pushAll(t.Context())
	wantSampling(t, s, proxies["a"], -1)
	wantSampling(t, s, proxies["c"], 50)
	// b said "on" explicitly, which beats the root's "off".
	wantSampling(t, s, proxies["b"], 10)
	f3, err := s.fragmentsFor(st.View())
	if err != nil {
		t.Fatal(err)
	}
	for k, f := range f3.bySvc {
		if f2.bySvc[k] == f {
			t.Errorf("%s: fragment kept across a mesh-wide tracing change", k)
		}
	}
	// Tracing off or on, the traced outbound listener and its scopes stay
	// (generator's Telemetry.collector): only route tables and the
	// inbound listener change.
	for _, n := range []string{"a", "c"} {
		snap := proxies[n].last.snap
		if _, ok := snap.GetResources(resource.ClusterType)[generator.ClusterOTelCollector]; !ok {
			t.Errorf("%s: no collector cluster", n)
		}
		if _, ok := snap.GetResources(resource.ListenerType)[generator.ListenerTracedOutbound]; !ok {
			t.Errorf("%s: no traced outbound listener", n)
		}
		if len(snap.GetResources(resource.ScopedRouteType)) == 0 {
			t.Errorf("%s: no SRDS scopes", n)
		}
	}
	if before, after := before["a"].versions[resource.ScopedRouteType], proxies["a"].last.versions[resource.ScopedRouteType]; before != after {
		t.Errorf("a: SRDS changed (%s → %s) with tracing switched off", before, after)
	}

	// Deleting c's Telemetry puts c back on the mesh-wide setting.
	st.DeleteTelemetry(model.Key{Namespace: "c", Name: "default"})
	s.pushAll(t.Context())
	wantSampling(t, s, proxies["c"], -1)
	if part("a") != part("c") {
		t.Error("a and c are both off but do not share an outbound part")
	}
}

// Access logging by Telemetry reaches the inbound part of the namespace's
// proxies only.
func TestTelemetryAccessLogging(t *testing.T) {
	s, st, proxies := telemetryWorld(t)
	st.UpsertTelemetry(&model.TelemetryPolicy{Namespace: "a", Name: "default", Generation: 1,
		Settings: model.TelemetrySettings{AccessLogDisabled: model.Some(false)}})
	s.pushAll(t.Context())
	for n, p := range proxies {
		l := p.last.snap.GetResources(resource.ListenerType)[generator.ListenerInbound].(*listenerv3.Listener)
		logs := 0
		for _, h := range hcmsOf(t, l, nil) {
			for _, a := range h.GetAccessLog() {
				if a.GetName() == "envoy.access_loggers.stdout" {
					logs++
				}
			}
		}
		if (logs > 0) != (n == "a") {
			t.Errorf("%s: %d stdout access logs, want them only in a", n, logs)
		}
	}
}

// BenchmarkPushNamespaceTelemetry is BenchmarkPush's 100 proxies × 100
// Services with tracing on, and one namespace of ten whose Telemetry
// changes its sampling (its own outbound part, re-edited route tables):
// an EndpointSlice change per round, as there.
func BenchmarkPushNamespaceTelemetry(b *testing.B) {
	for _, override := range []bool{false, true} {
		b.Run(fmt.Sprintf("override=%v", override), func(b *testing.B) {
			st := model.NewStore(model.StoreConfig{RootNamespace: "weft-system"})
			var svcs []*model.Service
			var pods []*model.Pod
			for i := range 100 {
				ns := fmt.Sprintf("ns-%d", i%10)
				svc := mt.Service(ns, fmt.Sprintf("svc-%d", i), fmt.Sprintf("10.96.%d.%d", i/250, i%250+1), fmt.Sprintf("app-%d", i), mt.Port("http", 80, 8080))
				st.UpsertService(svc)
				svcs = append(svcs, svc)
				p := mt.Pod(ns, fmt.Sprintf("pod-%d", i), "sa", fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), fmt.Sprintf("app-%d", i), true)
				st.UpsertPod(p)
				pods = append(pods, p)
				st.UpsertEndpointSlice(mt.Slice(svc, p))
			}
			if override {
				st.UpsertTelemetry(&model.TelemetryPolicy{Namespace: "ns-3", Name: "default",
					Settings: model.TelemetrySettings{SamplingPercent: model.Some(50.0)}})
			}
			s, err := New(Config{Model: st, Authenticator: headerAuthenticator{},
				Generator: generator.Options{Telemetry: generator.Telemetry{Tracing: &generator.Tracing{
					CollectorHost: "weft-otel-collector.weft-system.svc.cluster.local", CollectorPort: 4317}}}})
			if err != nil {
				b.Fatal(err)
			}
			benchPushes(b, s, st, pods, svcs[0])
		})
	}
}
