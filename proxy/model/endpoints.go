package model

import (
	"net/netip"
	"slices"

	discovery "k8s.io/api/discovery/v1"
)

// EndpointsByPort merges the IPv4 EndpointSlices of one Service into each
// port's endpoint list (keyed by port name), marking the endpoints on
// nodeName as local. An address that appears in several slices (for example
// while the controller moves it) is kept once, preferring its ready copy.
// Lists are sorted by address so that rules come out the same on every sync.
func EndpointsByPort(slices_ []*discovery.EndpointSlice, nodeName string) map[string][]Endpoint {
	byPort := map[string]map[netip.AddrPort]Endpoint{}
	for _, s := range slices_ {
		if s == nil || s.AddressType != discovery.AddressTypeIPv4 {
			continue
		}
		for _, sp := range s.Ports {
			if sp.Port == nil || *sp.Port < 1 || *sp.Port > 65535 {
				continue
			}
			name := ""
			if sp.Name != nil {
				name = *sp.Name
			}
			set := byPort[name]
			if set == nil {
				set = map[netip.AddrPort]Endpoint{}
				byPort[name] = set
			}
			for _, e := range s.Endpoints {
				ep, ok := endpoint(e, uint16(*sp.Port), nodeName)
				if !ok {
					continue
				}
				key := netip.AddrPortFrom(ep.IP, ep.Port)
				if old, seen := set[key]; seen && (old.Ready || !ep.Ready) {
					continue
				}
				set[key] = ep
			}
		}
	}
	out := make(map[string][]Endpoint, len(byPort))
	for name, set := range byPort {
		list := make([]Endpoint, 0, len(set))
		for _, ep := range set {
			list = append(list, ep)
		}
		slices.SortFunc(list, func(a, b Endpoint) int {
			if c := a.IP.Compare(b.IP); c != 0 {
				return c
			}
			return int(a.Port) - int(b.Port)
		})
		out[name] = list
	}
	return out
}

func endpoint(e discovery.Endpoint, port uint16, nodeName string) (Endpoint, bool) {
	if len(e.Addresses) == 0 {
		return Endpoint{}, false
	}
	ip, err := netip.ParseAddr(e.Addresses[0])
	if err != nil || !ip.Is4() {
		return Endpoint{}, false
	}
	ready := e.Conditions.Ready == nil || *e.Conditions.Ready
	serving := ready
	if e.Conditions.Serving != nil {
		serving = *e.Conditions.Serving
	}
	terminating := e.Conditions.Terminating != nil && *e.Conditions.Terminating
	local := nodeName != "" && e.NodeName != nil && *e.NodeName == nodeName
	remote := nodeName != "" && e.NodeName != nil && *e.NodeName != "" && *e.NodeName != nodeName
	return Endpoint{IP: ip, Port: port, Ready: ready, Serving: serving, Terminating: terminating, Local: local, Remote: remote}, true
}

// Categorized splits a port's endpoints by the traffic policy that uses them.
type Categorized struct {
	// Cluster is used by Cluster-policy traffic: the ready endpoints, or, when
	// none is ready, the serving-but-terminating ones (KEP-1669).
	Cluster []Endpoint
	// Local is used by Local-policy traffic: this node's ready endpoints, or
	// its serving-terminating ones when none is ready.
	Local []Endpoint
	// Reachable is the union: every endpoint that needs an endpoint chain.
	Reachable []Endpoint
	// Any is true when the Service has a usable endpoint anywhere; without one
	// its traffic is rejected.
	Any bool
}

// Categorize applies the traffic policies of p to its endpoints the way
// kube-proxy does, so that both proxies send the same packets to the same
// places. Topology hints are not applied.
func Categorize(p *ServicePort, eps []Endpoint) Categorized {
	var c Categorized
	if len(eps) == 0 {
		return c
	}
	if p.UsesClusterEndpoints() {
		c.Cluster = usable(eps, func(Endpoint) bool { return true })
		c.Any = len(c.Cluster) > 0
	}
	if !p.UsesLocalEndpoints() {
		c.Reachable = c.Cluster
		return c
	}
	c.Local = usable(eps, func(e Endpoint) bool { return e.Local })
	for _, e := range eps {
		if e.Ready || (e.Serving && e.Terminating) {
			c.Any = true
			break
		}
	}
	if !p.UsesClusterEndpoints() {
		c.Reachable = c.Local
		return c
	}
	// Local endpoints are a subset of Cluster ones unless Local had to fall
	// back to terminating endpoints while Cluster still has ready ones.
	c.Reachable = c.Cluster
	for _, e := range c.Local {
		if !slices.Contains(c.Reachable, e) {
			c.Reachable = append(slices.Clip(c.Reachable), e)
		}
	}
	return c
}

// usable returns the ready endpoints passing keep or, if there are none, the
// serving and terminating ones.
func usable(eps []Endpoint, keep func(Endpoint) bool) []Endpoint {
	var ready, terminating []Endpoint
	for _, e := range eps {
		switch {
		case !keep(e):
		case e.Ready:
			ready = append(ready, e)
		case e.Serving && e.Terminating:
			terminating = append(terminating, e)
		}
	}
	if len(ready) > 0 {
		return ready
	}
	return terminating
}
