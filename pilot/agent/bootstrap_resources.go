package agent

import (
	"fmt"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// The bootstrap's resources, built like go-control-plane's example
// (small make* functions over plain values).

// makeSDSCluster reaches the agent's SDS server over its Unix socket
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/configuration/security/secret).
func makeSDSCluster(socket string) *clusterv3.Cluster {
	c := grpcCluster(ClusterSDS, clusterv3.Cluster_STATIC, &corev3.Address{Address: &corev3.Address_Pipe{
		Pipe: &corev3.Pipe{Path: socket},
	}}, nil)
	c.ConnectTimeout = duration(time.Second)
	return c
}

// makeXDSCluster reaches pilot's xDS server by DNS name with mTLS: Envoy
// presents the pod's SVID ("default") and accepts only a certificate that
// chains to the mesh roots ("ROOTCA") and names pilot's SPIFFE ID, so a
// pod can be configured by nobody but pilot. ALPN h2 is required by
// gRPC-Go servers.
func makeXDSCluster(host string, port uint32, sni string, pilot spiffeid.ID) *clusterv3.Cluster {
	tlsCtx := &tlsv3.UpstreamTlsContext{
		Sni: sni,
		CommonTlsContext: &tlsv3.CommonTlsContext{
			AlpnProtocols: []string{"h2"},
			TlsParams: &tlsv3.TlsParameters{
				TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2,
			},
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sdsSecret(SecretDefault)},
			ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{
				CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
					DefaultValidationContext: &tlsv3.CertificateValidationContext{
						MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
							SanType: tlsv3.SubjectAltNameMatcher_URI,
							Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: pilot.String()}},
						}},
					},
					ValidationContextSdsSecretConfig: sdsSecret(SecretRootCA),
				},
			},
		},
	}
	// Keepalive notices a pilot that vanished without closing the stream
	// (node failure), so Envoy reconnects to another replica.
	keepalive := &corev3.KeepaliveSettings{Interval: duration(30 * time.Second), Timeout: duration(10 * time.Second)}
	c := grpcCluster(ClusterXDS, clusterv3.Cluster_STRICT_DNS, socketAddress(host, port), keepalive)
	c.ConnectTimeout = duration(10 * time.Second)
	// Service ClusterIPs are IPv4 in Weft clusters; fall back to IPv6 for a
	// single-stack IPv6 cluster.
	c.DnsLookupFamily = clusterv3.Cluster_V4_PREFERRED
	c.TransportSocket = &corev3.TransportSocket{
		Name:       wellknown.TransportSocketTLS,
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(tlsCtx)},
	}
	return c
}

// makeLocalCluster is a plain HTTP/1.1 cluster to a port on 127.0.0.1 (the
// admin API, the agent).
func makeLocalCluster(name string, port uint32) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       duration(time.Second),
		LoadAssignment:       loadAssignment(name, socketAddress("127.0.0.1", port)),
	}
}

// grpcCluster is an HTTP/2-only cluster with one endpoint, as Envoy's gRPC
// client needs
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/extensions/upstreams/http/v3/http_protocol_options.proto).
func grpcCluster(name string, typ clusterv3.Cluster_DiscoveryType, addr *corev3.Address, keepalive *corev3.KeepaliveSettings) *clusterv3.Cluster {
	opts := &upstreamhttpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
					Http2ProtocolOptions: &corev3.Http2ProtocolOptions{ConnectionKeepalive: keepalive},
				},
			},
		},
	}
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: typ},
		LoadAssignment:       loadAssignment(name, addr),
		TypedExtensionProtocolOptions: map[string]*anypb.Any{
			"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": mustAny(opts),
		},
	}
}

func loadAssignment(cluster string, addr *corev3.Address) *endpointv3.ClusterLoadAssignment {
	return &endpointv3.ClusterLoadAssignment{
		ClusterName: cluster,
		Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
			HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: addr}},
		}}}},
	}
}

// makeRouteListener serves one path prefix by proxying it to a local
// cluster; every other path gets Envoy's 404. This is Istio's bootstrap
// pattern for 15090 (stats from the admin API without exposing the rest of
// it) and 15021 (the kubelet probes Envoy, Envoy asks the agent).
func makeRouteListener(name, addr string, port uint32, prefix, cluster string) *listenerv3.Listener {
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: name,
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
			Name: name,
			VirtualHosts: []*routev3.VirtualHost{{
				Name:    name,
				Domains: []string{"*"},
				Routes: []*routev3.Route{{
					Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: prefix}},
					Action: &routev3.Route_Route{Route: &routev3.RouteAction{
						ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster},
					}},
				}},
			}},
		}},
		HttpFilters: []*hcmv3.HttpFilter{{
			Name:       wellknown.Router,
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerv3.Router{})},
		}},
	}
	return &listenerv3.Listener{
		Name:    name,
		Address: socketAddress(addr, port),
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name:       wellknown.HTTPConnectionManager,
			ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(hcm)},
		}}}},
	}
}

func sdsSecret(name string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_ApiConfigSource{ApiConfigSource: grpcAPIConfig(ClusterSDS, corev3.ApiConfigSource_GRPC)},
	}}
}

func socketAddress(host string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       host,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// mustAny packs a typed config deterministically. Packing a well-formed
// message built here cannot fail, so a failure is a programming error.
func mustAny(m proto.Message) *anypb.Any {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true}); err != nil {
		panic(fmt.Sprintf("pack %T: %v", m, err))
	}
	return a
}
