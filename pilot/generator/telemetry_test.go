package generator_test

import (
	"slices"
	"strings"
	"testing"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/generator/envoytest"
	"github.com/weftmesh/weft/pilot/model"
	mt "github.com/weftmesh/weft/pilot/model/modeltest"
)

var meshTelemetry = generator.Telemetry{
	AccessLog: generator.AccessLog{Enabled: true, Namespaces: []string{ns}},
	Tracing: &generator.Tracing{
		CollectorHost: "weft-otel-collector.weft-system.svc.cluster.local", CollectorPort: 4317, SamplingPercent: 10,
	},
}

// telemetryCase is a telemetry scenario with what every HTTP connection
// manager must show: access logs on the inbound side, and the tracing
// sampling percentage everywhere (off: no tracing, no collector cluster).
type telemetryCase struct {
	world
	wantLog     bool
	wantTracing bool
	wantPercent float64
}

// tel is a Telemetry resource for scenarios.
func tel(namespace string, s model.TelemetrySettings) *model.TelemetryPolicy {
	return &model.TelemetryPolicy{Namespace: namespace, Name: "default", Created: mt.Epoch, Settings: s}
}

func telemetryScenarios() map[string]telemetryCase {
	tcp := mt.Service(ns, "reviews-admin", "10.96.0.60", "reviews", mt.Port("tcp-admin", 7000, 7000))
	quiet := mt.Pod(ns, "reviews-3", "reviews", "10.0.2.12", "reviews", true)
	quiet.Labels[generator.LabelAccessLog] = "false"
	base := world{
		opts:     generator.Options{Telemetry: meshTelemetry},
		services: []*model.Service{reviewsSvc, tcp},
		slices:   []*model.EndpointSlice{mt.Slice(reviewsSvc, reviews1, reviews2), mt.Slice(tcp, reviews1)},
		pods:     []*model.Pod{productpage, reviews1, reviews2},
		proxy:    reviews1,
	}
	with := func(w world, f func(*world)) world { f(&w); return w }
	return map[string]telemetryCase{
		// Access logs on the HTTP and TCP inbound chains, tracing on every
		// HTTP connection manager, and the collector cluster.
		"telemetry": {world: base, wantLog: true, wantTracing: true, wantPercent: 10},
		// A workload that opted out logs nothing but is still traced.
		"telemetry-opt-out": {world: world{
			opts:     generator.Options{Telemetry: meshTelemetry},
			services: []*model.Service{reviewsSvc},
			slices:   []*model.EndpointSlice{mt.Slice(reviewsSvc, quiet)},
			pods:     []*model.Pod{quiet},
			proxy:    quiet,
		}, wantTracing: true, wantPercent: 10},
		// The namespace's Telemetry turns tracing off (no tracer, no
		// collector cluster, outbound filters re-edited) and access logs
		// on, although the flags log only in another namespace.
		"telemetry-ns-tracing-disabled": {world: with(base, func(w *world) {
			w.opts.Telemetry.AccessLog.Namespaces = []string{"other"}
			w.objects.Telemetry = []*model.TelemetryPolicy{tel(ns, model.TelemetrySettings{
				TracingDisabled: model.Some(true), AccessLogDisabled: model.Some(false)})}
		}), wantLog: true},
		// The root namespace's Telemetry turns tracing and access logs off
		// mesh-wide; the namespace's turns tracing back on at 25%: the
		// shared fragments carry no tracer, this namespace's copies do.
		"telemetry-ns-tracing-enabled": {world: with(base, func(w *world) {
			w.objects.Telemetry = []*model.TelemetryPolicy{
				tel("weft-system", model.TelemetrySettings{TracingDisabled: model.Some(true), AccessLogDisabled: model.Some(true)}),
				tel(ns, model.TelemetrySettings{TracingDisabled: model.Some(false), SamplingPercent: model.Some(25.0)}),
			}
		}), wantTracing: true, wantPercent: 25},
		// Only the sampling differs from the flags; access logs inherit
		// the flags (on in this namespace).
		"telemetry-ns-sampling": {world: with(base, func(w *world) {
			w.objects.Telemetry = []*model.TelemetryPolicy{tel(ns, model.TelemetrySettings{SamplingPercent: model.Some(0.5)})}
		}), wantLog: true, wantTracing: true, wantPercent: 0.5},
		// Without a collector a Telemetry cannot turn tracing on.
		"telemetry-no-collector": {world: with(base, func(w *world) {
			w.opts.Telemetry = generator.Telemetry{}
			w.objects.Telemetry = []*model.TelemetryPolicy{tel(ns, model.TelemetrySettings{
				TracingDisabled: model.Some(false), SamplingPercent: model.Some(50.0), AccessLogDisabled: model.Some(true)})}
		})},
	}
}

func TestTelemetryGolden(t *testing.T) {
	envoy, haveEnvoy := envoytest.Binary()
	for name, tc := range telemetryScenarios() {
		t.Run(name, func(t *testing.T) {
			res, err := generator.Generate(tc.opts, tc.view(), tc.proxy)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, name, goldenJSON(t, res))
			checkConsistent(t, res)
			checkTelemetry(t, res, tc)
			validateWithEnvoy(t, envoy, haveEnvoy, tc.proxy, res)
		})
	}
}

// checkTelemetry reads every HTTP connection manager and TCP proxy of the
// generated listeners back and checks them against the case.
func checkTelemetry(t *testing.T, res *generator.Resources, tc telemetryCase) {
	t.Helper()
	hcms, inboundLogs, inboundFilters := 0, 0, 0
	for _, l := range res.Listeners {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				inbound := l.GetName() == generator.ListenerInbound
				var logs []*accesslogv3.AccessLog
				switch f.GetName() {
				case wellknown.HTTPConnectionManager:
					h := &hcmv3.HttpConnectionManager{}
					if err := f.GetTypedConfig().UnmarshalTo(h); err != nil {
						t.Fatal(err)
					}
					hcms++
					logs = h.GetAccessLog()
					internal := strings.HasPrefix(l.GetName(), "traced|")
					if tr := h.GetTracing(); (tr != nil) != internal {
						t.Errorf("%s/%s: tracer %v, want one only on internal listeners", l.GetName(), fc.GetName(), tr)
					} else if internal && tr.GetRandomSampling().GetValue() != 100 {
						t.Errorf("%s: traces %v%% of what the detour sends, want 100%%", l.GetName(), tr.GetRandomSampling().GetValue())
					}
					if rc := h.GetRouteConfig(); rc != nil && l.GetName() == generator.ListenerInbound {
						checkDetour(t, l.GetName()+"/"+fc.GetName(), rc, tc, fc.GetTransportSocket() == nil)
					}
				case wellknown.TCPProxy:
					p := &tcpproxyv3.TcpProxy{}
					if err := f.GetTypedConfig().UnmarshalTo(p); err != nil {
						t.Fatal(err)
					}
					logs = p.GetAccessLog()
				default:
					continue
				}
				if !inbound {
					continue
				}
				inboundFilters++
				for _, a := range logs {
					if a.GetName() == "envoy.access_loggers.stdout" {
						inboundLogs++
					}
				}
			}
		}
	}
	if hcms == 0 || inboundFilters == 0 {
		t.Fatalf("scenario has %d HTTP connection managers, %d inbound filters: it checks nothing", hcms, inboundFilters)
	}
	if want := map[bool]int{true: inboundFilters, false: 0}[tc.wantLog]; inboundLogs != want {
		t.Errorf("%d of %d inbound filters log, want %d", inboundLogs, inboundFilters, want)
	}
	// With a collector, the traced outbound listener, its scopes and the
	// collector cluster stay whether the namespace traces or not.
	hasCollector := tc.opts.Telemetry.Tracing != nil
	collector := slices.ContainsFunc(res.Clusters, func(c *clusterv3.Cluster) bool { return c.GetName() == generator.ClusterOTelCollector })
	if collector != hasCollector {
		t.Errorf("collector cluster present = %v, want %v", collector, hasCollector)
	}
	for _, rc := range res.Routes {
		checkDetour(t, rc.GetName(), rc, tc, true)
	}
	var internal []string
	for _, l := range res.Listeners {
		if l.GetInternalListener() != nil {
			internal = append(internal, l.GetName())
		}
	}
	var want []string // sorted
	if tc.wantTracing {
		want = append(want, generator.TracedInboundName("inbound|9080||"))
	}
	if hasCollector {
		want = append(want, generator.ListenerTracedOutbound)
	}
	if !slices.Equal(internal, want) {
		t.Errorf("internal listeners %q, want %q", internal, want)
	}
	if n := len(res.ScopedRoutes); hasCollector && n != len(res.Routes) || !hasCollector && n != 0 {
		t.Errorf("%d SRDS scopes for %d route tables, collector %v", n, len(res.Routes), hasCollector)
	}
	for _, s := range res.ScopedRoutes {
		if s.GetRouteConfigurationName() != s.GetName() || s.GetKey().GetFragments()[0].GetStringKey() != s.GetName() {
			t.Errorf("scope %v: want key and route table %q", s, s.GetName())
		}
	}
}

// checkDetour: with tracing on, a route table starts with the detour for
// sampled traceparents and, where random, the one sampling the case's
// percentage of requests without one; with tracing off it has neither.
func checkDetour(t *testing.T, where string, rc *routev3.RouteConfiguration, tc telemetryCase, random bool) {
	t.Helper()
	routes := rc.GetVirtualHosts()[0].GetRoutes()
	var detours []*routev3.Route
	for _, r := range routes {
		if strings.HasPrefix(r.GetRoute().GetCluster(), "traced|") {
			detours = append(detours, r)
		}
	}
	want := 0
	if tc.wantTracing {
		want = 1
		if random {
			want = 2
		}
	}
	if len(detours) != want || want > 0 && routes[0] != detours[0] {
		t.Fatalf("%s: %d detour routes (first: %v), want %d first", where, len(detours), routes[0].GetName(), want)
	}
	if want == 2 {
		frac := detours[1].GetMatch().GetRuntimeFraction().GetDefaultValue()
		if got := float64(frac.GetNumerator()) / 1e4; got != tc.wantPercent || frac.GetDenominator() != typev3.FractionalPercent_MILLION {
			t.Errorf("%s: random detour samples %v (%v), want %v%%", where, got, frac, tc.wantPercent)
		}
	}
}

// TestOutboundTracingOverride checks the shortcut the xDS server relies
// on: a namespace whose Telemetry changes its tracing gets, from
// fragments built with the mesh-wide setting, the same outbound config as
// fragments built with its own setting; a namespace with the mesh-wide
// setting gets the fragments' route tables themselves (shared, not
// copied).
func TestOutboundTracingOverride(t *testing.T) {
	w := telemetryScenarios()["telemetry"].world
	ns25 := tel(ns, model.TelemetrySettings{SamplingPercent: model.Some(25.0)})
	w.objects.Telemetry = []*model.TelemetryPolicy{ns25}
	v := w.view()
	direct := w
	direct.objects.Telemetry = []*model.TelemetryPolicy{tel("weft-system", ns25.Settings)}

	got, err := generator.Outbound(w.opts, v, ns)
	if err != nil {
		t.Fatal(err)
	}
	want, err := generator.Outbound(direct.opts, direct.view(), ns)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("re-edited outbound config differs from one built with the namespace's tracing (-want +got):\n%s", diff)
	}

	var frags []*generator.ServiceConfig
	for _, svc := range v.VisibleServices(ns) {
		sc, err := generator.OutboundService(w.opts, v, svc)
		if err != nil {
			t.Fatal(err)
		}
		frags = append(frags, sc)
	}
	mesh := w.opts.Telemetry.TracingFor(v.Telemetry("weft-system"))
	own := w.opts.Telemetry.TracingFor(v.Telemetry(ns))
	if mesh == own || !own.On() {
		t.Fatalf("mesh %+v and namespace %+v tracing should differ", mesh, own)
	}
	shared := generator.AssembleOutbound(w.opts, frags, mesh)
	again := generator.AssembleOutbound(w.opts, frags, mesh)
	copied := generator.AssembleOutbound(w.opts, frags, own)
	copiedAgain := generator.AssembleOutbound(w.opts, frags, own)
	for i, r := range shared.Routes {
		if r != again.Routes[i] {
			t.Errorf("route %s: mesh-wide assemblies do not share the fragment's table", r.GetName())
		}
		if r == copied.Routes[i] {
			t.Errorf("route %s: the namespace's assembly uses the shared table, not a copy with its sampling", r.GetName())
		}
		if copied.Routes[i] != copiedAgain.Routes[i] {
			t.Errorf("route %s: the namespace's copy is made again on every assembly", r.GetName())
		}
	}
	if len(shared.Routes) == 0 {
		t.Fatal("no route tables: the test checks nothing")
	}
}

func TestAccessLogSelection(t *testing.T) {
	pod := func(ns string, labels map[string]string) *model.Pod {
		return &model.Pod{Namespace: ns, Name: "p", Labels: labels}
	}
	on := map[string]string{generator.LabelAccessLog: "true"}
	off := map[string]string{generator.LabelAccessLog: "false"}
	telOn := model.TelemetrySettings{AccessLogDisabled: model.Some(false)}
	telOff := model.TelemetrySettings{AccessLogDisabled: model.Some(true)}
	for _, tc := range []struct {
		cfg  generator.AccessLog
		tel  model.TelemetrySettings
		pod  *model.Pod
		want bool
	}{
		{generator.AccessLog{}, model.TelemetrySettings{}, pod("a", nil), false},
		{generator.AccessLog{}, model.TelemetrySettings{}, pod("a", on), true},
		{generator.AccessLog{Enabled: true}, model.TelemetrySettings{}, pod("a", nil), true},
		{generator.AccessLog{Enabled: true}, model.TelemetrySettings{}, pod("a", off), false},
		{generator.AccessLog{Enabled: true, Namespaces: []string{"b"}}, model.TelemetrySettings{}, pod("a", nil), false},
		{generator.AccessLog{Enabled: true, Namespaces: []string{"b"}}, model.TelemetrySettings{}, pod("b", nil), true},
		// Telemetry beats the flags, the pod label beats Telemetry.
		{generator.AccessLog{}, telOn, pod("a", nil), true},
		{generator.AccessLog{Enabled: true, Namespaces: []string{"b"}}, telOn, pod("a", nil), true},
		{generator.AccessLog{Enabled: true}, telOff, pod("a", nil), false},
		{generator.AccessLog{Enabled: true}, telOn, pod("a", off), false},
		{generator.AccessLog{}, telOff, pod("a", on), true},
		// Tracing settings do not touch access logs.
		{generator.AccessLog{Enabled: true}, model.TelemetrySettings{TracingDisabled: model.Some(true)}, pod("a", nil), true},
	} {
		if got := tc.cfg.For(tc.pod, tc.tel); got != tc.want {
			t.Errorf("%+v with %+v for %s %v = %v, want %v", tc.cfg, tc.tel, tc.pod.Namespace, tc.pod.Labels, got, tc.want)
		}
	}
}

func TestTracingFor(t *testing.T) {
	host := "collector.weft-system.svc"
	flags := generator.Telemetry{Tracing: &generator.Tracing{CollectorHost: host, CollectorPort: 4317, SamplingPercent: 10}}
	optIn := generator.Telemetry{Tracing: &generator.Tracing{CollectorHost: host, CollectorPort: 4317, SamplingPercent: 10, Off: true}}
	on := func(pct float64) generator.TracingSetting {
		return generator.TracingSetting{CollectorHost: host, CollectorPort: 4317, SamplingPercent: pct}
	}
	for _, tc := range []struct {
		name  string
		flags generator.Telemetry
		tel   model.TelemetrySettings
		want  generator.TracingSetting
	}{
		{"flags", flags, model.TelemetrySettings{}, on(10)},
		{"flags default sampling", generator.Telemetry{Tracing: &generator.Tracing{CollectorHost: host, CollectorPort: 4317}},
			model.TelemetrySettings{}, on(generator.DefaultSamplingPercent)},
		{"telemetry sampling", flags, model.TelemetrySettings{SamplingPercent: model.Some(0.5)}, on(0.5)},
		{"telemetry zero sampling is zero", flags, model.TelemetrySettings{SamplingPercent: model.Some(0.0)}, on(0)},
		{"telemetry enables explicitly", flags, model.TelemetrySettings{TracingDisabled: model.Some(false)}, on(10)},
		{"telemetry disables", flags, model.TelemetrySettings{TracingDisabled: model.Some(true), SamplingPercent: model.Some(5.0)}, generator.TracingSetting{}},
		{"opt-in: off by default", optIn, model.TelemetrySettings{}, generator.TracingSetting{}},
		{"opt-in: a sampling percentage alone does not enable", optIn, model.TelemetrySettings{SamplingPercent: model.Some(5.0)}, generator.TracingSetting{}},
		{"opt-in: telemetry enables", optIn, model.TelemetrySettings{TracingDisabled: model.Some(false)}, on(10)},
		{"no collector: telemetry cannot enable", generator.Telemetry{},
			model.TelemetrySettings{TracingDisabled: model.Some(false), SamplingPercent: model.Some(5.0)}, generator.TracingSetting{}},
	} {
		got := tc.flags.TracingFor(tc.tel)
		if got != tc.want {
			t.Errorf("%s: TracingFor = %+v, want %+v", tc.name, got, tc.want)
		}
		if got.On() != (tc.want.CollectorHost != "") {
			t.Errorf("%s: On() = %v", tc.name, got.On())
		}
	}
}

func TestTracingNeedsACollector(t *testing.T) {
	w := telemetryScenarios()["telemetry"]
	w.opts.Telemetry.Tracing = &generator.Tracing{CollectorHost: "collector"}
	if _, err := generator.Generate(w.opts, w.view(), w.proxy); err == nil || !strings.Contains(err.Error(), "collector") {
		t.Errorf("Generate with a collector without port: %v", err)
	}
}
