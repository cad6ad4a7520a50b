package generator_test

import (
	"strings"
	"testing"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	statsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stats/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"github.com/google/go-cmp/cmp"

	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/generator/envoytest"
	"github.com/weftmesh/weft/pilot/model"
	mt "github.com/weftmesh/weft/pilot/model/modeltest"
	es "github.com/weftmesh/weft/pilot/telemetry/envoystats"
)

// chainMetrics is what one filter chain does for request metrics.
type chainMetrics struct {
	// tags of each stats logger (one map per logger; all its stats carry
	// the same tags, which metricsOf checks).
	tags []map[string]string
	// defaults are the x-weft-* request headers the chain's route table
	// adds where the request has none, header → value.
	defaults map[string]string
	// route is the HTTP connection manager's inline route table, if any.
	route *routev3.RouteConfiguration
}

func metricsOf(t *testing.T, fc *listenerv3.FilterChain) chainMetrics {
	t.Helper()
	out := chainMetrics{defaults: map[string]string{}}
	for _, f := range fc.GetFilters() {
		switch f.GetName() {
		case wellknown.HTTPConnectionManager:
			h := &hcmv3.HttpConnectionManager{}
			must(t, f.GetTypedConfig().UnmarshalTo(h))
			out.route = h.GetRouteConfig()
			out.tags = append(out.tags, loggerTags(t, fc.GetName(), h.GetAccessLog())...)
			for _, o := range out.route.GetRequestHeadersToAdd() {
				if strings.HasPrefix(o.GetHeader().GetKey(), "x-weft-") {
					if o.GetAppendAction() != corev3.HeaderValueOption_ADD_IF_ABSENT {
						t.Errorf("%s: inbound route sets %s (%v), want only defaults", fc.GetName(), o.GetHeader().GetKey(), o.GetAppendAction())
					}
					out.defaults[o.GetHeader().GetKey()] = o.GetHeader().GetValue()
				}
			}
			for _, hf := range h.GetHttpFilters() {
				if hf.GetName() == "envoy.filters.http.header_to_metadata" {
					t.Errorf("%s: header_to_metadata filter: the logger reads the headers", fc.GetName())
				}
			}
		case wellknown.TCPProxy:
			tp := &tcpproxyv3.TcpProxy{}
			must(t, f.GetTypedConfig().UnmarshalTo(tp))
			out.tags = append(out.tags, loggerTags(t, fc.GetName(), tp.GetAccessLog())...)
		}
	}
	return out
}

func loggerTags(t *testing.T, chain string, logs []*accesslogv3.AccessLog) []map[string]string {
	t.Helper()
	var out []map[string]string
	for _, a := range logs {
		if a.GetName() != "envoy.access_loggers.stats" {
			continue
		}
		c := &statsv3.Config{}
		must(t, a.GetTypedConfig().UnmarshalTo(c))
		if c.GetStatPrefix() != es.RequestStatPrefix {
			t.Errorf("%s: stat prefix %q", chain, c.GetStatPrefix())
		}
		var stats []*statsv3.Config_Stat
		for _, s := range c.GetCounters() {
			stats = append(stats, s.GetStat())
		}
		for _, s := range c.GetHistograms() {
			stats = append(stats, s.GetStat())
		}
		var first map[string]string
		for _, s := range stats {
			tags := map[string]string{}
			for _, tag := range s.GetTags() {
				if tag.GetValueFormat() == "" {
					t.Errorf("%s: %s tag %s has no value", chain, s.GetName(), tag.GetName())
				}
				tags[tag.GetName()] = tag.GetValueFormat()
			}
			if first == nil {
				first = tags
			} else if diff := cmp.Diff(first, tags); diff != "" {
				t.Errorf("%s: %s has other tags than %s (-first +this):\n%s", chain, s.GetName(), stats[0].GetName(), diff)
			}
		}
		out = append(out, first)
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func headerValues(opts []*corev3.HeaderValueOption) map[string]string {
	out := map[string]string{}
	for _, o := range opts {
		if strings.HasPrefix(o.GetHeader().GetKey(), "x-weft-") {
			if o.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
				out[o.GetHeader().GetKey()] = "NOT OVERWRITTEN " + o.GetHeader().GetValue()
				continue
			}
			out[o.GetHeader().GetKey()] = o.GetHeader().GetValue()
		}
	}
	return out
}

// TestRequestMetricsConfig states per filter chain what the golden files
// show: who is believed, what is recorded, which headers go where. Only
// the server's sidecar records; the client's only sets request headers.
func TestRequestMetricsConfig(t *testing.T) {
	w := scenarios()["one-service"] // reviews-1 (workload "reviews"), PERMISSIVE
	res, err := generator.Generate(generator.Options{}, w.view(), w.proxy)
	if err != nil {
		t.Fatal(err)
	}
	const host = "reviews.shop.svc.cluster.local"
	chains := map[string]chainMetrics{}
	for _, l := range res.Listeners {
		for _, fc := range l.GetFilterChains() {
			chains[fc.GetName()] = metricsOf(t, fc)
		}
	}
	unknown := es.Unknown
	destination := func(mtls bool) map[string]string {
		m := map[string]string{
			es.TagReporter: es.ReporterDestination, es.TagSourceWorkload: unknown, es.TagSourceWorkloadNamespace: unknown,
			es.TagSourcePrincipal: unknown, es.TagDestinationWorkload: "reviews", es.TagDestinationWorkloadNamespace: ns,
			es.TagDestinationService: host, es.TagRequestProtocol: "%PROTOCOL%", es.TagResponseCode: "%RESPONSE_CODE%",
			es.TagConnectionSecurityPolicy: es.SecurityNone,
		}
		if mtls {
			m[es.TagSourceWorkload] = "%REQ(x-weft-source-workload)%"
			m[es.TagSourceWorkloadNamespace] = "%REQ(x-weft-source-namespace)%"
			m[es.TagDestinationService] = "%REQ(x-weft-destination-service)%"
			m[es.TagSourcePrincipal] = "%DOWNSTREAM_PEER_URI_SAN%"
			m[es.TagConnectionSecurityPolicy] = es.SecurityMutualTLS
		}
		return m
	}
	tcp := func(m map[string]string, service string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			if !strings.HasPrefix(v, "%REQ(") {
				out[k] = v
			} else {
				out[k] = unknown
			}
		}
		delete(out, es.TagResponseCode)
		out[es.TagRequestProtocol], out[es.TagDestinationService] = es.ProtocolTCP, service
		return out
	}
	for name, want := range map[string]map[string]string{
		"inbound|9080||mtls":             destination(true),
		"inbound|9080||plaintext":        destination(false),
		"inbound|9080||app-tls":          tcp(destination(false), host),
		"inbound|passthrough||mtls":      tcp(destination(true), unknown),
		"inbound|passthrough||plaintext": tcp(destination(false), unknown),
	} {
		if got := chains[name].tags; len(got) != 1 {
			t.Errorf("%s: %d stats loggers, want 1", name, len(got))
		} else if diff := cmp.Diff(want, got[0]); diff != "" {
			t.Errorf("%s: stats tags (-want +got):\n%s", name, diff)
		}
	}

	// The client side: no logger, three request headers on the route
	// table.
	out := chains["outbound|9080||"+host]
	if len(out.tags) != 0 {
		t.Errorf("outbound chain records %v; only the server's sidecar does", out.tags)
	}
	rds := routeTable(t, res, "outbound|9080||"+host)
	if diff := cmp.Diff(map[string]string{
		generator.HeaderSourceWorkload:     "%ENVIRONMENT(WEFT_WORKLOAD_NAME)%",
		generator.HeaderSourceNamespace:    "%ENVIRONMENT(WEFT_WORKLOAD_NAMESPACE)%",
		generator.HeaderDestinationService: host,
	}, headerValues(rds.GetRequestHeadersToAdd())); diff != "" {
		t.Errorf("outbound route's request headers (-want +got):\n%s", diff)
	}
	if got := headerValues(rds.GetResponseHeadersToAdd()); len(got) != 0 {
		t.Errorf("outbound route adds response headers %v", got)
	}

	// mTLS: the client's headers reach the logger and the app, with
	// defaults where it sent none; plaintext: dropped.
	mtls, plain := chains["inbound|9080||mtls"], chains["inbound|9080||plaintext"]
	if diff := cmp.Diff(map[string]string{
		generator.HeaderSourceWorkload:     unknown,
		generator.HeaderSourceNamespace:    unknown,
		generator.HeaderDestinationService: host,
	}, mtls.defaults); diff != "" {
		t.Errorf("inbound mTLS header defaults (-want +got):\n%s", diff)
	}
	if got := mtls.route.GetRequestHeadersToRemove(); len(got) != 0 {
		t.Errorf("mTLS chain drops %v", got)
	}
	for name, c := range map[string]chainMetrics{"mtls": mtls, "plaintext": plain} {
		if got := c.route.GetResponseHeadersToAdd(); len(got) != 0 {
			t.Errorf("inbound %s chain answers with headers %v: the server's workload is not told to callers", name, got)
		}
	}
	if len(plain.defaults) != 0 {
		t.Errorf("plaintext chain adds headers %v", plain.defaults)
	}
	if diff := cmp.Diff(exchange, plain.route.GetRequestHeadersToRemove()); diff != "" {
		t.Errorf("plaintext chain drops (-want +got):\n%s", diff)
	}
}

// exchange are the request headers clients' sidecars add.
var exchange = []string{generator.HeaderSourceWorkload, generator.HeaderSourceNamespace, generator.HeaderDestinationService}

func routeTable(t *testing.T, res *generator.Resources, name string) *routev3.RouteConfiguration {
	t.Helper()
	for _, r := range res.Routes {
		if r.GetName() == name {
			return r
		}
	}
	t.Fatalf("no route table %q", name)
	return nil
}

// requestMetricsWorld is reviews-1 (PERMISSIVE: mTLS and plaintext
// chains) behind an HTTP and a TCP Service, seen from its own sidecar.
func requestMetricsWorld(opts generator.Options, telemetries ...*model.TelemetryPolicy) world {
	admin := mt.Service(ns, "reviews-admin", "10.96.0.60", "reviews", mt.Port("tcp-admin", 7000, 7000))
	return world{
		opts:     opts,
		services: []*model.Service{reviewsSvc, admin},
		slices:   []*model.EndpointSlice{mt.Slice(reviewsSvc, reviews1), mt.Slice(admin, reviews1)},
		pods:     []*model.Pod{productpage, reviews1},
		objects:  model.Objects{Telemetry: telemetries},
		proxy:    reviews1,
	}
}

// TestRequestMetricsSwitch: the server side follows its namespace's
// Telemetry over the root namespace's over the flag; the client's request
// headers follow the root namespace's over the flag only. Whether the
// server records or not, its plaintext chains drop the headers and its
// mTLS chains pass them on.
func TestRequestMetricsSwitch(t *testing.T) {
	off, on := model.Some(true), model.Some(false)
	flagOff := generator.Options{Telemetry: generator.Telemetry{RequestMetricsDisabled: true}}
	for _, tc := range []struct {
		name        string
		opts        generator.Options
		telemetries []*model.TelemetryPolicy
		record      bool // the server (namespace shop) records
		headers     bool // clients (every namespace) send the headers
	}{
		{name: "default: on", record: true, headers: true},
		{name: "flag off", opts: flagOff},
		{name: "root Telemetry off", telemetries: []*model.TelemetryPolicy{tel("weft-system", model.TelemetrySettings{MetricsDisabled: off})}},
		{name: "root Telemetry on beats the flag", opts: flagOff,
			telemetries: []*model.TelemetryPolicy{tel("weft-system", model.TelemetrySettings{MetricsDisabled: on})}, record: true, headers: true},
		{name: "namespace off: clients still send", headers: true,
			telemetries: []*model.TelemetryPolicy{tel(ns, model.TelemetrySettings{MetricsDisabled: off})}},
		{name: "namespace on under a mesh-wide off: it records, nobody sends", record: true,
			telemetries: []*model.TelemetryPolicy{
				tel("weft-system", model.TelemetrySettings{MetricsDisabled: off}),
				tel(ns, model.TelemetrySettings{MetricsDisabled: on}),
			}},
		{name: "another namespace's Telemetry does not apply", record: true, headers: true,
			telemetries: []*model.TelemetryPolicy{tel("billing", model.TelemetrySettings{MetricsDisabled: off})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := requestMetricsWorld(tc.opts, tc.telemetries...)
			res, err := generator.Generate(w.opts, w.view(), w.proxy)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range res.Listeners {
				for _, fc := range l.GetFilterChains() {
					checkChainSwitch(t, l.GetName(), fc, tc.record)
				}
			}
			want := map[string]string{}
			if tc.headers {
				want = map[string]string{
					generator.HeaderSourceWorkload:     "%ENVIRONMENT(WEFT_WORKLOAD_NAME)%",
					generator.HeaderSourceNamespace:    "%ENVIRONMENT(WEFT_WORKLOAD_NAMESPACE)%",
					generator.HeaderDestinationService: "reviews.shop.svc.cluster.local",
				}
			}
			if diff := cmp.Diff(want, headerValues(routeTable(t, res, "outbound|9080||reviews.shop.svc.cluster.local").GetRequestHeadersToAdd())); diff != "" {
				t.Errorf("outbound request headers (-want +got):\n%s", diff)
			}
		})
	}
}

// checkChainSwitch: outbound chains never record; inbound chains record
// (one stats logger; header defaults on mTLS HTTP chains) exactly when
// record, and plaintext HTTP chains drop the headers.
func checkChainSwitch(t *testing.T, listener string, fc *listenerv3.FilterChain, record bool) {
	t.Helper()
	m := metricsOf(t, fc)
	inbound := listener == generator.ListenerInbound
	wantLoggers := 0
	if inbound && record {
		wantLoggers = 1
	}
	if len(m.tags) != wantLoggers {
		t.Errorf("%s: %d stats loggers, want %d", fc.GetName(), len(m.tags), wantLoggers)
	}
	if !inbound || m.route == nil {
		return
	}
	mtls := fc.GetTransportSocket() != nil
	if reads := record && mtls; reads != (len(m.defaults) != 0) {
		t.Errorf("%s: header defaults %v, want them: %v", fc.GetName(), m.defaults, reads)
	}
	var drops []string
	if !mtls {
		drops = exchange
	}
	if diff := cmp.Diff(drops, m.route.GetRequestHeadersToRemove()); diff != "" {
		t.Errorf("%s drops headers (-want +got):\n%s", fc.GetName(), diff)
	}
}

// TestRequestMetricsGolden pins the config with request metrics off:
// mesh-wide by the flag (no headers, no loggers, the server's plaintext
// chains drop headers a caller may still send), and in one namespace by
// its Telemetry (its sidecar records nothing; the headers its clients keep
// sending reach the app over mTLS only).
func TestRequestMetricsGolden(t *testing.T) {
	envoy, haveEnvoy := envoytest.Binary()
	for name, w := range map[string]world{
		"request-metrics-off": requestMetricsWorld(generator.Options{Telemetry: generator.Telemetry{RequestMetricsDisabled: true}}),
		"request-metrics-ns-disabled": requestMetricsWorld(generator.Options{},
			tel(ns, model.TelemetrySettings{MetricsDisabled: model.Some(true)})),
	} {
		t.Run(name, func(t *testing.T) {
			res, err := generator.Generate(w.opts, w.view(), w.proxy)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, name, goldenJSON(t, res))
			checkConsistent(t, res)
			validateWithEnvoy(t, envoy, haveEnvoy, w.proxy, res)
		})
	}
}

// TestInboundServiceAmbiguous: a port two Services target has no
// destination_service of its own; only the caller's header (mTLS) says
// which one it called.
func TestInboundServiceAmbiguous(t *testing.T) {
	web := mt.Service(ns, "web", "10.96.0.50", "reviews", mt.Port("http-web", 80, 9080))
	w := world{
		services: []*model.Service{reviewsSvc, web},
		slices:   []*model.EndpointSlice{mt.Slice(reviewsSvc, reviews1), mt.Slice(web, reviews1)},
		pods:     []*model.Pod{reviews1},
		proxy:    reviews1,
	}
	res, err := generator.Inbound(generator.Options{}, w.view(), w.proxy)
	if err != nil {
		t.Fatal(err)
	}
	for _, fc := range listener(t, res, generator.ListenerInbound).GetFilterChains() {
		m := metricsOf(t, fc)
		switch fc.GetName() {
		case "inbound|9080||plaintext":
			if got := m.tags[0][es.TagDestinationService]; got != es.Unknown {
				t.Errorf("plaintext destination_service = %q, want unknown", got)
			}
		case "inbound|9080||mtls":
			if got := m.defaults[generator.HeaderDestinationService]; got != es.Unknown {
				t.Errorf("mTLS default destination_service: %q, want unknown", got)
			}
		}
	}
}
