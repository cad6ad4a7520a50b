package model

import (
	"slices"
	"strings"
	"sync"
)

// viewPolicies are the traffic and access objects of a View, with the
// route and traffic tables computed once, on first use, and shared by the
// generator and the status writer.
type viewPolicies struct {
	routes  []*Route
	traffic []*TrafficPolicy
	authz   []*AuthzPolicy
	tel     []*TelemetryPolicy

	routeOnce   sync.Once
	routeTable  *RouteTable
	trafficOnce sync.Once
	trafficTab  *TrafficTable
	telOnce     sync.Once
	telWinners  map[string]*TelemetryPolicy
}

// Objects are the traffic and access policy objects of a View built by
// NewViewWith.
type Objects struct {
	Routes  []*Route
	Traffic []*TrafficPolicy
	Authz   []*AuthzPolicy
	// Telemetry are the Telemetry resources.
	Telemetry []*TelemetryPolicy
}

// NewViewWith is NewView plus routes and policies, for tests and tools.
func NewViewWith(cfg StoreConfig, services []*Service, slices []*EndpointSlice, pods []*Pod, tls []*TLSPolicy, o Objects) *View {
	v := NewView(cfg, services, slices, pods, tls)
	out := *v
	out.pol = &viewPolicies{}
	out.setPolicies(o.Routes, o.Traffic, o.Authz, o.Telemetry)
	return &out
}

func (v *View) setPolicies(routes []*Route, traffic []*TrafficPolicy, authz []*AuthzPolicy, tel []*TelemetryPolicy) {
	p := &viewPolicies{routes: routes, traffic: traffic, authz: authz, tel: tel}
	slices.SortFunc(p.routes, func(a, b *Route) int {
		if c := compareKeys(a.Key(), b.Key()); c != 0 {
			return c
		}
		return strings.Compare(string(a.Kind), string(b.Kind))
	})
	slices.SortFunc(p.traffic, func(a, b *TrafficPolicy) int { return compareKeys(a.Key(), b.Key()) })
	slices.SortFunc(p.authz, func(a, b *AuthzPolicy) int { return compareKeys(a.Key(), b.Key()) })
	slices.SortFunc(p.tel, func(a, b *TelemetryPolicy) int { return compareKeys(a.Key(), b.Key()) })
	v.pol = p
}

func (v *View) policiesOrEmpty() *viewPolicies {
	if v.pol == nil {
		return &viewPolicies{}
	}
	return v.pol
}

// Routes returns every HTTPRoute and GRPCRoute, sorted by namespace/name.
func (v *View) Routes() []*Route { return v.policiesOrEmpty().routes }

// TrafficPolicies returns every TrafficPolicy, sorted by namespace/name.
func (v *View) TrafficPolicies() []*TrafficPolicy { return v.policiesOrEmpty().traffic }

// AuthzPolicies returns every AuthorizationPolicy, sorted by
// namespace/name.
func (v *View) AuthzPolicies() []*AuthzPolicy { return v.policiesOrEmpty().authz }

// RouteTable attaches the routes to Services; see ResolveRoutes.
func (v *View) RouteTable() *RouteTable {
	p := v.policiesOrEmpty()
	if v.pol == nil {
		return ResolveRoutes(v.services, nil)
	}
	p.routeOnce.Do(func() { p.routeTable = ResolveRoutes(v.services, p.routes) })
	return p.routeTable
}

// TrafficTable maps Services to their TrafficPolicy; see
// ResolveTrafficPolicies.
func (v *View) TrafficTable() *TrafficTable {
	p := v.policiesOrEmpty()
	if v.pol == nil {
		return ResolveTrafficPolicies(v.services, nil)
	}
	p.trafficOnce.Do(func() { p.trafficTab = ResolveTrafficPolicies(v.services, p.traffic) })
	return p.trafficTab
}

// Authz returns the AuthorizationPolicies that govern a pod; see
// SelectAuthz.
func (v *View) Authz(p *Pod) []*AuthzPolicy {
	return SelectAuthz(v.AuthzPolicies(), v.cfg.RootNamespace, p.Namespace, p.Labels)
}

// Telemetries returns every Telemetry, sorted by namespace/name.
func (v *View) Telemetries() []*TelemetryPolicy { return v.policiesOrEmpty().tel }

// TelemetryWinner is the Telemetry in force in namespace (see
// TelemetryWinner), or nil.
func (v *View) TelemetryWinner(namespace string) *TelemetryPolicy {
	p := v.policiesOrEmpty()
	if len(p.tel) == 0 {
		return nil
	}
	p.telOnce.Do(func() {
		p.telWinners = map[string]*TelemetryPolicy{}
		for _, t := range p.tel {
			p.telWinners[t.Namespace] = olderTelemetry(p.telWinners[t.Namespace], t)
		}
	})
	return p.telWinners[namespace]
}

// Telemetry is the merged Telemetry of a namespace: its own over the root
// namespace's; see ResolveTelemetry. Pods of the namespace share it (there
// is no workload selector), which keeps the outbound config shared.
func (v *View) Telemetry(namespace string) TelemetrySettings {
	var ns *TelemetryPolicy
	if namespace != v.cfg.RootNamespace {
		ns = v.TelemetryWinner(namespace)
	}
	return mergeTelemetry(v.TelemetryWinner(v.cfg.RootNamespace), ns)
}
