package generator

import (
	"regexp"
	"strconv"
	"strings"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbacnetv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"

	"github.com/weftmesh/weft/pilot/model"
)

// Stat prefixes of the inbound RBAC filters. The enforcing filters count
// http.<hcm>.rbac.<prefix>allowed/denied, the AUDIT shadow rules
// http.<hcm>.rbac.audit_shadow_denied — on :15090 in Prometheus form
// envoy_http_rbac_shadow_denied{envoy_rbac_http_prefix="audit_"} — which is
// how users and the e2e suite see what an AUDIT policy would have denied.
const (
	RBACDenyPrefix  = "deny_"
	RBACAllowPrefix = "allow_"
	RBACAuditPrefix = "audit_"
)

// authz holds a workload's AuthorizationPolicies split by action.
type authz struct {
	td                  string
	allow, deny, audit  []*model.AuthzPolicy
	haveAllow, anyRules bool
}

func newAuthz(td string, policies []*model.AuthzPolicy) authz {
	a := authz{td: td}
	for _, p := range policies {
		switch p.Action {
		case model.AuthzDeny:
			a.deny = append(a.deny, p)
		case model.AuthzAudit:
			a.audit = append(a.audit, p)
		default:
			a.allow = append(a.allow, p)
			a.haveAllow = true
		}
	}
	a.anyRules = len(policies) > 0
	return a
}

// httpFilters are the RBAC HTTP filters of an inbound HTTP chain
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/configuration/http/http_filters/rbac_filter):
// DENY policies (with AUDIT as shadow rules) first, then ALLOW policies, so
// a deny always wins; with no ALLOW policy the second filter is left out
// and everything not denied is allowed.
func (a authz) httpFilters() []*hcmv3.HttpFilter {
	if !a.anyRules {
		return nil
	}
	var out []*hcmv3.HttpFilter
	if len(a.deny)+len(a.audit) > 0 {
		f := &rbachttpv3.RBAC{RulesStatPrefix: RBACDenyPrefix}
		if len(a.deny) > 0 {
			f.Rules = a.rbac(rbacv3.RBAC_DENY, a.deny, true)
		}
		if len(a.audit) > 0 {
			f.ShadowRules = a.rbac(rbacv3.RBAC_DENY, a.audit, true)
			f.ShadowRulesStatPrefix = RBACAuditPrefix
		}
		out = append(out, &hcmv3.HttpFilter{Name: wellknown.HTTPRoleBasedAccessControl,
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(f)}})
	}
	if a.haveAllow {
		f := &rbachttpv3.RBAC{RulesStatPrefix: RBACAllowPrefix, Rules: a.rbac(rbacv3.RBAC_ALLOW, a.allow, true)}
		out = append(out, &hcmv3.HttpFilter{Name: wellknown.HTTPRoleBasedAccessControl,
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(f)}})
	}
	return out
}

// networkFilters are the network RBAC filters of an inbound TCP chain
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/configuration/listeners/network_filters/rbac_filter),
// placed before the TCP proxy; statPrefix names their stats.
func (a authz) networkFilters(statPrefix string) []*listenerv3.Filter {
	if !a.anyRules {
		return nil
	}
	var out []*listenerv3.Filter
	if len(a.deny)+len(a.audit) > 0 {
		f := &rbacnetv3.RBAC{StatPrefix: statPrefix + "." + RBACDenyPrefix}
		if len(a.deny) > 0 {
			f.Rules = a.rbac(rbacv3.RBAC_DENY, a.deny, false)
		}
		if len(a.audit) > 0 {
			f.ShadowRules = a.rbac(rbacv3.RBAC_DENY, a.audit, false)
			f.ShadowRulesStatPrefix = RBACAuditPrefix
		}
		out = append(out, &listenerv3.Filter{Name: wellknown.RoleBasedAccessControl,
			ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(f)}})
	}
	if a.haveAllow {
		f := &rbacnetv3.RBAC{StatPrefix: statPrefix + "." + RBACAllowPrefix, Rules: a.rbac(rbacv3.RBAC_ALLOW, a.allow, false)}
		out = append(out, &listenerv3.Filter{Name: wellknown.RoleBasedAccessControl,
			ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(f)}})
	}
	return out
}

// rbac builds one RBAC config: an Envoy policy per rule, named
// "<ns>/<name>[<i>]" (the name shows in RBAC logs and metadata). On TCP
// (http false) methods and paths cannot be checked: an ALLOW operation that
// needs them never matches (dropped), a DENY or AUDIT one ignores them, so
// the outcome is always the more restrictive one, as in Istio.
func (a authz) rbac(action rbacv3.RBAC_Action, policies []*model.AuthzPolicy, http bool) *rbacv3.RBAC {
	out := &rbacv3.RBAC{Action: action, Policies: map[string]*rbacv3.Policy{}}
	for _, p := range policies {
		for i, r := range p.Rules {
			var perms []*rbacv3.Permission
			for _, op := range r.To {
				if !http && op.HTTPOnly() && action == rbacv3.RBAC_ALLOW {
					continue
				}
				perms = append(perms, permission(op, http))
			}
			if len(r.To) > 0 && len(perms) == 0 {
				continue // no operation can match on this protocol
			}
			if len(perms) == 0 {
				perms = []*rbacv3.Permission{{Rule: &rbacv3.Permission_Any{Any: true}}}
			}
			var ids []*rbacv3.Principal
			for _, src := range r.From {
				ids = append(ids, a.principal(src))
			}
			if len(ids) == 0 {
				ids = []*rbacv3.Principal{{Identifier: &rbacv3.Principal_Any{Any: true}}}
			}
			out.Policies[p.Namespace+"/"+p.Name+"["+strconv.Itoa(i)+"]"] = &rbacv3.Policy{Permissions: perms, Principals: ids}
		}
	}
	return out
}

func permission(op model.AuthzOperation, http bool) *rbacv3.Permission {
	var and []*rbacv3.Permission
	if http && len(op.Methods) > 0 {
		var or []*rbacv3.Permission
		for _, m := range op.Methods {
			or = append(or, &rbacv3.Permission{Rule: &rbacv3.Permission_Header{Header: &routev3.HeaderMatcher{
				Name: ":method", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: stringMatcher(model.MatchExact, m)},
			}}})
		}
		and = append(and, orPerm(or))
	}
	if http && len(op.Paths) > 0 {
		var or []*rbacv3.Permission
		for _, p := range op.Paths {
			or = append(or, &rbacv3.Permission{Rule: &rbacv3.Permission_UrlPath{UrlPath: &matcherv3.PathMatcher{
				Rule: &matcherv3.PathMatcher_Path{Path: wildcard(p)},
			}}})
		}
		and = append(and, orPerm(or))
	}
	if len(op.Ports) > 0 {
		var or []*rbacv3.Permission
		for _, port := range op.Ports {
			or = append(or, &rbacv3.Permission{Rule: &rbacv3.Permission_DestinationPort{DestinationPort: uint32(port)}})
		}
		and = append(and, orPerm(or))
	}
	switch len(and) {
	case 0:
		return &rbacv3.Permission{Rule: &rbacv3.Permission_Any{Any: true}}
	case 1:
		return and[0]
	}
	return &rbacv3.Permission{Rule: &rbacv3.Permission_AndRules{AndRules: &rbacv3.Permission_Set{Rules: and}}}
}

func orPerm(or []*rbacv3.Permission) *rbacv3.Permission {
	if len(or) == 1 {
		return or[0]
	}
	return &rbacv3.Permission{Rule: &rbacv3.Permission_OrRules{OrRules: &rbacv3.Permission_Set{Rules: or}}}
}

// principal matches a source against the URI SAN (SPIFFE ID) of the peer's
// certificate; plaintext peers have none, so they match only negations.
func (a authz) principal(src model.AuthzSource) *rbacv3.Principal {
	var and []*rbacv3.Principal
	ids := func(vals []string, m func(string) *matcherv3.StringMatcher) *rbacv3.Principal {
		var or []*rbacv3.Principal
		for _, v := range vals {
			or = append(or, &rbacv3.Principal{Identifier: &rbacv3.Principal_Authenticated_{
				Authenticated: &rbacv3.Principal_Authenticated{PrincipalName: m(v)},
			}})
		}
		if len(or) == 1 {
			return or[0]
		}
		return &rbacv3.Principal{Identifier: &rbacv3.Principal_OrIds{OrIds: &rbacv3.Principal_Set{Ids: or}}}
	}
	not := func(p *rbacv3.Principal) *rbacv3.Principal {
		return &rbacv3.Principal{Identifier: &rbacv3.Principal_NotId{NotId: p}}
	}
	if len(src.Principals) > 0 {
		and = append(and, ids(src.Principals, principalMatcher))
	}
	if len(src.NotPrincipals) > 0 {
		and = append(and, not(ids(src.NotPrincipals, principalMatcher)))
	}
	if len(src.Namespaces) > 0 {
		and = append(and, ids(src.Namespaces, a.namespaceMatcher))
	}
	if len(src.NotNamespaces) > 0 {
		and = append(and, not(ids(src.NotNamespaces, a.namespaceMatcher)))
	}
	if len(and) == 1 {
		return and[0]
	}
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_AndIds{AndIds: &rbacv3.Principal_Set{Ids: and}}}
}

// principalMatcher accepts a SPIFFE ID with or without "spiffe://"
// (Istio's form) and "*" wildcards at either end; "*" alone matches any
// authenticated peer.
func principalMatcher(v string) *matcherv3.StringMatcher {
	if v == "*" {
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: ".+"}}}
	}
	if !strings.HasPrefix(v, "spiffe://") && !strings.HasPrefix(v, "*") {
		v = "spiffe://" + v
	}
	return wildcard(v)
}

// namespaceMatcher matches every identity of a namespace,
// spiffe://<td>/ns/<ns>/sa/<any>.
func (a authz) namespaceMatcher(ns string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{
		Regex: "^spiffe://" + regexp.QuoteMeta(a.td) + "/ns/" + regexp.QuoteMeta(ns) + "/sa/[^/]+$",
	}}}
}

// wildcard is Istio's string syntax: exact, "prefix*", "*suffix" or "*".
func wildcard(v string) *matcherv3.StringMatcher {
	switch {
	case v == "*":
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: ".*"}}}
	case strings.HasSuffix(v, "*"):
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: strings.TrimSuffix(v, "*")}}
	case strings.HasPrefix(v, "*"):
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: strings.TrimPrefix(v, "*")}}
	}
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v}}
}
