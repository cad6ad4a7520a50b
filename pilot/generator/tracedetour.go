package generator

import (
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	mutationv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weftmesh/weft/pilot/model"
)

// Tracing costs only the requests it traces. Envoy's tracer, once an HTTP
// connection manager has one, starts a span for every request, sampled or
// not, and fills it at the end: 12-28 µs of CPU per request per sidecar
// in BenchmarkTracing, whatever the sampling (docs/observability.md). So
// the connection managers that see every request have no tracer. Their
// route tables start with detour routes that send the requests to trace,
// and only those, through an internal listener
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/configuration/other_features/internal_listener)
// whose connection manager has the tracer and then routes them as usual:
//
//   - a request whose W3C traceparent is sampled (flags "01") is traced
//     on both sides;
//   - on the client side, and on the server side for callers without
//     mesh mTLS, a request without a traceparent is traced at the
//     namespace's sampling percentage (a runtime fraction of the route,
//     runtime key SamplingRuntimeKey); a mesh caller's sidecar drew for
//     it already;
//   - anything else (an unsampled traceparent, or none when not drawn)
//     goes the usual way and carries no new trace context.
//
// Outbound, one internal listener serves every Service: the detour route
// names its route table in HeaderTracedRoute, the traced connection
// manager picks that table by the header (scoped routes, SRDS, over the
// same RDS tables) and removes the header before the request leaves.
// Inbound, each HTTP port has its own internal listener, which forwards
// to the app. Access logs and request metrics stay on the outer
// connection managers.
const (
	// HeaderTracedRoute names, on a detoured outbound request, the route
	// table the traced listener routes it with.
	HeaderTracedRoute = "x-weft-traced-route"
	// ListenerTracedOutbound is the outbound internal listener and the
	// cluster that reaches it.
	ListenerTracedOutbound = tracedPrefix + "outbound"
	// SamplingRuntimeKey overrides a proxy's random sampling at runtime,
	// in parts per million (`POST /runtime_modify` on the admin port)
	// where the namespace samples more than 0%.
	SamplingRuntimeKey = "weft.tracing.random_sampling"

	tracedPrefix = "traced|"
	// Detour route names; meshctl/envoy skips "weft.trace-" routes.
	routeTraceSampled = "weft.trace-sampled"
	routeTraceRandom  = "weft.trace-random"
	headerTraceparent = "traceparent"
)

// TracedInboundName is the internal listener, and the cluster that
// reaches it, that traces requests to inbound cluster.
func TracedInboundName(cluster string) string { return tracedPrefix + cluster }

// detourRoutes are the routes, put first in a route table, that send the
// requests to trace to cluster: sampled traceparents, and with random a
// share of requests without one. route, when set, is the table's name:
// the detour tells the traced listener, and a request already carrying
// the header (the second pass) goes the usual way.
func (s TracingSetting) detourRoutes(cluster, route string, random bool) []*routev3.Route {
	var guard []*routev3.HeaderMatcher
	var add []*corev3.HeaderValueOption
	if route != "" {
		guard = []*routev3.HeaderMatcher{absent(HeaderTracedRoute)}
		add = []*corev3.HeaderValueOption{overwrite(HeaderTracedRoute, literal(route))}
	}
	sampled := &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: "-01"}}
	out := []*routev3.Route{detourRoute(routeTraceSampled, cluster, add, append(slices.Clone(guard), &routev3.HeaderMatcher{
		Name:                 headerTraceparent,
		HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: sampled},
	}))}
	if random && s.SamplingPercent > 0 {
		r := detourRoute(routeTraceRandom, cluster, add, append(guard, absent(headerTraceparent)))
		r.Match.RuntimeFraction = &corev3.RuntimeFractionalPercent{
			DefaultValue: fractionalPercent(s.SamplingPercent),
			RuntimeKey:   SamplingRuntimeKey,
		}
		out = append(out, r)
	}
	return out
}

func detourRoute(name, cluster string, add []*corev3.HeaderValueOption, headers []*routev3.HeaderMatcher) *routev3.Route {
	return &routev3.Route{
		Name:  name,
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}, Headers: headers},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster},
			Timeout:          duration(0), // the traced listener's route decides
		}},
		RequestHeadersToAdd: add,
	}
}

func absent(header string) *routev3.HeaderMatcher {
	return &routev3.HeaderMatcher{Name: header, HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: false}}
}

// withDetour is a copy of table with the detour routes first in its
// virtual host (service tables have one).
func (s TracingSetting) withDetour(table *routev3.RouteConfiguration) *routev3.RouteConfiguration {
	out := proto.Clone(table).(*routev3.RouteConfiguration)
	for _, vh := range out.GetVirtualHosts() {
		vh.Routes = slices.Concat(s.detourRoutes(ListenerTracedOutbound, table.GetName(), true), vh.Routes)
	}
	return out
}

// tracedHCM is the connection manager of an internal listener: it traces
// every request it gets (the detour decided; a traceparent's flag still
// wins) and keeps the caller's XFCC, which the outer connection manager
// set.
func (s TracingSetting) tracedHCM(statPrefix string) *hcmv3.HttpConnectionManager {
	h := baseHCM(statPrefix)
	h.Tracing = s.hcmTracing()
	h.ForwardClientCertDetails = hcmv3.HttpConnectionManager_FORWARD_ONLY
	return h
}

func internalListener(name string, dir corev3.TrafficDirection, h *hcmv3.HttpConnectionManager) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name:              name,
		ListenerSpecifier: &listenerv3.Listener_InternalListener{InternalListener: &listenerv3.Listener_InternalListenerConfig{}},
		TrafficDirection:  dir,
		FilterChains:      []*listenerv3.FilterChain{{Name: name, Filters: []*listenerv3.Filter{hcmFilter(h)}}},
	}
}

// internalCluster reaches the internal listener of the same name in the
// protocol the request came in.
func internalCluster(opts Options, name string) *clusterv3.Cluster {
	c := baseCluster(opts, name, model.ProtocolHTTP)
	c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}
	c.LoadAssignment = &endpointv3.ClusterLoadAssignment{
		ClusterName: name,
		Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
			HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: &corev3.Address{Address: &corev3.Address_EnvoyInternalAddress{EnvoyInternalAddress: &corev3.EnvoyInternalAddress{
					AddressNameSpecifier: &corev3.EnvoyInternalAddress_ServerListenerName{ServerListenerName: name},
				}}},
			}},
		}}}},
	}
	return c
}

// tracedOutbound is the outbound internal listener and its cluster. It
// picks the route table by HeaderTracedRoute among the scopes
// (tracedScopes) it gets over SRDS, which name the same RDS tables as the
// outbound listener (Envoy shares one subscription per table). Its filters
// are the outbound ones behind a header mutation that drops the header:
// the scope, and so the route, is chosen before the filters run.
func (s TracingSetting) tracedOutbound(opts Options) (*listenerv3.Listener, *clusterv3.Cluster) {
	h := s.tracedHCM("traced_outbound")
	h.HttpFilters = slices.Concat([]*hcmv3.HttpFilter{removeHeader(HeaderTracedRoute)}, outboundHTTPFilters())
	h.RouteSpecifier = &hcmv3.HttpConnectionManager_ScopedRoutes{ScopedRoutes: &hcmv3.ScopedRoutes{
		Name: ListenerTracedOutbound,
		ScopeKeyBuilder: &hcmv3.ScopedRoutes_ScopeKeyBuilder{Fragments: []*hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder{{
			Type: &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor_{
				HeaderValueExtractor: &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor{
					Name:             HeaderTracedRoute,
					ElementSeparator: ";", // not in route names: the whole value
					ExtractType:      &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor_Index{Index: 0},
				},
			},
		}}},
		RdsConfigSource: adsConfig(),
		ConfigSpecifier: &hcmv3.ScopedRoutes_ScopedRds{ScopedRds: &hcmv3.ScopedRds{ScopedRdsConfigSource: adsConfig()}},
	}}
	return internalListener(ListenerTracedOutbound, corev3.TrafficDirection_OUTBOUND, h), internalCluster(opts, ListenerTracedOutbound)
}

// tracedScopes are the SRDS scopes of the route tables: each keyed by
// its own name, which the detour puts in HeaderTracedRoute. (Envoy
// refuses RDS names in a listener's inline scope list.)
func tracedScopes(tables []*routev3.RouteConfiguration) []*routev3.ScopedRouteConfiguration {
	out := make([]*routev3.ScopedRouteConfiguration, 0, len(tables))
	for _, t := range tables {
		name := t.GetName()
		out = append(out, &routev3.ScopedRouteConfiguration{
			Name:                   name,
			RouteConfigurationName: name,
			Key: &routev3.ScopedRouteConfiguration_Key{Fragments: []*routev3.ScopedRouteConfiguration_Key_Fragment{{
				Type: &routev3.ScopedRouteConfiguration_Key_Fragment_StringKey{StringKey: name},
			}}},
		})
	}
	return out
}

// tracedInbound is the internal listener that traces requests to the
// app's inbound cluster, and its cluster.
func (s TracingSetting) tracedInbound(opts Options, cluster, statPrefix string) (*listenerv3.Listener, *clusterv3.Cluster) {
	name := TracedInboundName(cluster)
	h := s.tracedHCM("traced_" + statPrefix)
	h.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
		Name: name,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    name,
			Domains: []string{"*"},
			Routes:  []*routev3.Route{forwardRoute(cluster, false)},
		}},
		ValidateClusters: wrapperspb.Bool(false),
	}}
	return internalListener(name, corev3.TrafficDirection_INBOUND, h), internalCluster(opts, name)
}

func removeHeader(name string) *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{
		Name: "envoy.filters.http.header_mutation",
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&headermutationv3.HeaderMutation{
			Mutations: &headermutationv3.Mutations{RequestMutations: []*mutationv3.HeaderMutation{{
				Action: &mutationv3.HeaderMutation_Remove{Remove: name},
			}}},
		})},
	}
}

// withoutDetour is table without detour routes: itself when it has none.
func withoutDetour(table *routev3.RouteConfiguration) *routev3.RouteConfiguration {
	isDetour := func(r *routev3.Route) bool {
		return r.GetName() == routeTraceSampled || r.GetName() == routeTraceRandom
	}
	if !slices.ContainsFunc(table.GetVirtualHosts(), func(vh *routev3.VirtualHost) bool {
		return slices.ContainsFunc(vh.GetRoutes(), isDetour)
	}) {
		return table
	}
	out := proto.Clone(table).(*routev3.RouteConfiguration)
	for _, vh := range out.GetVirtualHosts() {
		vh.Routes = slices.DeleteFunc(vh.Routes, isDetour)
	}
	return out
}
