package generator

import (
	"cmp"
	"slices"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weftmesh/weft/pilot/model"
)

// inboundPort is a container port some Service targets on this pod.
type inboundPort struct {
	port  int32
	proto model.Protocol
}

// inboundPorts resolves the target ports of the Services that select the
// pod. When Services disagree on a port's protocol, TCP wins: it carries
// HTTP too, while an HTTP connection manager would break a TCP protocol.
func inboundPorts(v *model.View, pod *model.Pod) []inboundPort {
	protos := map[int32]model.Protocol{}
	for _, svc := range v.ServicesFor(pod) {
		for _, sp := range svc.Ports {
			proto := sp.Classify()
			if proto == model.ProtocolUnsupported {
				continue
			}
			port, ok := pod.TargetPort(sp)
			if !ok || port <= 0 || port > 65535 {
				continue
			}
			if prev, ok := protos[port]; ok && prev != proto {
				proto = model.ProtocolTCP
			}
			protos[port] = proto
		}
	}
	out := make([]inboundPort, 0, len(protos))
	for port, proto := range protos {
		out = append(out, inboundPort{port: port, proto: proto})
	}
	slices.SortFunc(out, func(a, b inboundPort) int { return cmp.Compare(a.port, b.port) })
	return out
}

// makeInboundListener receives connections iptables redirected to 15006 and
// matches them by original destination port and, per the workload's mTLS
// mode, by transport:
//
//   - STRICT: every connection to the port must complete mTLS; plaintext
//     fails the handshake.
//   - PERMISSIVE: the tls_inspector tells mesh mTLS (TLS offering ALPN
//     "weft"), the app's own TLS (passed through untouched) and plaintext
//     apart, as Istio does.
//   - DISABLE: plaintext (and the app's own TLS) only.
//
// Ports no Service declares get the same treatment and are forwarded to the
// original destination (the pod IP) by InboundPassthroughCluster.
// See https://www.envoyproxy.io/docs/envoy/v1.37.0/intro/arch_overview/listeners/listener_filters
// and https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/config/listener/v3/listener_components.proto#config-listener-v3-filterchainmatch.
func makeInboundListener(opts Options, ports []inboundPort, mtls model.EffectiveMTLS, az authz) *listenerv3.Listener {
	var chains []*listenerv3.FilterChain
	for _, p := range ports {
		name := InboundClusterName(p.port)
		prefix := "inbound_" + strconv.Itoa(int(p.port))
		tcp := append(az.networkFilters(prefix), tcpProxyFilter(name, name))
		app := tcp
		if p.proto.IsHTTP() {
			app = []*listenerv3.Filter{inboundHCM(prefix, name, az.httpFilters())}
		}
		chains = append(chains, modeChains(opts, name, wrapperspb.UInt32(uint32(p.port)), mtls.ForPort(p.port), app, tcp)...)
	}
	passthrough := append(az.networkFilters("inbound_passthrough"),
		tcpProxyFilter(ClusterInboundPassthrough, ClusterInboundPassthrough))
	chains = append(chains, modeChains(opts, "inbound|passthrough||", nil, mtls.Mode, passthrough, passthrough)...)
	return &listenerv3.Listener{
		Name:             ListenerInbound,
		Address:          socketAddress("0.0.0.0", opts.InboundPort),
		TrafficDirection: corev3.TrafficDirection_INBOUND,
		ListenerFilters:  []*listenerv3.ListenerFilter{originalDstFilter(), tlsInspectorFilter()},
		FilterChains:     chains,
	}
}

// modeChains returns the filter chains of one port (nil port: any port) in
// the given mTLS mode. app are the filters that deliver to the app (on mTLS
// and plaintext alike: the HTTP connection manager's XFCC handling covers
// both); connections with the app's own TLS go through tcp, an opaque TCP
// proxy (both with the workload's authorization filters in front).
func modeChains(opts Options, name string, port *wrapperspb.UInt32Value, mode model.MTLSMode,
	app, tcp []*listenerv3.Filter,
) []*listenerv3.FilterChain {
	chain := func(suffix string, m *listenerv3.FilterChainMatch, f []*listenerv3.Filter, ts *corev3.TransportSocket) *listenerv3.FilterChain {
		m.DestinationPort = port
		return &listenerv3.FilterChain{
			Name:             name + suffix,
			FilterChainMatch: m,
			Filters:          f,
			TransportSocket:  ts,
		}
	}
	appTLS := chain("app-tls", &listenerv3.FilterChainMatch{TransportProtocol: "tls"}, tcp, nil)
	plain := chain("plaintext", &listenerv3.FilterChainMatch{TransportProtocol: "raw_buffer"}, app, nil)
	switch mode {
	case model.MTLSStrict:
		return []*listenerv3.FilterChain{
			chain("mtls", &listenerv3.FilterChainMatch{}, app, downstreamTLS(opts.TrustDomain)),
		}
	case model.MTLSDisable:
		return []*listenerv3.FilterChain{appTLS, plain}
	default:
		return []*listenerv3.FilterChain{
			chain("mtls", &listenerv3.FilterChainMatch{
				TransportProtocol:    "tls",
				ApplicationProtocols: []string{ALPNWeft},
			}, app, downstreamTLS(opts.TrustDomain)),
			appTLS,
			plain,
		}
	}
}

// makeReadinessListener serves the kubelet's readiness probe on 15021 (see
// readinessHCM). It arrives with the rest of the config over xDS, so a pod
// becomes ready only once its sidecar is configured.
func makeReadinessListener(opts Options) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name:    ListenerReadiness,
		Address: socketAddress("0.0.0.0", opts.ReadinessPort),
		FilterChains: []*listenerv3.FilterChain{{
			Filters: []*listenerv3.Filter{readinessHCM()},
		}},
	}
}
