package model

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// RouteFromHTTPRoute converts an HTTPRoute. It never fails: what cannot be
// applied is recorded in Route.Err, which the status writer reports and the
// Store answers by keeping the last good generation in force.
func RouteFromHTTPRoute(hr *gatewayv1.HTTPRoute) *Route {
	r := newRoute(KindHTTPRoute, hr.Namespace, hr.Name, hr.Generation, hr.CreationTimestamp.Time, hr.Spec.ParentRefs)
	var errs []error
	for i, rule := range hr.Spec.Rules {
		out, err := httpRule(hr.Namespace, rule)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %d: %w", i, err))
		}
		r.Rules = append(r.Rules, out)
	}
	r.Err = errors.Join(errs...)
	return r
}

func newRoute(kind RouteKind, ns, name string, gen int64, created time.Time, parents []gatewayv1.ParentReference) *Route {
	r := &Route{Kind: kind, Namespace: ns, Name: name, Generation: gen, Created: created}
	for _, p := range parents {
		pr := ParentRef{Group: gatewayv1.GroupName, Kind: "Gateway", Namespace: ns, Name: string(p.Name)}
		if p.Group != nil {
			pr.Group = string(*p.Group)
		}
		if p.Kind != nil {
			pr.Kind = string(*p.Kind)
		}
		if p.Namespace != nil {
			pr.Namespace = string(*p.Namespace)
		}
		if p.Port != nil {
			pr.Port = *p.Port
		}
		r.Parents = append(r.Parents, pr)
	}
	return r
}

func httpRule(ns string, rule gatewayv1.HTTPRouteRule) (RouteRule, error) {
	out := RouteRule{}
	if rule.Name != nil {
		out.Name = string(*rule.Name)
	}
	var errs []error
	for _, m := range rule.Matches {
		rm, err := httpMatch(m)
		errs = append(errs, err)
		out.Matches = append(out.Matches, rm)
	}
	if len(out.Matches) == 0 {
		out.Matches = []RouteMatch{{}}
	}
	for _, f := range rule.Filters {
		errs = append(errs, httpFilter(ns, f, &out))
	}
	for _, b := range rule.BackendRefs {
		if len(b.Filters) > 0 {
			errs = append(errs, errors.New("backendRef filters are not supported"))
		}
		out.Backends = append(out.Backends, backendRef(ns, b.BackendObjectReference, b.Weight))
	}
	errs = append(errs, checkWeights(out.Backends))
	if t := rule.Timeouts; t != nil {
		var err error
		out.Timeout, err = gatewayDuration("timeouts.request", t.Request)
		errs = append(errs, err)
		out.BackendTimeout, err = gatewayDuration("timeouts.backendRequest", t.BackendRequest)
		errs = append(errs, err)
	}
	if rt := rule.Retry; rt != nil {
		out.Retry = &RetryPolicy{Attempts: 2}
		if rt.Attempts != nil {
			out.Retry.Attempts = int32(*rt.Attempts)
		}
		for _, c := range rt.Codes {
			out.Retry.Codes = append(out.Retry.Codes, int32(c))
		}
		var err error
		out.Retry.Backoff, err = gatewayDuration("retry.backoff", rt.Backoff)
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

// checkWeights rejects rules whose backends all have weight 0: the spec
// would answer every request with 500, which is never what the author
// meant, so the route is refused and the last good one keeps serving.
func checkWeights(bs []BackendRef) error {
	if len(bs) == 0 {
		return nil
	}
	for _, b := range bs {
		if b.Weight > 0 {
			return nil
		}
	}
	return errors.New("backendRefs weights sum to 0, no request could be forwarded")
}

func gatewayDuration(field string, d *gatewayv1.Duration) (*time.Duration, error) {
	if d == nil {
		return nil, nil
	}
	v, err := time.ParseDuration(string(*d))
	if err != nil || v < 0 {
		return nil, fmt.Errorf("%s %q is not a duration", field, *d)
	}
	return &v, nil
}

func httpMatch(m gatewayv1.HTTPRouteMatch) (RouteMatch, error) {
	out := RouteMatch{}
	var errs []error
	if p := m.Path; p != nil {
		t, v := gatewayv1.PathMatchPathPrefix, "/"
		if p.Type != nil {
			t = *p.Type
		}
		if p.Value != nil {
			v = *p.Value
		}
		out.Path = &StringMatch{Type: MatchType(t), Value: v}
		errs = append(errs, checkMatch("path", out.Path.Type, v))
	}
	for _, h := range m.Headers {
		t := gatewayv1.HeaderMatchExact
		if h.Type != nil {
			t = *h.Type
		}
		nm := NameMatch{Name: string(h.Name), Type: MatchType(t), Value: h.Value}
		errs = append(errs, checkMatch("header "+nm.Name, nm.Type, nm.Value))
		out.Headers = append(out.Headers, nm)
	}
	for _, q := range m.QueryParams {
		t := gatewayv1.QueryParamMatchExact
		if q.Type != nil {
			t = *q.Type
		}
		nm := NameMatch{Name: string(q.Name), Type: MatchType(t), Value: q.Value}
		errs = append(errs, checkMatch("query parameter "+nm.Name, nm.Type, nm.Value))
		out.Query = append(out.Query, nm)
	}
	if m.Method != nil {
		out.Method = string(*m.Method)
	}
	return out, errors.Join(errs...)
}

// checkMatch validates regular expressions with Go's regexp, which speaks
// RE2 like Envoy's safe_regex
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/type/matcher/v3/regex.proto),
// so a bad pattern is reported in the route's status instead of being
// NACKed by every sidecar.
func checkMatch(what string, t MatchType, v string) error {
	switch t {
	case MatchExact, MatchPrefix:
		return nil
	case MatchRegex:
		if _, err := regexp.Compile(v); err != nil {
			return fmt.Errorf("%s: invalid regular expression %q: %w", what, v, err)
		}
		return nil
	}
	return fmt.Errorf("%s: match type %q is not supported", what, t)
}

func backendRef(ns string, b gatewayv1.BackendObjectReference, weight *int32) BackendRef {
	out := BackendRef{Group: "", Kind: "Service", Namespace: ns, Name: string(b.Name), Weight: 1}
	if b.Group != nil {
		out.Group = string(*b.Group)
	}
	if b.Kind != nil {
		out.Kind = string(*b.Kind)
	}
	if b.Namespace != nil {
		out.Namespace = string(*b.Namespace)
	}
	if b.Port != nil {
		out.Port = *b.Port
	}
	if weight != nil {
		out.Weight = *weight
	}
	return out
}

func httpFilter(ns string, f gatewayv1.HTTPRouteFilter, out *RouteRule) error {
	switch f.Type {
	case gatewayv1.HTTPRouteFilterRequestHeaderModifier:
		out.RequestHeaders = mergeHeaders(out.RequestHeaders, f.RequestHeaderModifier)
	case gatewayv1.HTTPRouteFilterResponseHeaderModifier:
		out.ResponseHeaders = mergeHeaders(out.ResponseHeaders, f.ResponseHeaderModifier)
	case gatewayv1.HTTPRouteFilterRequestMirror:
		m, err := mirror(ns, f.RequestMirror)
		if err != nil {
			return err
		}
		out.Mirrors = append(out.Mirrors, m)
	case gatewayv1.HTTPRouteFilterRequestRedirect:
		rr := f.RequestRedirect
		if rr == nil {
			return errors.New("RequestRedirect filter without requestRedirect")
		}
		red := &Redirect{Scheme: rr.Scheme, Port: rr.Port, StatusCode: 302, Path: pathModifier(rr.Path)}
		if rr.Hostname != nil {
			h := string(*rr.Hostname)
			red.Hostname = &h
		}
		if rr.StatusCode != nil {
			red.StatusCode = *rr.StatusCode
		}
		out.Redirect = red
	case gatewayv1.HTTPRouteFilterURLRewrite:
		uw := f.URLRewrite
		if uw == nil {
			return errors.New("URLRewrite filter without urlRewrite")
		}
		rw := &Rewrite{Path: pathModifier(uw.Path)}
		if uw.Hostname != nil {
			h := string(*uw.Hostname)
			rw.Hostname = &h
		}
		out.Rewrite = rw
	default:
		return fmt.Errorf("filter %s is not supported", f.Type)
	}
	return nil
}

func mergeHeaders(m *HeaderModifier, f *gatewayv1.HTTPHeaderFilter) *HeaderModifier {
	if f == nil {
		return m
	}
	if m == nil {
		m = &HeaderModifier{}
	}
	for _, h := range f.Set {
		m.Set = append(m.Set, Header{Name: string(h.Name), Value: h.Value})
	}
	for _, h := range f.Add {
		m.Add = append(m.Add, Header{Name: string(h.Name), Value: h.Value})
	}
	m.Remove = append(m.Remove, f.Remove...)
	return m
}

func pathModifier(p *gatewayv1.HTTPPathModifier) *PathModifier {
	if p == nil {
		return nil
	}
	out := &PathModifier{Type: string(p.Type)}
	switch {
	case p.ReplaceFullPath != nil:
		out.Value = *p.ReplaceFullPath
	case p.ReplacePrefixMatch != nil:
		out.Value = *p.ReplacePrefixMatch
	}
	return out
}

func mirror(ns string, m *gatewayv1.HTTPRequestMirrorFilter) (Mirror, error) {
	if m == nil {
		return Mirror{}, errors.New("RequestMirror filter without requestMirror")
	}
	out := Mirror{Backend: backendRef(ns, m.BackendRef, nil), Percent: 100}
	switch {
	case m.Percent != nil:
		out.Percent = float64(*m.Percent)
	case m.Fraction != nil:
		den := int32(100)
		if m.Fraction.Denominator != nil {
			den = *m.Fraction.Denominator
		}
		if den <= 0 || m.Fraction.Numerator > den {
			return Mirror{}, fmt.Errorf("mirror fraction %d/%d is not in [0, 1]", m.Fraction.Numerator, den)
		}
		out.Percent = 100 * float64(m.Fraction.Numerator) / float64(den)
	}
	return out, nil
}

// RouteFromGRPCRoute converts a GRPCRoute: a method match becomes a path
// match on /<service>/<method> (https://gateway-api.sigs.k8s.io/reference/spec/#grpcmethodmatch).
func RouteFromGRPCRoute(gr *gatewayv1.GRPCRoute) *Route {
	r := newRoute(KindGRPCRoute, gr.Namespace, gr.Name, gr.Generation, gr.CreationTimestamp.Time, gr.Spec.ParentRefs)
	var errs []error
	for i, rule := range gr.Spec.Rules {
		out := RouteRule{}
		if rule.Name != nil {
			out.Name = string(*rule.Name)
		}
		var rerrs []error
		for _, m := range rule.Matches {
			rm, err := grpcMatch(m)
			rerrs = append(rerrs, err)
			out.Matches = append(out.Matches, rm)
		}
		if len(out.Matches) == 0 {
			out.Matches = []RouteMatch{{}}
		}
		for _, f := range rule.Filters {
			rerrs = append(rerrs, httpFilter(gr.Namespace, gatewayv1.HTTPRouteFilter{
				Type:                   gatewayv1.HTTPRouteFilterType(f.Type),
				RequestHeaderModifier:  f.RequestHeaderModifier,
				ResponseHeaderModifier: f.ResponseHeaderModifier,
				RequestMirror:          f.RequestMirror,
				ExtensionRef:           f.ExtensionRef,
			}, &out))
		}
		for _, b := range rule.BackendRefs {
			if len(b.Filters) > 0 {
				rerrs = append(rerrs, errors.New("backendRef filters are not supported"))
			}
			out.Backends = append(out.Backends, backendRef(gr.Namespace, b.BackendObjectReference, b.Weight))
		}
		rerrs = append(rerrs, checkWeights(out.Backends))
		if err := errors.Join(rerrs...); err != nil {
			errs = append(errs, fmt.Errorf("rule %d: %w", i, err))
		}
		r.Rules = append(r.Rules, out)
	}
	r.Err = errors.Join(errs...)
	return r
}

func grpcMatch(m gatewayv1.GRPCRouteMatch) (RouteMatch, error) {
	out := RouteMatch{}
	var errs []error
	if mm := m.Method; mm != nil {
		svc, method := "", ""
		if mm.Service != nil {
			svc = *mm.Service
		}
		if mm.Method != nil {
			method = *mm.Method
		}
		regex := mm.Type != nil && *mm.Type == gatewayv1.GRPCMethodMatchRegularExpression
		switch {
		case regex:
			out.Path = &StringMatch{Type: MatchRegex, Value: "/" + orAny(svc) + "/" + orAny(method)}
		case svc != "" && method != "":
			out.Path = &StringMatch{Type: MatchExact, Value: "/" + svc + "/" + method}
		case svc != "":
			out.Path = &StringMatch{Type: MatchPrefix, Value: "/" + svc}
		case method != "":
			out.Path = &StringMatch{Type: MatchRegex, Value: "/[^/]+/" + regexp.QuoteMeta(method)}
		}
		if out.Path != nil {
			errs = append(errs, checkMatch("method", out.Path.Type, out.Path.Value))
		}
	}
	for _, h := range m.Headers {
		t := gatewayv1.GRPCHeaderMatchExact
		if h.Type != nil {
			t = *h.Type
		}
		nm := NameMatch{Name: strings.ToLower(string(h.Name)), Type: MatchType(t), Value: h.Value}
		errs = append(errs, checkMatch("header "+nm.Name, nm.Type, nm.Value))
		out.Headers = append(out.Headers, nm)
	}
	return out, errors.Join(errs...)
}

func orAny(s string) string {
	if s == "" {
		return "[^/]+"
	}
	return s
}
