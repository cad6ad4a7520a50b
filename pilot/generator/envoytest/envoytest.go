// Package envoytest checks generated config with a real Envoy: it writes a
// bootstrap shaped like the one the sidecar agent writes and runs
// `envoy --mode validate` on it
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/operations/cli#cmdoption-mode).
package envoytest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	internallistenerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/bootstrap/internal_listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weftmesh/weft/pilot/generator"
)

// Binary finds Envoy: $WEFT_ENVOY, then .cache/bin/envoy at the module root
// (where `make envoy` puts it), then $PATH.
func Binary() (string, bool) {
	if p := os.Getenv("WEFT_ENVOY"); p != "" {
		return p, true
	}
	if dir, err := os.Getwd(); err == nil {
		for ; dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				p := filepath.Join(dir, ".cache", "bin", "envoy")
				if _, err := os.Stat(p); err == nil {
					return p, true
				}
				break
			}
		}
	}
	p, err := exec.LookPath("envoy")
	return p, err == nil
}

// Bootstrap is the agent's bootstrap reduced to what generated config refers
// to: the xds-grpc and sds-grpc clusters and ADS, with the given listeners
// and clusters as static resources. With inline set, RDS references are
// replaced by the route tables and EDS clusters by static ones carrying
// their ClusterLoadAssignment, so validation covers every resource type.
func Bootstrap(nodeID string, res *generator.Resources, inline bool) *bootstrapv3.Bootstrap {
	routes := map[string]*routev3.RouteConfiguration{}
	for _, r := range res.Routes {
		routes[r.GetName()] = r
	}
	cla := map[string]*endpointv3.ClusterLoadAssignment{}
	for _, e := range res.Endpoints {
		cla[e.GetClusterName()] = e
	}
	b := &bootstrapv3.Bootstrap{
		Node: &corev3.Node{Id: nodeID, Cluster: "weft"},
		Admin: &bootstrapv3.Admin{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{}},
		}}},
		BootstrapExtensions: []*corev3.TypedExtensionConfig{{
			Name: "envoy.bootstrap.internal_listener", TypedConfig: mustAny(&internallistenerv3.InternalListener{}),
		}},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{
			Clusters: []*clusterv3.Cluster{
				GRPCCluster(generator.XDSClusterName, tcpAddress("127.0.0.1", 15010)),
				GRPCCluster(generator.SDSClusterName, &corev3.Address{Address: &corev3.Address_Pipe{
					Pipe: &corev3.Pipe{Path: generator.SDSSocketPath},
				}}),
			},
		},
		DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{AdsConfig: &corev3.ApiConfigSource{
			ApiType:             corev3.ApiConfigSource_GRPC,
			TransportApiVersion: corev3.ApiVersion_V3,
			GrpcServices: []*corev3.GrpcService{{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
				EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: generator.XDSClusterName},
			}}},
		}},
	}
	for _, l := range res.Listeners {
		l = proto.Clone(l).(*listenerv3.Listener)
		if inline {
			inlineRoutes(l, routes, res.ScopedRoutes)
		}
		b.StaticResources.Listeners = append(b.StaticResources.Listeners, l)
	}
	for _, c := range res.Clusters {
		c = proto.Clone(c).(*clusterv3.Cluster)
		if inline && c.GetType() == clusterv3.Cluster_EDS {
			c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}
			c.LoadAssignment = proto.Clone(cla[c.GetEdsClusterConfig().GetServiceName()]).(*endpointv3.ClusterLoadAssignment)
			c.LoadAssignment.ClusterName = c.Name
			c.EdsClusterConfig = nil
		}
		b.StaticResources.Clusters = append(b.StaticResources.Clusters, c)
	}
	return b
}

func inlineRoutes(l *listenerv3.Listener, routes map[string]*routev3.RouteConfiguration, scopes []*routev3.ScopedRouteConfiguration) {
	for _, fc := range l.GetFilterChains() {
		for _, f := range fc.GetFilters() {
			var h hcmv3.HttpConnectionManager
			if f.GetTypedConfig().MessageIs(&h) {
				if err := f.GetTypedConfig().UnmarshalTo(&h); err != nil {
					continue
				}
				switch {
				case h.GetRds() != nil:
					h.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: routes[h.GetRds().GetRouteConfigName()]}
				case h.GetScopedRoutes().GetScopedRds() != nil:
					var list []*routev3.ScopedRouteConfiguration
					for _, s := range scopes {
						s = proto.Clone(s).(*routev3.ScopedRouteConfiguration)
						s.RouteConfiguration, s.RouteConfigurationName = routes[s.GetRouteConfigurationName()], ""
						list = append(list, s)
					}
					h.GetScopedRoutes().ConfigSpecifier = &hcmv3.ScopedRoutes_ScopedRouteConfigurationsList{
						ScopedRouteConfigurationsList: &hcmv3.ScopedRouteConfigurationsList{ScopedRouteConfigurations: list},
					}
				default:
					continue
				}
				a, err := anypb.New(&h)
				if err == nil {
					f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
				}
			}
		}
	}
}

// GRPCCluster is a static HTTP/2 cluster like the agent's xds-grpc and
// sds-grpc.
func GRPCCluster(name string, addr *corev3.Address) *clusterv3.Cluster {
	opts, err := anypb.New(&upstreamhttpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
					Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
				},
			},
		},
	})
	if err != nil {
		panic(err)
	}
	return &clusterv3.Cluster{
		Name:                          name,
		ClusterDiscoveryType:          &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		TypedExtensionProtocolOptions: map[string]*anypb.Any{"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": opts},
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: addr}},
			}}}},
		},
	}
}

func tcpAddress(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// Validate runs `envoy --mode validate` on the bootstrap and returns Envoy's
// output and an error if Envoy rejected it.
func Validate(ctx context.Context, bin, dir string, b *bootstrapv3.Bootstrap) (string, error) {
	data, err := protojson.Marshal(b)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "bootstrap.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "--mode", "validate", "-c", path, "-l", "warn",
		"--base-id", "0", "--use-dynamic-base-id", "--disable-hot-restart")
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.String(), err
}

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err)
	}
	return a
}
