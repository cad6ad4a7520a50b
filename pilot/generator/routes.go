package generator

import (
	"strconv"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// makeOutboundRoute is the RDS route table of one HTTP Service port. The
// filter chain that uses it already matched the Service's virtual IP, so
// the table needs no Host matching and every Host header works, as it does
// without a mesh
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/config/route/v3/route.proto).
func makeOutboundRoute(name, hostname string, port int32) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{
		Name: name,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    hostname + ":" + strconv.Itoa(int(port)),
			Domains: []string{"*"},
			Routes:  []*routev3.Route{forwardRoute(name, true)},
		}},
		ValidateClusters: wrapperspb.Bool(false),
	}
}

// forwardRoute sends every request to cluster with no route timeout, so
// streaming and long-polling requests (gRPC streams, watches) are not cut
// at Envoy's 15s default. Outbound routes retry failed connection attempts
// and refused streams twice, Istio's default retry policy
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/configuration/http/http_filters/router_filter#x-envoy-retry-on).
func forwardRoute(cluster string, retry bool) *routev3.Route {
	action := &routev3.RouteAction{
		ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster},
		Timeout:          duration(0),
	}
	if retry {
		action.RetryPolicy = &routev3.RetryPolicy{
			RetryOn:    "connect-failure,refused-stream,unavailable,cancelled",
			NumRetries: wrapperspb.UInt32(2),
		}
	}
	return &routev3.Route{
		Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_Route{Route: action},
	}
}
