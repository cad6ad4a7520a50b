package xds

import (
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"

	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/model"
)

// hcmsOf unpacks the HTTP connection managers of l's filter chains that
// keep accepts (every chain when nil).
func hcmsOf(t *testing.T, l *listenerv3.Listener, keep func(*listenerv3.FilterChain) bool) []*hcmv3.HttpConnectionManager {
	t.Helper()
	var out []*hcmv3.HttpConnectionManager
	for _, fc := range l.GetFilterChains() {
		if keep != nil && !keep(fc) {
			continue
		}
		for _, f := range fc.GetFilters() {
			if f.GetName() != wellknown.HTTPConnectionManager {
				continue
			}
			h := &hcmv3.HttpConnectionManager{}
			if err := f.GetTypedConfig().UnmarshalTo(h); err != nil {
				t.Fatal(err)
			}
			out = append(out, h)
		}
	}
	return out
}

// requestMetricsOf reads a proxy's current snapshot: whether its inbound
// listener records request metrics (any stats logger), and how many of
// its outbound route tables carry the client's request headers (of how
// many).
func requestMetricsOf(t *testing.T, s *Server, p *proxy) (records bool, withHeaders, routes int) {
	t.Helper()
	l := cached(t, s, p, resource.ListenerType)[generator.ListenerInbound].(*listenerv3.Listener)
	for _, h := range hcmsOf(t, l, nil) {
		for _, a := range h.GetAccessLog() {
			records = records || a.GetName() == "envoy.access_loggers.stats"
		}
	}
	for _, r := range cached(t, s, p, resource.RouteType) {
		routes++
		for _, h := range r.(*routev3.RouteConfiguration).GetRequestHeadersToAdd() {
			if h.GetHeader().GetKey() == generator.HeaderSourceWorkload {
				withHeaders++
				break
			}
		}
	}
	return records, withHeaders, routes
}

// wantRequestMetrics checks every proxy: records lists the namespaces
// whose servers record; headers says whether every route table carries
// the client's headers (else none does).
func wantRequestMetrics(t *testing.T, s *Server, proxies map[string]*proxy, headers bool, records ...string) {
	t.Helper()
	for n, p := range proxies {
		rec, with, routes := requestMetricsOf(t, s, p)
		wantRec := false
		for _, r := range records {
			wantRec = wantRec || r == n
		}
		if rec != wantRec {
			t.Errorf("%s: inbound records request metrics = %v, want %v", n, rec, wantRec)
		}
		want := 0
		if headers {
			want = routes
		}
		if routes == 0 || with != want {
			t.Errorf("%s: %d of %d outbound route tables set the client's headers, want %d", n, with, routes, want)
		}
	}
}

// A namespace's metrics setting changes only its proxies' inbound part;
// the root namespace's changes the shared fragments' request headers too,
// and a namespace can turn recording back on under a mesh-wide off.
func TestTelemetryRequestMetrics(t *testing.T) {
	s, st, proxies := telemetryWorld(t)
	wantRequestMetrics(t, s, proxies, true, "a", "b", "c")
	f1, err := s.fragmentsFor(st.View())
	if err != nil {
		t.Fatal(err)
	}

	st.UpsertTelemetry(&model.TelemetryPolicy{Namespace: "a", Name: "default", Generation: 1,
		Settings: model.TelemetrySettings{MetricsDisabled: model.Some(true)}})
	s.pushAll(t.Context())
	wantRequestMetrics(t, s, proxies, true, "b", "c")
	f2, err := s.fragmentsFor(st.View())
	if err != nil {
		t.Fatal(err)
	}
	for k, f := range f2.bySvc {
		if f1.bySvc[k] != f {
			t.Errorf("%s: fragment rebuilt for a namespace's metrics setting", k)
		}
	}
	outA, err := s.outbound(st.View(), "a")
	if err != nil {
		t.Fatal(err)
	}
	outB, err := s.outbound(st.View(), "b")
	if err != nil {
		t.Fatal(err)
	}
	if outA != outB {
		t.Error("a's metrics setting gave it an outbound part of its own")
	}

	st.UpsertTelemetry(&model.TelemetryPolicy{Namespace: "weft-system", Name: "mesh", Generation: 1,
		Settings: model.TelemetrySettings{MetricsDisabled: model.Some(true)}})
	st.UpsertTelemetry(&model.TelemetryPolicy{Namespace: "c", Name: "default", Generation: 1,
		Settings: model.TelemetrySettings{MetricsDisabled: model.Some(false)}})
	s.pushAll(t.Context())
	wantRequestMetrics(t, s, proxies, false, "c")

	st.DeleteTelemetry(model.Key{Namespace: "weft-system", Name: "mesh"})
	s.pushAll(t.Context())
	wantRequestMetrics(t, s, proxies, true, "b", "c")
}
