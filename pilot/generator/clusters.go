package generator

import (
	"math"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weftmesh/weft/pilot/model"
)

const httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// makeEDSCluster is an outbound cluster for a Service port whose endpoints
// come over ADS. Whether an endpoint gets mTLS is decided per endpoint by
// its metadata (TLSModeKey), with transport_socket_matches, so plaintext
// still reaches pods without a sidecar (Istio's auto mTLS,
// https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/config/cluster/v3/cluster.proto#envoy-v3-api-field-config-cluster-v3-cluster-transport-socket-matches).
func makeEDSCluster(opts Options, name string, proto model.Protocol, peerIDs []string) *clusterv3.Cluster {
	c := baseCluster(opts, name, proto)
	c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}
	c.EdsClusterConfig = &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsConfig(), ServiceName: name}
	c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
	c.TransportSocketMatches = []*clusterv3.Cluster_TransportSocketMatch{
		{
			Name:            "tlsMode-" + TLSModeWeft,
			Match:           tlsModeStruct(),
			TransportSocket: upstreamTLS(sniFor(name), peerIDs),
		},
		{
			Name:            "tlsMode-disabled",
			Match:           &structpb.Struct{},
			TransportSocket: rawBuffer(),
		},
	}
	return c
}

// makeHeadlessCluster reaches the pod a client dialled directly (headless
// Services have no virtual IP to balance). Only pods with a sidecar are
// routed here, so it always speaks mTLS
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/intro/arch_overview/upstream/load_balancing/original_dst).
func makeHeadlessCluster(opts Options, name string, proto model.Protocol, peerIDs []string) *clusterv3.Cluster {
	c := baseCluster(opts, name, proto)
	c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST}
	c.LbPolicy = clusterv3.Cluster_CLUSTER_PROVIDED
	c.TransportSocket = upstreamTLS(sniFor(name), peerIDs)
	return c
}

// makePassthroughCluster forwards to the original destination in
// plaintext: traffic for anything that is not a mesh Service (the API
// server, external hosts, pods addressed directly).
func makePassthroughCluster(opts Options, name string) *clusterv3.Cluster {
	c := baseCluster(opts, name, model.ProtocolTCP)
	c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST}
	c.LbPolicy = clusterv3.Cluster_CLUSTER_PROVIDED
	return c
}

// makeInboundPassthroughCluster forwards inbound connections on ports no
// Service declares to their original destination, the pod IP. It binds
// InboundPassthroughSource so weft-redirect lets the connection reach the
// app; from the pod IP, the proxy UID's connection to its own pod would be
// redirected to the inbound listener again, a loop (Istio does the same,
// https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/config/core/v3/address.proto#envoy-v3-api-msg-config-core-v3-bindconfig).
func makeInboundPassthroughCluster(opts Options) *clusterv3.Cluster {
	c := makePassthroughCluster(opts, ClusterInboundPassthrough)
	c.UpstreamBindConfig = &corev3.BindConfig{SourceAddress: &corev3.SocketAddress{
		Address:       InboundPassthroughSource,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 0},
	}}
	return c
}

// makeInboundCluster delivers to the app on 127.0.0.1:<port>. Localhost
// (not the pod IP) keeps the hop inside the pod and matches what the lead
// fixed for Weft; apps must therefore listen on 0.0.0.0 or 127.0.0.1, which
// is Kubernetes' norm.
func makeInboundCluster(opts Options, p inboundPort) *clusterv3.Cluster {
	c := baseCluster(opts, InboundClusterName(p.port), p.proto)
	c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}
	c.LoadAssignment = &endpointv3.ClusterLoadAssignment{
		ClusterName: c.Name,
		Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{lbEndpoint("127.0.0.1", uint32(p.port), nil)},
		}},
	}
	return c
}

// baseCluster sets what every cluster shares: the connect timeout, circuit
// breakers opened wide (as in Istio: the mesh should not invent limits the
// app did not ask for;
// https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/config/cluster/v3/circuit_breaker.proto)
// and the upstream HTTP protocol for HTTP ports.
func baseCluster(opts Options, name string, proto model.Protocol) *clusterv3.Cluster {
	c := &clusterv3.Cluster{
		Name:           name,
		ConnectTimeout: duration(opts.ConnectTimeout),
		CircuitBreakers: &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
			MaxConnections:     wrapperspb.UInt32(math.MaxUint32),
			MaxPendingRequests: wrapperspb.UInt32(math.MaxUint32),
			MaxRequests:        wrapperspb.UInt32(math.MaxUint32),
			MaxRetries:         wrapperspb.UInt32(math.MaxUint32),
		}}},
	}
	if o := httpProtocolOptions(proto); o != nil {
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{httpProtocolOptionsKey: o}
	}
	return c
}

// httpProtocolOptions speaks HTTP/2 upstream on HTTP/2 (gRPC) ports and the
// client's own protocol on HTTP ports
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/extensions/upstreams/http/v3/http_protocol_options.proto).
func httpProtocolOptions(proto model.Protocol) *anypb.Any {
	switch proto {
	case model.ProtocolHTTP2:
		return mustAny(&upstreamhttpv3.HttpProtocolOptions{
			UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{
				ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
					ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
						Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
					},
				},
			},
		})
	case model.ProtocolHTTP:
		return mustAny(&upstreamhttpv3.HttpProtocolOptions{
			UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_UseDownstreamProtocolConfig{
				UseDownstreamProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_UseDownstreamHttpConfig{
					HttpProtocolOptions:  &corev3.Http1ProtocolOptions{},
					Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
				},
			},
		})
	}
	return nil
}

// sniFor turns outbound|8080||a.b.svc.cluster.local into Istio's SNI form
// outbound_.8080_._.a.b.svc.cluster.local, a valid DNS name that names the
// cluster in the server's logs.
func sniFor(cluster string) string { return strings.ReplaceAll(cluster, "|", "_.") }

func tlsModeStruct() *structpb.Struct {
	return &structpb.Struct{Fields: map[string]*structpb.Value{TLSModeKey: structpb.NewStringValue(TLSModeWeft)}}
}
