package model

import (
	"time"
)

// RouteKind is the Gateway API kind a Route came from.
type RouteKind string

// Route kinds of the Gateway API for mesh (GAMMA,
// https://gateway-api.sigs.k8s.io/mesh/).
const (
	KindHTTPRoute RouteKind = "HTTPRoute"
	KindGRPCRoute RouteKind = "GRPCRoute"
)

// Route is an HTTPRoute or GRPCRoute reduced to what mesh routing needs
// (https://gateway-api.sigs.k8s.io/reference/spec/#httproute). GRPCRoute
// rules are translated to HTTP matches on the request path
// (/<service>/<method>), so both kinds share the generator.
type Route struct {
	Kind       RouteKind
	Namespace  string
	Name       string
	Generation int64
	Created    time.Time
	// Parents are the spec's parentRefs, in order; only those with group ""
	// and kind Service (GAMMA) concern the mesh.
	Parents []ParentRef
	Rules   []RouteRule
	// Err says why this generation cannot be applied (an invalid regex,
	// backend weights that sum to zero, an unsupported filter). Such a
	// route keeps LastGood, the last generation that was valid, in force.
	Err error
	// LastGood is the newest earlier generation without Err, set by the
	// Store; nil when there was none.
	LastGood *Route
}

// Key is the route's namespace/name.
func (r *Route) Key() Key { return Key{Namespace: r.Namespace, Name: r.Name} }

// RouteKey identifies a route across kinds.
type RouteKey struct {
	Kind RouteKind
	Key
}

// RouteKey returns the route's kind and namespace/name.
func (r *Route) RouteKey() RouteKey { return RouteKey{Kind: r.Kind, Key: r.Key()} }

// Effective is the version of the route config is built from: the route
// itself, or its last good generation when this one is invalid (nil if
// none).
func (r *Route) Effective() *Route {
	if r.Err == nil {
		return r
	}
	return r.LastGood
}

// ParentRef is a Gateway API parentRef
// (https://gateway-api.sigs.k8s.io/reference/spec/#parentreference).
type ParentRef struct {
	// Group and Kind default to gateway.networking.k8s.io/Gateway; the mesh
	// acts on group "" kind Service.
	Group, Kind string
	// Namespace defaults to the route's.
	Namespace string
	Name      string
	// Port restricts the route to one Service port; 0 means all.
	Port int32
}

// IsService reports whether the parent is a Service (a GAMMA route).
func (p ParentRef) IsService() bool { return p.Group == "" && p.Kind == "Service" }

// RouteRule is one rule: requests matching any of Matches are handled by
// the filters and sent to Backends.
type RouteRule struct {
	Name            string
	Matches         []RouteMatch
	Backends        []BackendRef
	RequestHeaders  *HeaderModifier
	ResponseHeaders *HeaderModifier
	Redirect        *Redirect
	Rewrite         *Rewrite
	Mirrors         []Mirror
	// Timeout bounds the whole request (timeouts.request); BackendTimeout
	// each try (timeouts.backendRequest). Nil: not set; zero: disabled.
	Timeout, BackendTimeout *time.Duration
	Retry                   *RetryPolicy
}

// MatchType is how a value is compared.
type MatchType string

// Match types of Gateway API path, header and query matches.
const (
	MatchExact  MatchType = "Exact"
	MatchPrefix MatchType = "PathPrefix"
	MatchRegex  MatchType = "RegularExpression"
)

// StringMatch compares a value.
type StringMatch struct {
	Type  MatchType
	Value string
}

// NameMatch compares a named header or query parameter.
type NameMatch struct {
	Name  string
	Type  MatchType
	Value string
}

// RouteMatch is one HTTPRouteMatch: every set field must match.
type RouteMatch struct {
	// Path is nil for the default, prefix "/".
	Path    *StringMatch
	Headers []NameMatch
	Query   []NameMatch
	// Method is an HTTP method; empty matches any.
	Method string
}

// BackendRef is a weighted backend Service port.
type BackendRef struct {
	// Group and Kind of the referent; the mesh routes to group "" kind
	// Service only.
	Group, Kind string
	Namespace   string
	Name        string
	Port        int32
	Weight      int32
}

// Header is a name and value.
type Header struct{ Name, Value string }

// HeaderModifier sets, adds and removes headers
// (https://gateway-api.sigs.k8s.io/reference/spec/#httpheaderfilter).
type HeaderModifier struct {
	Set    []Header
	Add    []Header
	Remove []string
}

// PathModifier rewrites a path: Type is ReplaceFullPath or
// ReplacePrefixMatch.
type PathModifier struct {
	Type  string
	Value string
}

// Path modifier types.
const (
	ReplaceFullPath    = "ReplaceFullPath"
	ReplacePrefixMatch = "ReplacePrefixMatch"
)

// Redirect answers with a redirect instead of forwarding; nil fields keep
// the request's value.
type Redirect struct {
	Scheme     *string
	Hostname   *string
	Path       *PathModifier
	Port       *int32
	StatusCode int
}

// Rewrite changes the request before forwarding.
type Rewrite struct {
	Hostname *string
	Path     *PathModifier
}

// Mirror sends a copy of Percent of the requests to Backend and ignores the
// answer.
type Mirror struct {
	Backend BackendRef
	// Percent is in [0, 100].
	Percent float64
}

// RetryPolicy is when and how often a client sidecar retries, from an
// HTTPRoute rule's retry or a TrafficPolicy.
type RetryPolicy struct {
	Attempts int32
	// On lists Envoy retry conditions; Codes the retriable status codes.
	On            []string
	Codes         []int32
	Backoff       *time.Duration
	PerTryTimeout *time.Duration
}
