package model

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// AttachedRule is one (rule, match) of an accepted route, attached to a
// Service: the unit the generator turns into one Envoy route.
type AttachedRule struct {
	// Route is the version in force (the route, or its last good
	// generation).
	Route *Route
	Rule  int
	Match RouteMatch
	// Port restricts the rule to one Service port; 0 means every HTTP port.
	Port int32
}

// RuleName is "<kind>/<ns>/<name>/rule/<i>", the Envoy route name that
// ties generated config back to its source.
func (a AttachedRule) RuleName() string {
	return fmt.Sprintf("%s/%s/%s/rule/%d", a.Route.Kind, a.Route.Namespace, a.Route.Name, a.Rule)
}

// Condition is a status condition computed by pilot, before it becomes a
// metav1.Condition.
type Condition struct {
	Status  bool
	Reason  string
	Message string
}

// Gateway API route condition reasons
// (https://gateway-api.sigs.k8s.io/reference/spec/#routeconditionreason).
const (
	ReasonAccepted         = "Accepted"
	ReasonNoMatchingParent = "NoMatchingParent"
	ReasonUnsupported      = "UnsupportedValue"
	ReasonNotAllowed       = "NotAllowedByParent"
	ReasonResolvedRefs     = "ResolvedRefs"
	ReasonBackendNotFound  = "BackendNotFound"
	ReasonRefNotPermitted  = "RefNotPermitted"
	ReasonInvalidKind      = "InvalidKind"
)

// ParentStatus is the status of a route for one of its Service parents.
type ParentStatus struct {
	// Index is the parent's position in spec.parentRefs.
	Index        int
	Accepted     Condition
	ResolvedRefs Condition
}

// RouteStatus is what pilot reports on a route: one entry per Service
// parent (parents of other kinds belong to other controllers).
type RouteStatus struct {
	Generation int64
	Parents    []ParentStatus
}

// RouteTable is the outcome of attaching every route to its Services.
type RouteTable struct {
	bySvc  map[Key][]AttachedRule
	status map[RouteKey]*RouteStatus
}

// For returns the rules attached to a Service, in Envoy match order.
func (t *RouteTable) For(svc Key) []AttachedRule { return t.bySvc[svc] }

// Status returns the computed status of every route.
func (t *RouteTable) Status() map[RouteKey]*RouteStatus { return t.status }

// AttachedRoutes lists the route versions attached to svc (the xDS server's
// cache key: config of a Service changes only when they do).
func (t *RouteTable) AttachedRoutes(svc Key) []*Route {
	var out []*Route
	for _, a := range t.bySvc[svc] {
		if len(out) == 0 || out[len(out)-1] != a.Route {
			out = append(out, a.Route)
		}
	}
	return out
}

// ResolveRoutes attaches routes to their Service parents following the
// Gateway API for mesh (GAMMA,
// https://gateway-api.sigs.k8s.io/mesh/#gateway-api-for-mesh): a route in a
// Service's namespace (a producer route) replaces the Service's default
// route for every client. Rules of all routes attached to a Service are
// ordered by the spec's matching precedence
// (https://gateway-api.sigs.k8s.io/reference/spec/#httprouterule): exact
// path, then longest prefix, then method, most header matches, most query
// matches; ties go to the oldest route (creationTimestamp), then
// namespace/name, then rule order, so an identical match in a newer route is
// shadowed.
func ResolveRoutes(services map[Key]*Service, routes []*Route) *RouteTable {
	t := &RouteTable{bySvc: map[Key][]AttachedRule{}, status: map[RouteKey]*RouteStatus{}}
	sorted := slices.Clone(routes)
	slices.SortFunc(sorted, olderRoute)
	for _, r := range sorted {
		st := &RouteStatus{Generation: r.Generation}
		t.status[r.RouteKey()] = st
		eff := r.Effective()
		for i, p := range r.Parents {
			if !p.IsService() {
				continue
			}
			ps := ParentStatus{Index: i, ResolvedRefs: resolveRefs(services, r)}
			svc, ok := services[Key{Namespace: p.Namespace, Name: p.Name}]
			switch {
			case !ok:
				ps.Accepted = Condition{Reason: ReasonNoMatchingParent, Message: fmt.Sprintf("Service %s/%s not found", p.Namespace, p.Name)}
			case p.Namespace != r.Namespace:
				ps.Accepted = Condition{Reason: ReasonNotAllowed, Message: fmt.Sprintf(
					"consumer routes (route namespace %s, Service namespace %s) are not supported: create the route in %s", r.Namespace, p.Namespace, p.Namespace)}
			case p.Port != 0 && !hasHTTPPort(svc, p.Port):
				ps.Accepted = Condition{Reason: ReasonNoMatchingParent, Message: fmt.Sprintf("Service %s/%s has no HTTP port %d", p.Namespace, p.Name, p.Port)}
			case r.Err != nil && eff == nil:
				ps.Accepted = Condition{Reason: ReasonUnsupported, Message: r.Err.Error()}
			case r.Err != nil:
				ps.Accepted = Condition{Reason: ReasonUnsupported, Message: fmt.Sprintf(
					"%v; generation %d stays in force", r.Err, eff.Generation)}
			default:
				ps.Accepted = Condition{Status: true, Reason: ReasonAccepted, Message: fmt.Sprintf("routes Service %s/%s", p.Namespace, p.Name)}
			}
			st.Parents = append(st.Parents, ps)
			if ok && p.Namespace == r.Namespace && eff != nil && (p.Port == 0 || hasHTTPPort(svc, p.Port)) {
				for ri, rule := range eff.Rules {
					for _, m := range rule.Matches {
						t.bySvc[svc.Key()] = append(t.bySvc[svc.Key()], AttachedRule{Route: eff, Rule: ri, Match: m, Port: p.Port})
					}
				}
			}
		}
	}
	for k, rules := range t.bySvc {
		// Stable: equal precedence keeps route age, then rule order.
		slices.SortStableFunc(rules, func(a, b AttachedRule) int { return comparePrecedence(a.Match, b.Match) })
		t.bySvc[k] = rules
		markShadowed(rules, t.status)
	}
	return t
}

// olderRoute orders routes by creation time, then namespace/name, then
// kind: the Gateway API's conflict resolution order.
func olderRoute(a, b *Route) int {
	if c := a.Created.Compare(b.Created); c != 0 {
		return c
	}
	if c := compareKeys(a.Key(), b.Key()); c != 0 {
		return c
	}
	return strings.Compare(string(a.Kind), string(b.Kind))
}

func hasHTTPPort(svc *Service, port int32) bool {
	for _, sp := range svc.Ports {
		if sp.Port == port && sp.Classify().IsHTTP() {
			return true
		}
	}
	return false
}

// comparePrecedence is negative when a must be tried before b.
func comparePrecedence(a, b RouteMatch) int {
	rank := func(m RouteMatch) (int, int) {
		switch {
		case m.Path == nil:
			return 2, 1 // the default, prefix "/"
		case m.Path.Type == MatchExact:
			return 0, len(m.Path.Value)
		case m.Path.Type == MatchRegex:
			return 1, len(m.Path.Value)
		default:
			return 2, len(strings.TrimRight(m.Path.Value, "/")) + 1
		}
	}
	ka, la := rank(a)
	kb, lb := rank(b)
	if ka != kb {
		return cmp.Compare(ka, kb)
	}
	if la != lb {
		return cmp.Compare(lb, la) // longer first
	}
	if (a.Method != "") != (b.Method != "") {
		if a.Method != "" {
			return -1
		}
		return 1
	}
	if c := cmp.Compare(len(b.Headers), len(a.Headers)); c != 0 {
		return c
	}
	return cmp.Compare(len(b.Query), len(a.Query))
}

// markShadowed notes, in the status of newer routes, matches that an older
// route already handles identically: they can never be reached.
func markShadowed(rules []AttachedRule, status map[RouteKey]*RouteStatus) {
	owner := map[string]*Route{}
	shadowed := map[*Route]map[string]bool{}
	for _, a := range rules {
		k := fmt.Sprintf("%d|%s", a.Port, matchKey(a.Match))
		first, ok := owner[k]
		if !ok {
			owner[k] = a.Route
			continue
		}
		if first != a.Route {
			if shadowed[a.Route] == nil {
				shadowed[a.Route] = map[string]bool{}
			}
			shadowed[a.Route][first.Kind.String()+" "+first.Namespace+"/"+first.Name] = true
		}
	}
	for r, by := range shadowed {
		st := status[r.RouteKey()]
		if st == nil {
			continue
		}
		for i := range st.Parents {
			if st.Parents[i].Accepted.Status {
				st.Parents[i].Accepted.Message += "; conflicting matches are shadowed by older " +
					strings.Join(slices.Sorted(maps.Keys(by)), ", ") + " (Gateway API precedence: oldest route wins)"
			}
		}
	}
}

// String is the kind's name.
func (k RouteKind) String() string { return string(k) }

func matchKey(m RouteMatch) string {
	var b strings.Builder
	if m.Path != nil {
		fmt.Fprintf(&b, "path %s %s;", m.Path.Type, m.Path.Value)
	} else {
		b.WriteString("path PathPrefix /;")
	}
	fmt.Fprintf(&b, "method %s;", m.Method)
	hs := slices.Clone(m.Headers)
	slices.SortFunc(hs, func(x, y NameMatch) int { return strings.Compare(strings.ToLower(x.Name), strings.ToLower(y.Name)) })
	for _, h := range hs {
		fmt.Fprintf(&b, "h %s %s %s;", strings.ToLower(h.Name), h.Type, h.Value)
	}
	qs := slices.Clone(m.Query)
	slices.SortFunc(qs, func(x, y NameMatch) int { return strings.Compare(x.Name, y.Name) })
	for _, q := range qs {
		fmt.Fprintf(&b, "q %s %s %s;", q.Name, q.Type, q.Value)
	}
	return b.String()
}

// resolveRefs checks every backend (and mirror) of the route version in
// force: a Service of the route's namespace with that port. Cross-namespace
// references are refused until ReferenceGrant is supported.
func resolveRefs(services map[Key]*Service, r *Route) Condition {
	eff := r.Effective()
	if eff == nil {
		eff = r
	}
	for _, rule := range eff.Rules {
		refs := slices.Clone(rule.Backends)
		for _, m := range rule.Mirrors {
			refs = append(refs, m.Backend)
		}
		for _, b := range refs {
			if c, ok := checkBackend(services, r.Namespace, b); !ok {
				return c
			}
		}
	}
	return Condition{Status: true, Reason: ReasonResolvedRefs, Message: "all backend Services found"}
}

func checkBackend(services map[Key]*Service, routeNS string, b BackendRef) (Condition, bool) {
	switch {
	case b.Group != "" || b.Kind != "Service":
		return Condition{Reason: ReasonInvalidKind, Message: fmt.Sprintf("backend %s/%s: only Services (group \"\", kind Service) are supported", b.Kind, b.Name)}, false
	case b.Namespace != routeNS:
		return Condition{Reason: ReasonRefNotPermitted, Message: fmt.Sprintf("backend %s/%s is in another namespace (ReferenceGrant is not supported yet)", b.Namespace, b.Name)}, false
	}
	svc, ok := services[Key{Namespace: b.Namespace, Name: b.Name}]
	if !ok {
		return Condition{Reason: ReasonBackendNotFound, Message: fmt.Sprintf("backend Service %s/%s not found; its share of requests gets 500", b.Namespace, b.Name)}, false
	}
	for _, sp := range svc.Ports {
		if sp.Port == b.Port {
			return Condition{}, true
		}
	}
	return Condition{Reason: ReasonBackendNotFound, Message: fmt.Sprintf("backend Service %s/%s has no port %d; its share of requests gets 500", b.Namespace, b.Name, b.Port)}, false
}

// BackendAllowed reports whether the generator may route to b from a route
// in routeNS (same namespace, a Service); refused backends get a cluster
// name no cluster has, so their share fails with 500 as the spec asks.
func BackendAllowed(routeNS string, b BackendRef) bool {
	return b.Group == "" && b.Kind == "Service" && b.Namespace == routeNS
}
