package model

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// View is a consistent, read-only snapshot of the model with the indexes
// config generation needs. Nothing in it may be modified.
type View struct {
	cfg        StoreConfig
	generation uint64
	services   map[Key]*Service
	pods       map[Key]*Pod
	sorted     []*Service
	byNS       map[string][]*Service
	slicesBy   map[Key][]*EndpointSlice
	podsByIP   map[netip.Addr]*Pod
	policies   []*TLSPolicy
	pol        *viewPolicies
}

// NewView builds a View from plain objects, for tests and tools that do not
// need a Store.
func NewView(cfg StoreConfig, services []*Service, slices []*EndpointSlice, pods []*Pod, policies []*TLSPolicy) *View {
	s := NewStore(cfg)
	for _, o := range services {
		s.services[o.Key()] = o
	}
	for _, o := range slices {
		s.slices[o.Key()] = o
	}
	for _, o := range pods {
		s.pods[o.Key()] = o
	}
	for _, o := range policies {
		s.policies[o.Key()] = o
	}
	return s.View()
}

func newView(cfg StoreConfig, gen uint64, svcs map[Key]*Service, eps map[Key]*EndpointSlice, pods map[Key]*Pod, pols map[Key]*TLSPolicy) *View {
	v := &View{
		cfg:        cfg,
		generation: gen,
		services:   svcs,
		pods:       pods,
		slicesBy:   make(map[Key][]*EndpointSlice, len(svcs)),
		podsByIP:   make(map[netip.Addr]*Pod, len(pods)),
		policies:   slices.Collect(maps.Values(pols)),
	}
	v.sorted = slices.SortedFunc(maps.Values(svcs), func(a, b *Service) int {
		return compareKeys(a.Key(), b.Key())
	})
	v.byNS = make(map[string][]*Service)
	for _, s := range v.sorted {
		v.byNS[s.Namespace] = append(v.byNS[s.Namespace], s)
	}
	for _, es := range eps {
		v.slicesBy[es.ServiceKey()] = append(v.slicesBy[es.ServiceKey()], es)
	}
	for _, l := range v.slicesBy {
		slices.SortFunc(l, func(a, b *EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	}
	for _, p := range pods {
		for _, ip := range p.IPs {
			v.podsByIP[ip] = p
		}
	}
	sortPolicies(v.policies)
	return v
}

func compareKeys(a, b Key) int {
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// Generation identifies the Store state the View was taken from, so callers
// can cache work per generation.
func (v *View) Generation() uint64 { return v.generation }

// ClusterDomain is the DNS domain of Service hostnames.
func (v *View) ClusterDomain() string { return v.cfg.ClusterDomain }

// RootNamespace is the namespace of mesh-wide policy.
func (v *View) RootNamespace() string { return v.cfg.RootNamespace }

// Services returns every Service, sorted by namespace/name.
func (v *View) Services() []*Service { return v.sorted }

// Service looks a Service up by key.
func (v *View) Service(k Key) (*Service, bool) {
	s, ok := v.services[k]
	return s, ok
}

// VisibleServices returns the Services a proxy in namespace ns may reach
// (see Service.VisibleTo), sorted by namespace/name.
func (v *View) VisibleServices(ns string) []*Service {
	out := make([]*Service, 0, len(v.sorted))
	for _, s := range v.sorted {
		if s.VisibleTo(ns) {
			out = append(out, s)
		}
	}
	return out
}

// EndpointSlices returns the slices of a Service, sorted by name.
func (v *View) EndpointSlices(svc Key) []*EndpointSlice { return v.slicesBy[svc] }

// Pod looks a pod up by key.
func (v *View) Pod(k Key) (*Pod, bool) {
	p, ok := v.pods[k]
	return p, ok
}

// EndpointPod finds the pod behind an endpoint: by targetRef when the slice
// has one, else by address.
func (v *View) EndpointPod(namespace string, ep Endpoint) (*Pod, bool) {
	if ep.Pod != "" {
		if p, ok := v.pods[Key{Namespace: namespace, Name: ep.Pod}]; ok {
			return p, true
		}
	}
	for _, a := range ep.Addresses {
		if p, ok := v.podsByIP[a]; ok {
			return p, true
		}
	}
	return nil, false
}

// ServicesFor returns the Services whose selector matches the pod, sorted:
// they decide which ports the pod's inbound listener serves.
func (v *View) ServicesFor(p *Pod) []*Service {
	var out []*Service
	for _, s := range v.byNS[p.Namespace] {
		if selects(s.Selector, p.Labels) {
			out = append(out, s)
		}
	}
	return out
}

// selects is a Service selector match: every selector label present with
// the same value; an empty selector selects nothing, as for Services.
func selects(selector, podLabels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, want := range selector {
		if got, ok := podLabels[k]; !ok || got != want {
			return false
		}
	}
	return true
}

// ServiceAccounts returns the sorted, distinct service accounts of the pods
// behind a Service's endpoints: the identities a client may accept when it
// connects to the Service.
func (v *View) ServiceAccounts(svc *Service) []string {
	seen := map[string]bool{}
	for _, es := range v.slicesBy[svc.Key()] {
		for _, ep := range es.Endpoints {
			if p, ok := v.EndpointPod(es.Namespace, ep); ok && p.ServiceAccount != "" {
				seen[p.ServiceAccount] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// Policies returns every MeshTLS policy, sorted by namespace/name.
func (v *View) Policies() []*TLSPolicy { return v.policies }

// MTLS resolves the mutual TLS mode of a pod; see ResolveMTLS.
func (v *View) MTLS(p *Pod) EffectiveMTLS {
	return ResolveMTLS(v.policies, v.cfg.RootNamespace, p.Namespace, p.Labels)
}
