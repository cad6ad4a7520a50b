package generator

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"sync"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weftmesh/weft/pilot/model"
)

// ServiceConfig is the outbound config of one Service: its clusters,
// endpoints, routes and filter chains. It depends only on the Service and
// what backs it, never on the proxy, so the xDS server builds it once per
// change of those inputs and shares it between every proxy that may see the
// Service. AssembleOutbound turns a set of them into a proxy's outbound
// config.
type ServiceConfig struct {
	Clusters  []*clusterv3.Cluster
	Routes    []*routev3.RouteConfiguration
	Endpoints []*endpointv3.ClusterLoadAssignment
	// ScopedRoutes are the SRDS scopes of Routes, with a collector only.
	ScopedRoutes []*routev3.ScopedRouteConfiguration
	chains       []outboundChain
	// tracing is the setting Routes were built with (meshTracing);
	// variants are copies for other settings, made on demand by routesFor.
	tracing  TracingSetting
	mu       sync.Mutex
	variants map[TracingSetting][]*routev3.RouteConfiguration
}

// outboundChain is a filter chain before assembly: headless chains may
// lose addresses that another Service already routes.
type outboundChain struct {
	name     string
	port     uint32
	addrs    []netip.Addr
	filter   *listenerv3.Filter
	route    string // RDS name the filter uses; empty for TCP
	headless bool
}

// OutboundService builds the outbound config of svc: for each TCP port, an
// EDS cluster with its endpoints and a filter chain on the virtual IPs (or,
// for headless Services, an ORIGINAL_DST cluster and chains on the meshed
// pod IPs), plus an RDS route table for HTTP ports. The Service's
// TrafficPolicy shapes its clusters and routes, and the GAMMA routes
// attached to it replace its default route.
func OutboundService(opts Options, v *model.View, svc *model.Service) (*ServiceConfig, error) {
	opts = opts.withDefaults()
	td, err := opts.trustDomain()
	if err != nil {
		return nil, err
	}
	host := svc.Hostname(v.ClusterDomain())
	ids := spiffeIDs(td, svc.Namespace, v.ServiceAccounts(svc))
	rt := serviceRoutes{host: host, domain: v.ClusterDomain(), rules: v.RouteTable().For(svc.Key()), policy: v.TrafficTable().For(svc.Key())}
	sc := &ServiceConfig{}
	for _, sp := range svc.Ports {
		proto := sp.Classify()
		if proto == model.ProtocolUnsupported {
			continue
		}
		name := OutboundClusterName(sp.Port, host)
		bs := backends(v, svc, sp)
		if svc.Headless {
			sc.addHeadless(opts, name, rt, sp, proto, ids, bs)
			continue
		}
		if len(svc.ClusterIPs) == 0 {
			continue
		}
		cluster := makeEDSCluster(opts, name, proto, ids)
		applyClusterPolicy(cluster, rt.policy, proto)
		sc.Clusters = append(sc.Clusters, cluster)
		sc.Endpoints = append(sc.Endpoints, makeLoadAssignment(name, bs))
		c := outboundChain{name: name, port: uint32(sp.Port), addrs: svc.ClusterIPs, filter: tcpProxyFilter(name, name)}
		if proto.IsHTTP() {
			sc.Routes = append(sc.Routes, rt.table(name, sp.Port))
			c.filter, c.route = outboundHCM(name, name), name
		}
		sc.chains = append(sc.chains, c)
	}
	applyOutboundTelemetry(meshTracing(opts, v), sc)
	applyOutboundRequestMetrics(opts, v, host, sc)
	if opts.Telemetry.collector().On() {
		// Built with the fragment, so assemblies share them (and their
		// hashes) instead of making one per route table every push.
		sc.ScopedRoutes = tracedScopes(sc.Routes)
	}
	return sc, nil
}

// addHeadless routes connections to the meshed pods of a headless Service
// through an ORIGINAL_DST cluster with mTLS. Clients dial pod IPs on the
// endpoint (target) port, so chains match those. Pods without a sidecar
// get no chain and fall through to the plaintext passthrough.
func (sc *ServiceConfig) addHeadless(opts Options, name string, rt serviceRoutes, sp model.ServicePort, proto model.Protocol, ids []string, bs []backend) {
	byPort := map[uint16][]netip.Addr{}
	for _, be := range bs {
		if be.meshed {
			byPort[be.addr.Port()] = append(byPort[be.addr.Port()], be.addr.Addr())
		}
	}
	if len(byPort) == 0 {
		return
	}
	cluster := makeHeadlessCluster(opts, name, proto, ids)
	applyClusterPolicy(cluster, rt.policy, proto)
	sc.Clusters = append(sc.Clusters, cluster)
	filter, route := tcpProxyFilter(name, name), ""
	if proto.IsHTTP() {
		sc.Routes = append(sc.Routes, rt.table(name, sp.Port))
		filter, route = outboundHCM(name, name), name
	}
	for i, port := range slices.Sorted(maps.Keys(byPort)) {
		chainName := name
		if i > 0 {
			chainName = name + "|" + strconv.Itoa(int(port))
		}
		sc.chains = append(sc.chains, outboundChain{
			name: chainName, port: uint32(port), addrs: byPort[port], filter: filter, route: route, headless: true,
		})
	}
}

// serviceRoutes is what a Service's route tables are built from.
type serviceRoutes struct {
	host, domain string
	rules        []model.AttachedRule
	policy       *model.TrafficPolicy
}

// table is the route table of one HTTP port: the rules attached to that
// port or to the whole Service.
func (rt serviceRoutes) table(name string, port int32) *routev3.RouteConfiguration {
	var rules []model.AttachedRule
	for _, a := range rt.rules {
		if a.Port == 0 || a.Port == port {
			rules = append(rules, a)
		}
	}
	return makeServiceRoute(routeInput{name: name, hostname: rt.host, port: port, domain: rt.domain, rules: rules, policy: rt.policy})
}

// AssembleOutbound combines the ServiceConfigs a proxy may see (in sorted
// Service order) into its outbound config: their clusters, endpoints and
// routes, the passthrough cluster, and the outbound listener. A pod IP and
// port routed by two headless Services goes to the first, since Envoy
// rejects a listener whose chains match the same traffic twice. tracing
// is the namespace's (Telemetry.TracingFor): route tables built with
// another setting are swapped for copies (routesFor). With a collector
// the traced internal listener serves every route table and the collector
// cluster is there, whether this namespace traces or not
// (Telemetry.collector).
func AssembleOutbound(opts Options, services []*ServiceConfig, tracing TracingSetting) *Resources {
	opts = opts.withDefaults()
	res := &Resources{}
	claimed := map[netip.AddrPort]bool{}
	var chains []*listenerv3.FilterChain
	for _, sc := range services {
		res.Clusters = append(res.Clusters, sc.Clusters...)
		res.Endpoints = append(res.Endpoints, sc.Endpoints...)
		routes := map[string]bool{}
		for _, c := range sc.chains {
			addrs := c.addrs
			if c.headless {
				addrs = slices.DeleteFunc(slices.Clone(addrs), func(a netip.Addr) bool {
					ap := netip.AddrPortFrom(a, uint16(c.port))
					taken := claimed[ap]
					claimed[ap] = true
					return taken
				})
			}
			if len(addrs) == 0 {
				continue
			}
			chains = append(chains, makeOutboundChain(c, addrs))
			routes[c.route] = true
		}
		for _, r := range sc.routesFor(tracing) {
			if routes[r.GetName()] {
				res.Routes = append(res.Routes, r)
			}
		}
		for _, sr := range sc.ScopedRoutes {
			if routes[sr.GetName()] {
				res.ScopedRoutes = append(res.ScopedRoutes, sr)
			}
		}
	}
	res.Clusters = append(res.Clusters, makePassthroughCluster(opts, ClusterPassthrough))
	res.Listeners = append(res.Listeners, makeOutboundListener(opts, chains))
	if col := opts.Telemetry.collector(); col.On() {
		l, c := col.tracedOutbound(opts)
		res.Listeners = append(res.Listeners, l)
		res.Clusters = append(res.Clusters, c, col.collectorCluster(opts))
	}
	res.sort()
	return res
}

// makeOutboundChain matches destination port and addresses
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/config/listener/v3/listener_components.proto#config-listener-v3-filterchainmatch)
// and runs the chain's HTTP connection manager or TCP proxy.
func makeOutboundChain(c outboundChain, addrs []netip.Addr) *listenerv3.FilterChain {
	ranges := make([]*corev3.CidrRange, 0, len(addrs))
	for _, a := range addrs {
		ranges = append(ranges, cidr(a))
	}
	return &listenerv3.FilterChain{
		Name: c.name,
		FilterChainMatch: &listenerv3.FilterChainMatch{
			DestinationPort: wrapperspb.UInt32(c.port),
			PrefixRanges:    ranges,
		},
		Filters: []*listenerv3.Filter{c.filter},
	}
}

// makeOutboundListener receives everything the app sends (iptables REDIRECT
// to 15001), recovers the original destination with the original_dst
// listener filter and picks the filter chain of the destination Service;
// anything else goes to the passthrough cluster in plaintext, so non-mesh
// destinations keep working
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/config/listener/v3/listener.proto).
func makeOutboundListener(opts Options, chains []*listenerv3.FilterChain) *listenerv3.Listener {
	slices.SortFunc(chains, func(a, c *listenerv3.FilterChain) int { return cmp.Compare(a.Name, c.Name) })
	return &listenerv3.Listener{
		Name:             ListenerOutbound,
		Address:          socketAddress("0.0.0.0", opts.OutboundPort),
		TrafficDirection: corev3.TrafficDirection_OUTBOUND,
		ListenerFilters:  []*listenerv3.ListenerFilter{originalDstFilter()},
		FilterChains:     chains,
		DefaultFilterChain: &listenerv3.FilterChain{
			Name:    ClusterPassthrough,
			Filters: []*listenerv3.Filter{tcpProxyFilter(ClusterPassthrough, ClusterPassthrough)},
		},
	}
}

// spiffeIDs are the identities a client accepts from a Service's pods:
// spiffe://<td>/ns/<ns>/sa/<sa> for each service account behind it. With no
// known pods it returns an ID no certificate carries, because an empty SAN
// list would make Envoy accept any mesh identity should an endpoint update
// overtake the cluster update that names its service account.
func spiffeIDs(td spiffeid.TrustDomain, namespace string, serviceAccounts []string) []string {
	out := make([]string, 0, len(serviceAccounts))
	for _, sa := range serviceAccounts {
		// Invalid names cannot come from the API server; skipping one only
		// narrows what is accepted.
		if id, err := spiffeid.FromSegments(td, "ns", namespace, "sa", sa); err == nil {
			out = append(out, id.String())
		}
	}
	if len(out) == 0 {
		out = append(out, td.IDString()+"/ns/"+namespace+"/no-endpoints")
	}
	return out
}
