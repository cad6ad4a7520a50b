package model

import (
	"maps"
	"slices"
	"sync"
)

// Kind names the type of object a change was about, for logs and metrics.
type Kind string

// Kinds of objects the Store holds.
const (
	KindService       Kind = "Service"
	KindEndpointSlice Kind = "EndpointSlice"
	KindPod           Kind = "Pod"
	KindTLSPolicy     Kind = "MeshTLS"
	KindRoute         Kind = "Route"
	KindTraffic       Kind = "TrafficPolicy"
	KindAuthz         Kind = "AuthorizationPolicy"
	KindTelemetry     Kind = "Telemetry"
)

// Event tells subscribers that an object changed. It carries no object: a
// subscriber reads the new state from a View, so a burst of events costs one
// rebuild.
type Event struct {
	Kind Kind
	Key  Key
}

// StoreConfig configures a Store.
type StoreConfig struct {
	// RootNamespace holds mesh-wide policy (weft-system); see ResolveMTLS.
	RootNamespace string
	// ClusterDomain is the DNS domain of Service hostnames; empty means
	// cluster.local.
	ClusterDomain string
}

// Store is the mutable model. Writes replace whole objects (callers must not
// modify an object after handing it over), so Views can share them.
type Store struct {
	cfg StoreConfig

	mu          sync.Mutex
	generation  uint64
	services    map[Key]*Service
	slices      map[Key]*EndpointSlice
	pods        map[Key]*Pod
	policies    map[Key]*TLSPolicy
	routes      map[RouteKey]*Route
	traffic     map[Key]*TrafficPolicy
	authz       map[Key]*AuthzPolicy
	telemetry   map[Key]*TelemetryPolicy
	view        *View
	subscribers []func(Event)
}

// NewStore returns an empty Store.
func NewStore(cfg StoreConfig) *Store {
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = DefaultClusterDomain
	}
	return &Store{
		cfg:       cfg,
		services:  map[Key]*Service{},
		slices:    map[Key]*EndpointSlice{},
		pods:      map[Key]*Pod{},
		policies:  map[Key]*TLSPolicy{},
		routes:    map[RouteKey]*Route{},
		traffic:   map[Key]*TrafficPolicy{},
		authz:     map[Key]*AuthzPolicy{},
		telemetry: map[Key]*TelemetryPolicy{},
	}
}

// Subscribe registers fn to be called after every change. fn runs on the
// writer's goroutine and must only record the event (for example, poke a
// debouncer); it must not call back into the Store's writers.
func (s *Store) Subscribe(fn func(Event)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subscribers = append(s.subscribers, fn)
}

// UpsertService adds or replaces a Service.
func (s *Store) UpsertService(svc *Service) {
	s.write(Event{KindService, svc.Key()}, func() { s.services[svc.Key()] = svc })
}

// DeleteService removes a Service.
func (s *Store) DeleteService(k Key) {
	s.write(Event{KindService, k}, func() { delete(s.services, k) })
}

// UpsertEndpointSlice adds or replaces an EndpointSlice.
func (s *Store) UpsertEndpointSlice(es *EndpointSlice) {
	s.write(Event{KindEndpointSlice, es.Key()}, func() { s.slices[es.Key()] = es })
}

// DeleteEndpointSlice removes an EndpointSlice.
func (s *Store) DeleteEndpointSlice(k Key) {
	s.write(Event{KindEndpointSlice, k}, func() { delete(s.slices, k) })
}

// UpsertPod adds or replaces a Pod.
func (s *Store) UpsertPod(p *Pod) {
	s.write(Event{KindPod, p.Key()}, func() { s.pods[p.Key()] = p })
}

// DeletePod removes a Pod.
func (s *Store) DeletePod(k Key) {
	s.write(Event{KindPod, k}, func() { delete(s.pods, k) })
}

// UpsertTLSPolicy adds or replaces a MeshTLS policy.
func (s *Store) UpsertTLSPolicy(p *TLSPolicy) {
	s.write(Event{KindTLSPolicy, p.Key()}, func() { s.policies[p.Key()] = p })
}

// DeleteTLSPolicy removes a MeshTLS policy.
func (s *Store) DeleteTLSPolicy(k Key) {
	s.write(Event{KindTLSPolicy, k}, func() { delete(s.policies, k) })
}

// UpsertRoute adds or replaces an HTTPRoute or GRPCRoute. When the new
// generation is invalid (Route.Err), the last valid generation stays in
// force (Route.LastGood), so a bad edit never takes working routes away.
func (s *Store) UpsertRoute(r *Route) {
	s.write(Event{KindRoute, r.Key()}, func() {
		if r.Err != nil && r.LastGood == nil {
			if prev, ok := s.routes[r.RouteKey()]; ok {
				r.LastGood = prev.Effective()
			}
		}
		s.routes[r.RouteKey()] = r
	})
}

// DeleteRoute removes a route.
func (s *Store) DeleteRoute(k RouteKey) {
	s.write(Event{KindRoute, k.Key}, func() { delete(s.routes, k) })
}

// UpsertTrafficPolicy adds or replaces a TrafficPolicy.
func (s *Store) UpsertTrafficPolicy(p *TrafficPolicy) {
	s.write(Event{KindTraffic, p.Key()}, func() { s.traffic[p.Key()] = p })
}

// DeleteTrafficPolicy removes a TrafficPolicy.
func (s *Store) DeleteTrafficPolicy(k Key) {
	s.write(Event{KindTraffic, k}, func() { delete(s.traffic, k) })
}

// UpsertAuthzPolicy adds or replaces an AuthorizationPolicy.
func (s *Store) UpsertAuthzPolicy(p *AuthzPolicy) {
	s.write(Event{KindAuthz, p.Key()}, func() { s.authz[p.Key()] = p })
}

// DeleteAuthzPolicy removes an AuthorizationPolicy.
func (s *Store) DeleteAuthzPolicy(k Key) {
	s.write(Event{KindAuthz, k}, func() { delete(s.authz, k) })
}

// UpsertTelemetry adds or replaces a Telemetry.
func (s *Store) UpsertTelemetry(p *TelemetryPolicy) {
	s.write(Event{KindTelemetry, p.Key()}, func() { s.telemetry[p.Key()] = p })
}

// DeleteTelemetry removes a Telemetry.
func (s *Store) DeleteTelemetry(k Key) {
	s.write(Event{KindTelemetry, k}, func() { delete(s.telemetry, k) })
}

// Pod returns one pod from the current state, without building a View; the
// xDS server uses it to authorise a connecting proxy.
func (s *Store) Pod(k Key) (*Pod, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pods[k]
	return p, ok
}

// EndpointSlice returns one slice from the current state, without building
// a View; the xDS server's network-programming tracer reads the version it
// was just told about.
func (s *Store) EndpointSlice(k Key) (*EndpointSlice, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	es, ok := s.slices[k]
	return es, ok
}

// Generation counts writes; it changes whenever the View would.
func (s *Store) Generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.generation
}

func (s *Store) write(ev Event, apply func()) {
	s.mu.Lock()
	apply()
	s.generation++
	s.view = nil
	subs := s.subscribers
	s.mu.Unlock()
	for _, fn := range subs {
		fn(ev)
	}
}

// View returns an immutable snapshot of the Store. It is cached until the
// next write, so many readers of one generation share it.
func (s *Store) View() *View {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.view == nil {
		s.view = newView(s.cfg, s.generation,
			maps.Clone(s.services), maps.Clone(s.slices), maps.Clone(s.pods), maps.Clone(s.policies))
		s.view.setPolicies(slices.Collect(maps.Values(s.routes)), slices.Collect(maps.Values(s.traffic)),
			slices.Collect(maps.Values(s.authz)), slices.Collect(maps.Values(s.telemetry)))
	}
	return s.view
}
