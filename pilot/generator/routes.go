package generator

import (
	"regexp"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weftmesh/weft/pilot/model"
)

// routeInput is what a Service port's route table is built from.
type routeInput struct {
	name, hostname string
	port           int32
	domain         string
	rules          []model.AttachedRule // for this port, in match order
	policy         *model.TrafficPolicy // the Service's, or nil
}

// makeServiceRoute is the RDS route table of one HTTP Service port. The
// filter chain that uses it already matched the Service's virtual IP, so
// the table needs no Host matching and every Host header works, as it does
// without a mesh. Without routes it forwards everything to the Service's
// own cluster; with GAMMA routes attached
// (https://gateway-api.sigs.k8s.io/mesh/) their rules replace that default
// route, in precedence order, and requests no rule matches get 404 as the
// spec asks
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/config/route/v3/route.proto).
func makeServiceRoute(in routeInput) *routev3.RouteConfiguration {
	var routes []*routev3.Route
	if len(in.rules) == 0 {
		r := forwardRoute(in.name, true)
		applyPolicy(r, in.policy, nil)
		routes = append(routes, r)
	}
	for _, a := range in.rules {
		routes = append(routes, makeRuleRoute(in, a))
	}
	return &routev3.RouteConfiguration{
		Name: in.name,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    in.hostname + ":" + strconv.Itoa(int(in.port)),
			Domains: []string{"*"},
			Routes:  routes,
		}},
		ValidateClusters: wrapperspb.Bool(false),
	}
}

// makeOutboundRoute is the default route table of a Service port, without
// routes or policy.
func makeOutboundRoute(name, hostname string, port int32) *routev3.RouteConfiguration {
	return makeServiceRoute(routeInput{name: name, hostname: hostname, port: port})
}

// forwardRoute sends every request to cluster with no route timeout, so
// streaming and long-polling requests (gRPC streams, watches) are not cut
// at Envoy's 15s default. Outbound routes retry failed connection attempts
// and refused streams twice, Istio's default retry policy
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/configuration/http/http_filters/router_filter#x-envoy-retry-on).
func forwardRoute(cluster string, retry bool) *routev3.Route {
	action := &routev3.RouteAction{
		ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster},
		Timeout:          duration(0),
	}
	if retry {
		action.RetryPolicy = defaultRetryPolicy()
	}
	return &routev3.Route{
		Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_Route{Route: action},
	}
}

func defaultRetryPolicy() *routev3.RetryPolicy {
	return &routev3.RetryPolicy{
		RetryOn:    "connect-failure,refused-stream,unavailable,cancelled",
		NumRetries: wrapperspb.UInt32(2),
	}
}

// makeRuleRoute turns one (rule, match) of an HTTPRoute or GRPCRoute into
// an Envoy route: the match, then a redirect, a 500 (no backends, as the
// spec asks) or forwarding with weighted clusters, rewrites, mirrors,
// timeouts and retries; header modifiers on the route.
func makeRuleRoute(in routeInput, a model.AttachedRule) *routev3.Route {
	rule := a.Route.Rules[a.Rule]
	r := &routev3.Route{Name: a.RuleName(), Match: routeMatch(a.Match)}
	if h := rule.RequestHeaders; h != nil {
		r.RequestHeadersToAdd, r.RequestHeadersToRemove = headerOptions(h), h.Remove
	}
	if h := rule.ResponseHeaders; h != nil {
		r.ResponseHeadersToAdd, r.ResponseHeadersToRemove = headerOptions(h), h.Remove
	}
	switch {
	case rule.Redirect != nil:
		r.Action = &routev3.Route_Redirect{Redirect: redirectAction(rule.Redirect, a.Match)}
		return r
	case len(rule.Backends) == 0:
		r.Action = &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 500}}
		return r
	}
	action := &routev3.RouteAction{
		Timeout:                     duration(0),
		ClusterNotFoundResponseCode: routev3.RouteAction_INTERNAL_SERVER_ERROR,
	}
	var weighted []*routev3.WeightedCluster_ClusterWeight
	for _, b := range rule.Backends {
		if b.Weight > 0 {
			weighted = append(weighted, &routev3.WeightedCluster_ClusterWeight{
				Name: backendCluster(a.Route.Namespace, b, in.domain), Weight: wrapperspb.UInt32(uint32(b.Weight)),
			})
		}
	}
	if len(weighted) == 1 {
		action.ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: weighted[0].GetName()}
	} else {
		action.ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{Clusters: weighted}}
	}
	if rw := rule.Rewrite; rw != nil {
		if rw.Hostname != nil {
			action.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: *rw.Hostname}
		}
		rewritePath(action, rw.Path, a.Match)
	}
	for _, m := range rule.Mirrors {
		action.RequestMirrorPolicies = append(action.RequestMirrorPolicies, mirrorPolicy(a.Route.Namespace, m, in.domain))
	}
	if rule.Timeout != nil {
		action.Timeout = duration(*rule.Timeout)
	}
	r.Action = &routev3.Route_Route{Route: action}
	applyPolicy(r, in.policy, &rule)
	return r
}

// backendCluster names the outbound cluster of a backend Service port.
// References the mesh may not follow (other kinds, other namespaces) get a
// name no cluster has, so their share fails with 500
// (ClusterNotFoundResponseCode), as the Gateway API asks of unresolved
// references.
func backendCluster(routeNS string, b model.BackendRef, domain string) string {
	if !model.BackendAllowed(routeNS, b) {
		return "unresolved|" + b.Kind + "|" + b.Namespace + "/" + b.Name
	}
	svc := model.Service{Namespace: b.Namespace, Name: b.Name}
	return OutboundClusterName(b.Port, svc.Hostname(domain))
}

// routeMatch translates a Gateway API match
// (https://gateway-api.sigs.k8s.io/reference/spec/#httproutematch).
// PathPrefix matches whole path segments, which is Envoy's
// path_separated_prefix (a trailing "/" is ignored, as the spec says).
func routeMatch(m model.RouteMatch) *routev3.RouteMatch {
	out := &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}
	if p := m.Path; p != nil {
		switch p.Type {
		case model.MatchExact:
			out.PathSpecifier = &routev3.RouteMatch_Path{Path: p.Value}
		case model.MatchRegex:
			out.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: p.Value}}
		default:
			if v := strings.TrimRight(p.Value, "/"); v != "" {
				out.PathSpecifier = &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: v}
			}
		}
	}
	for _, h := range m.Headers {
		out.Headers = append(out.Headers, &routev3.HeaderMatcher{
			Name:                 strings.ToLower(h.Name),
			HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: stringMatcher(h.Type, h.Value)},
		})
	}
	if m.Method != "" {
		out.Headers = append(out.Headers, &routev3.HeaderMatcher{
			Name:                 ":method",
			HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: stringMatcher(model.MatchExact, m.Method)},
		})
	}
	for _, q := range m.Query {
		out.QueryParameters = append(out.QueryParameters, &routev3.QueryParameterMatcher{
			Name:                         q.Name,
			QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_StringMatch{StringMatch: stringMatcher(q.Type, q.Value)},
		})
	}
	return out
}

func stringMatcher(t model.MatchType, v string) *matcherv3.StringMatcher {
	if t == model.MatchRegex {
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: v}}}
	}
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v}}
}

func overwrite(key, value string) *corev3.HeaderValueOption {
	return setHeader(key, value, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)
}

func addIfAbsent(key, value string) *corev3.HeaderValueOption {
	return setHeader(key, value, corev3.HeaderValueOption_ADD_IF_ABSENT)
}

func setHeader(key, value string, action corev3.HeaderValueOption_HeaderAppendAction) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: key, Value: value}, AppendAction: action}
}

// headerOptions are a modifier's set (overwrite) and add (append) headers.
func headerOptions(h *model.HeaderModifier) []*corev3.HeaderValueOption {
	var out []*corev3.HeaderValueOption
	for _, s := range h.Set {
		out = append(out, overwrite(s.Name, s.Value))
	}
	for _, a := range h.Add {
		out = append(out, setHeader(a.Name, a.Value, corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD))
	}
	return out
}

var redirectCodes = map[int]routev3.RedirectAction_RedirectResponseCode{
	301: routev3.RedirectAction_MOVED_PERMANENTLY,
	302: routev3.RedirectAction_FOUND,
	303: routev3.RedirectAction_SEE_OTHER,
	307: routev3.RedirectAction_TEMPORARY_REDIRECT,
	308: routev3.RedirectAction_PERMANENT_REDIRECT,
}

// redirectAction is a RequestRedirect filter
// (https://gateway-api.sigs.k8s.io/reference/spec/#httprequestredirectfilter).
func redirectAction(rd *model.Redirect, m model.RouteMatch) *routev3.RedirectAction {
	out := &routev3.RedirectAction{ResponseCode: redirectCodes[rd.StatusCode]}
	if rd.Scheme != nil {
		out.SchemeRewriteSpecifier = &routev3.RedirectAction_SchemeRedirect{SchemeRedirect: *rd.Scheme}
	}
	if rd.Hostname != nil {
		out.HostRedirect = *rd.Hostname
	}
	if rd.Port != nil {
		out.PortRedirect = uint32(*rd.Port)
	}
	if p := rd.Path; p != nil {
		switch {
		case p.Type == model.ReplaceFullPath:
			out.PathRewriteSpecifier = &routev3.RedirectAction_PathRedirect{PathRedirect: p.Value}
		case p.Type == model.ReplacePrefixMatch && isPrefix(m):
			if p.Value == "/" || p.Value == "" {
				out.PathRewriteSpecifier = &routev3.RedirectAction_RegexRewrite{RegexRewrite: prefixRegexRewrite(m.Path.Value)}
			} else {
				out.PathRewriteSpecifier = &routev3.RedirectAction_PrefixRewrite{PrefixRewrite: p.Value}
			}
		}
	}
	return out
}

func isPrefix(m model.RouteMatch) bool {
	return m.Path != nil && m.Path.Type == model.MatchPrefix
}

// rewritePath is a URLRewrite filter's path
// (https://gateway-api.sigs.k8s.io/reference/spec/#httpurlrewritefilter):
// the full path via a regex rewrite, or the matched prefix via
// prefix_rewrite. Replacing a prefix with "/" uses a regex so "/foo/bar"
// becomes "/bar", not "//bar".
func rewritePath(action *routev3.RouteAction, p *model.PathModifier, m model.RouteMatch) {
	switch {
	case p == nil:
	case p.Type == model.ReplaceFullPath:
		action.RegexRewrite = &matcherv3.RegexMatchAndSubstitute{
			Pattern: &matcherv3.RegexMatcher{Regex: "^/.*$"}, Substitution: p.Value,
		}
	case p.Type == model.ReplacePrefixMatch && isPrefix(m):
		if p.Value == "/" || p.Value == "" {
			action.RegexRewrite = prefixRegexRewrite(m.Path.Value)
		} else {
			action.PrefixRewrite = strings.TrimRight(p.Value, "/")
			if strings.TrimRight(m.Path.Value, "/") == "" {
				action.PrefixRewrite += "/" // the match kept its "/"
			}
		}
	}
}

func prefixRegexRewrite(prefix string) *matcherv3.RegexMatchAndSubstitute {
	return &matcherv3.RegexMatchAndSubstitute{
		Pattern:      &matcherv3.RegexMatcher{Regex: "^" + regexp.QuoteMeta(strings.TrimRight(prefix, "/")) + `/*`},
		Substitution: "/",
	}
}

// mirrorPolicy copies Percent of the requests to the mirror backend and
// ignores its answers
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/config/route/v3/route_components.proto#envoy-v3-api-msg-config-route-v3-routeaction-requestmirrorpolicy).
func mirrorPolicy(routeNS string, m model.Mirror, domain string) *routev3.RouteAction_RequestMirrorPolicy {
	out := &routev3.RouteAction_RequestMirrorPolicy{Cluster: backendCluster(routeNS, m.Backend, domain)}
	if m.Percent < 100 {
		out.RuntimeFraction = &corev3.RuntimeFractionalPercent{DefaultValue: fractionalPercent(m.Percent)}
	}
	return out
}
