// Package generator turns pilot's model into Envoy configuration for one
// proxy. It is pure: functions of a model.View and a pod, returning
// go-control-plane resources (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/api)
// and errors, with no I/O and no logging, so the xDS server can run it on
// any goroutine and tests can pin its output with golden files.
//
// The shape follows Istio's sidecar config: an outbound listener on 15001
// that matches the original destination to a per-Service filter chain, EDS
// clusters outbound|<port>||<host> with mTLS chosen per endpoint, an inbound
// listener on 15006 that terminates mTLS per the workload's MeshTLS mode and
// forwards to the app on localhost, and a readiness listener on 15021.
package generator

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weftmesh/weft/pilot/model"
)

// DefaultTrustDomain is the SPIFFE trust domain when Options leaves it
// empty; DESIGN.md fixes it to the cluster DNS domain, as in Istio.
const DefaultTrustDomain = "cluster.local"

// DefaultConnectTimeout bounds upstream connection setup, Istio's default.
const DefaultConnectTimeout = 10 * time.Second

// Options are mesh-wide settings that shape every proxy's config.
type Options struct {
	// TrustDomain of SPIFFE IDs (spiffe://<td>/ns/<ns>/sa/<sa>).
	TrustDomain string
	// ConnectTimeout for upstream connections; zero means 10s.
	ConnectTimeout time.Duration
	// OutboundPort, InboundPort and ReadinessPort default to PortOutbound,
	// PortInbound and PortReadiness; tests that run several Envoys on one
	// host change them.
	OutboundPort, InboundPort, ReadinessPort uint32
	// ReadinessListener generates the readiness listener on ReadinessPort.
	// Off by default: the agent's bootstrap serves 15021 with a static
	// listener (pilot/agent), and Envoy rejects an LDS listener on the same
	// port. Turn it on for an Envoy whose bootstrap does not.
	ReadinessListener bool
	// Telemetry is the default data-plane telemetry (access logs,
	// tracing, request metrics) of every sidecar, which Telemetry
	// resources in the View override per namespace; the zero value adds
	// no access logs and no tracing, and records request metrics.
	Telemetry Telemetry
}

func (o Options) trustDomain() (spiffeid.TrustDomain, error) {
	td, err := spiffeid.TrustDomainFromString(o.TrustDomain)
	if err != nil {
		return td, fmt.Errorf("trust domain %q: %w", o.TrustDomain, err)
	}
	if err := o.Telemetry.validate(); err != nil {
		return td, err
	}
	return td, nil
}

func (o Options) withDefaults() Options {
	o.TrustDomain = cmp.Or(o.TrustDomain, DefaultTrustDomain)
	o.ConnectTimeout = cmp.Or(o.ConnectTimeout, DefaultConnectTimeout)
	o.OutboundPort = cmp.Or(o.OutboundPort, PortOutbound)
	o.InboundPort = cmp.Or(o.InboundPort, PortInbound)
	o.ReadinessPort = cmp.Or(o.ReadinessPort, PortReadiness)
	return o
}

// Resources is one proxy's configuration, by xDS type. Each slice is sorted
// by resource name. Resources may be shared between proxies (the outbound
// part is the same for every proxy in a namespace), so callers must treat
// them as read-only.
type Resources struct {
	Listeners []*listenerv3.Listener
	Clusters  []*clusterv3.Cluster
	Routes    []*routev3.RouteConfiguration
	Endpoints []*endpointv3.ClusterLoadAssignment
	// ScopedRoutes (SRDS) map HeaderTracedRoute values to route tables
	// for the traced outbound listener; empty without tracing.
	ScopedRoutes []*routev3.ScopedRouteConfiguration
}

// Merge returns the union of r and o (names must not collide).
func (r *Resources) Merge(o *Resources) *Resources {
	out := &Resources{
		Listeners: slices.Concat(r.Listeners, o.Listeners),
		Clusters:  slices.Concat(r.Clusters, o.Clusters),
		Routes:    slices.Concat(r.Routes, o.Routes),
		Endpoints: slices.Concat(r.Endpoints, o.Endpoints),

		ScopedRoutes: slices.Concat(r.ScopedRoutes, o.ScopedRoutes),
	}
	out.sort()
	return out
}

func (r *Resources) sort() {
	slices.SortFunc(r.Listeners, func(a, b *listenerv3.Listener) int { return cmp.Compare(a.GetName(), b.GetName()) })
	slices.SortFunc(r.Clusters, func(a, b *clusterv3.Cluster) int { return cmp.Compare(a.GetName(), b.GetName()) })
	slices.SortFunc(r.Routes, func(a, b *routev3.RouteConfiguration) int { return cmp.Compare(a.GetName(), b.GetName()) })
	slices.SortFunc(r.ScopedRoutes, func(a, b *routev3.ScopedRouteConfiguration) int { return cmp.Compare(a.GetName(), b.GetName()) })
	slices.SortFunc(r.Endpoints, func(a, b *endpointv3.ClusterLoadAssignment) int {
		return cmp.Compare(a.GetClusterName(), b.GetClusterName())
	})
}

// Generate builds the complete configuration of the proxy in pod.
func Generate(opts Options, v *model.View, pod *model.Pod) (*Resources, error) {
	if pod == nil {
		return nil, errors.New("no pod")
	}
	out, err := Outbound(opts, v, pod.Namespace)
	if err != nil {
		return nil, err
	}
	in, err := Inbound(opts, v, pod)
	if err != nil {
		return nil, err
	}
	return out.Merge(in), nil
}

// Outbound builds the part of a proxy's config that depends only on its
// namespace (which Services it may see): the outbound listener, the
// outbound and passthrough clusters, their endpoints and routes. It is
// OutboundService for each visible Service put together by
// AssembleOutbound; the xDS server does the same with cached
// ServiceConfigs.
func Outbound(opts Options, v *model.View, namespace string) (*Resources, error) {
	var services []*ServiceConfig
	for _, svc := range v.VisibleServices(namespace) {
		sc, err := OutboundService(opts, v, svc)
		if err != nil {
			return nil, err
		}
		services = append(services, sc)
	}
	if _, err := opts.withDefaults().trustDomain(); err != nil {
		return nil, err
	}
	return AssembleOutbound(opts, services, opts.Telemetry.TracingFor(v.Telemetry(namespace))), nil
}

// Inbound builds the part of a proxy's config that depends on the pod
// itself: the inbound listener for the ports its Services target, with the
// pod's resolved MeshTLS mode and its AuthorizationPolicies (RBAC filters), the clusters that reach the app on
// localhost, and (if Options.ReadinessListener) the readiness listener.
func Inbound(opts Options, v *model.View, pod *model.Pod) (*Resources, error) {
	if pod == nil {
		return nil, errors.New("no pod")
	}
	opts = opts.withDefaults()
	ports := inboundPorts(v, pod)
	mtls := v.MTLS(pod)
	out := &Resources{
		Listeners: []*listenerv3.Listener{makeInboundListener(opts, ports, mtls, newAuthz(opts.TrustDomain, v.Authz(pod)))},
		Clusters:  []*clusterv3.Cluster{makeInboundPassthroughCluster(opts)},
	}
	if opts.ReadinessListener {
		out.Listeners = append(out.Listeners, makeReadinessListener(opts))
	}
	for _, p := range ports {
		out.Clusters = append(out.Clusters, makeInboundCluster(opts, p))
	}
	applyInboundRequestMetrics(opts, v, pod, out)
	applyInboundTelemetry(opts, v.Telemetry(pod.Namespace), pod, out)
	out.sort()
	return out, nil
}
