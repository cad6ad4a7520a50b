package generator

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	healthcheckv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/health_check/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	originaldstv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_dst/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// adsConfig makes a resource come over the same ADS stream as the one that
// referenced it, so updates stay ordered
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/configuration/overview/xds_api#aggregated-discovery-service).
func adsConfig() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
}

func socketAddress(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       ip,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// originalDstFilter restores the destination iptables REDIRECT replaced, so
// filter chains can match on it
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/configuration/listeners/listener_filters/original_dst_filter).
func originalDstFilter() *listenerv3.ListenerFilter {
	return &listenerv3.ListenerFilter{
		Name:       wellknown.OriginalDestination,
		ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: mustAny(&originaldstv3.OriginalDst{})},
	}
}

// tlsInspectorFilter sets the transport protocol and ALPN of a connection so
// PERMISSIVE filter chains can tell mTLS from plaintext
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/configuration/listeners/listener_filters/tls_inspector).
func tlsInspectorFilter() *listenerv3.ListenerFilter {
	return &listenerv3.ListenerFilter{
		Name:       wellknown.TLSInspector,
		ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: mustAny(&tlsinspectorv3.TlsInspector{})},
	}
}

func tcpProxyFilter(statPrefix, cluster string) *listenerv3.Filter {
	return &listenerv3.Filter{
		Name: wellknown.TCPProxy,
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(&tcpproxyv3.TcpProxy{
			StatPrefix:       statPrefix,
			ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: cluster},
		})},
	}
}

func routerFilter() *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{
		Name:       wellknown.Router,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerv3.Router{})},
	}
}

// baseHCM is the HTTP connection manager shared by all listeners
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto):
// protocol auto-detected (HTTP/1.1 or h2c), WebSocket upgrades allowed.
func baseHCM(statPrefix string) *hcmv3.HttpConnectionManager {
	return &hcmv3.HttpConnectionManager{
		StatPrefix:     statPrefix,
		CodecType:      hcmv3.HttpConnectionManager_AUTO,
		HttpFilters:    []*hcmv3.HttpFilter{routerFilter()},
		UpgradeConfigs: []*hcmv3.HttpConnectionManager_UpgradeConfig{{UpgradeType: "websocket"}},
		NormalizePath:  wrapperspb.Bool(true),
	}
}

// outboundHCM routes through RDS, so endpoint and route changes do not
// drain the listener. Its fault filter does nothing unless a route carries
// a TrafficPolicy fault in typed_per_filter_config
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/configuration/http/http_filters/fault_filter).
func outboundHCM(statPrefix, routeName string) *listenerv3.Filter {
	h := baseHCM(statPrefix)
	h.HttpFilters = outboundHTTPFilters()
	h.RouteSpecifier = &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
		ConfigSource:    adsConfig(),
		RouteConfigName: routeName,
	}}
	return hcmFilter(h)
}

// outboundHTTPFilters are the fault filter and the router.
func outboundHTTPFilters() []*hcmv3.HttpFilter {
	return []*hcmv3.HttpFilter{{
		Name:       wellknown.Fault,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&faultv3.HTTPFault{})},
	}, routerFilter()}
}

// inboundHCM forwards to the app and tells it who called: on mTLS
// connections Envoy sets x-forwarded-client-cert with the peer's URI SAN
// (its SPIFFE ID) and subject; on plaintext ones it strips any XFCC the
// client sent, so the header can be trusted
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/configuration/http/http_conn_man/headers#x-forwarded-client-cert).
// authz are the workload's RBAC filters, run before the router; with AUDIT
// policies, requests they would deny are logged to the sidecar's stdout.
func inboundHCM(statPrefix, cluster string, authz []*hcmv3.HttpFilter) *listenerv3.Filter {
	h := baseHCM(statPrefix)
	if len(authz) > 0 {
		h.HttpFilters = append(authz, h.HttpFilters...)
		h.AccessLog = auditLog()
	}
	h.ForwardClientCertDetails = hcmv3.HttpConnectionManager_SANITIZE_SET
	h.SetCurrentClientCertDetails = &hcmv3.HttpConnectionManager_SetCurrentClientCertDetails{
		Subject: wrapperspb.Bool(true),
		Uri:     true,
	}
	h.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
		Name: cluster,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    cluster,
			Domains: []string{"*"},
			Routes:  []*routev3.Route{forwardRoute(cluster, false)},
		}},
		ValidateClusters: wrapperspb.Bool(false),
	}}
	return hcmFilter(h)
}

// readinessHCM answers ReadinessPath itself with Envoy's health check filter
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/configuration/http/http_filters/health_check_filter):
// 200 while Envoy runs and is not draining, 503 once it drains, so the pod
// leaves Service endpoints before Envoy stops.
func readinessHCM() *listenerv3.Filter {
	h := baseHCM("readiness")
	h.UpgradeConfigs = nil
	h.HttpFilters = []*hcmv3.HttpFilter{{
		Name: wellknown.HealthCheck,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&healthcheckv3.HealthCheck{
			PassThroughMode: wrapperspb.Bool(false),
			Headers: []*routev3.HeaderMatcher{{
				Name: ":path",
				HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
					MatchPattern: &matcherv3.StringMatcher_Exact{Exact: ReadinessPath},
				}},
			}},
		})},
	}, routerFilter()}
	h.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
		Name: ListenerReadiness,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    ListenerReadiness,
			Domains: []string{"*"},
			Routes: []*routev3.Route{{
				Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
					Status: 404,
				}},
			}},
		}},
	}}
	return hcmFilter(h)
}

func hcmFilter(h *hcmv3.HttpConnectionManager) *listenerv3.Filter {
	return &listenerv3.Filter{
		Name:       wellknown.HTTPConnectionManager,
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(h)},
	}
}
