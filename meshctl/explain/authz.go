package explain

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// AuthzRequest is what an authorization decision looks at: the workload
// called, the caller's identity and, for HTTP, the request.
type AuthzRequest struct {
	Namespace string
	Labels    map[string]string
	// Port is the workload's (container) port.
	Port int32
	// Principal is the caller's SPIFFE ID; empty for plaintext callers.
	Principal string
	HTTP      bool
	Method    string
	Path      string
}

// AuthzDecision is the outcome, with the policy that decided.
type AuthzDecision struct {
	Allowed bool `json:"allowed"`
	// Policy is "namespace/name" of the deciding policy ("" when none).
	Policy string `json:"policy,omitempty"`
	Reason string `json:"reason"`
	// Audited names AUDIT policies that matched (the request is served
	// and counted as would-be-denied).
	Audited []string `json:"audited,omitempty"`
}

// Authorizer decides a request against AuthorizationPolicies. explain
// takes it as an interface so pilot's own evaluator can replace meshctl's
// PolicySet once it exists as a pure function.
type Authorizer interface {
	Authorize(AuthzRequest) AuthzDecision
}

// NoPolicies allows everything: the AuthorizationPolicy API is not
// installed, so nothing can deny.
type NoPolicies struct{ Why string }

// Authorize always allows.
func (n NoPolicies) Authorize(AuthzRequest) AuthzDecision {
	return AuthzDecision{Allowed: true, Reason: "no authorization policy: allowed (" + n.Why + ")"}
}

// AuthzPolicy is an AuthorizationPolicy (mesh.weft.dev/v1alpha1) as
// explain reads it from the API, decoupled from the Go types.
type AuthzPolicy struct {
	Metadata metav1.ObjectMeta `json:"metadata"`
	Spec     struct {
		Selector *metav1.LabelSelector `json:"selector,omitempty"`
		Action   string                `json:"action,omitempty"`
		Rules    []struct {
			From []struct {
				Principals    []string `json:"principals,omitempty"`
				NotPrincipals []string `json:"notPrincipals,omitempty"`
				Namespaces    []string `json:"namespaces,omitempty"`
				NotNamespaces []string `json:"notNamespaces,omitempty"`
			} `json:"from,omitempty"`
			To []struct {
				Methods []string `json:"methods,omitempty"`
				Paths   []string `json:"paths,omitempty"`
				Ports   []int32  `json:"ports,omitempty"`
			} `json:"to,omitempty"`
		} `json:"rules,omitempty"`
	} `json:"spec"`
}

// PolicySet evaluates AuthorizationPolicies with the documented semantics
// (api/v1alpha1, after Istio's): DENY first; then, if any ALLOW policy
// selects the workload, one must match; AUDIT never refuses. A policy
// without rules matches nothing (an ALLOW without rules denies all).
type PolicySet struct {
	RootNamespace string
	Policies      []AuthzPolicy
}

// Authorize evaluates req.
func (ps PolicySet) Authorize(req AuthzRequest) AuthzDecision {
	var allows []AuthzPolicy
	var audited []string
	selected := false
	for _, p := range ps.Policies {
		if !ps.selects(p, req) {
			continue
		}
		selected = true
		name := p.Metadata.Namespace + "/" + p.Metadata.Name
		action := strings.ToUpper(p.Spec.Action)
		if action == "" {
			action = "ALLOW"
		}
		rule, matched := matchRules(p, req, action != "ALLOW")
		switch action {
		case "DENY":
			if matched {
				return AuthzDecision{Policy: name, Reason: fmt.Sprintf("denied by DENY policy %s (rule %d)", name, rule)}
			}
		case "AUDIT":
			if matched {
				audited = append(audited, name)
			}
		default:
			allows = append(allows, p)
		}
	}
	if len(allows) == 0 {
		reason := "no AuthorizationPolicy selects the workload: allowed"
		if selected {
			reason = "no DENY policy matches and no ALLOW policy selects the workload: allowed"
		}
		return AuthzDecision{Allowed: true, Audited: audited, Reason: reason}
	}
	var names []string
	for _, p := range allows {
		name := p.Metadata.Namespace + "/" + p.Metadata.Name
		names = append(names, name)
		if rule, ok := matchRules(p, req, false); ok {
			return AuthzDecision{Allowed: true, Policy: name, Audited: audited, Reason: fmt.Sprintf("allowed by ALLOW policy %s (rule %d)", name, rule)}
		}
	}
	who := req.Principal
	if who == "" {
		who = "a plaintext caller (no identity)"
	}
	return AuthzDecision{Policy: names[0], Audited: audited,
		Reason: fmt.Sprintf("denied: ALLOW policies %s select the workload and none matches %s", strings.Join(names, ", "), who)}
}

// selects: a policy in the root namespace applies mesh-wide (its selector,
// if any, picks pods in every namespace); elsewhere only in its namespace.
func (ps PolicySet) selects(p AuthzPolicy, req AuthzRequest) bool {
	if p.Metadata.Namespace != req.Namespace && p.Metadata.Namespace != ps.RootNamespace {
		return false
	}
	if p.Spec.Selector == nil {
		return true
	}
	sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
	return err == nil && sel.Matches(labels.Set(req.Labels))
}

// matchRules returns the 1-based index of the first matching rule. For
// DENY and AUDIT (lenient), HTTP-only conditions are ignored on TCP
// ports; for ALLOW they never match there.
func matchRules(p AuthzPolicy, req AuthzRequest, lenient bool) (int, bool) {
	for i, r := range p.Spec.Rules {
		fromOK := len(r.From) == 0
		for _, s := range r.From {
			if matchSource(s.Principals, s.NotPrincipals, s.Namespaces, s.NotNamespaces, req.Principal) {
				fromOK = true
				break
			}
		}
		toOK := len(r.To) == 0
		for _, o := range r.To {
			if matchOperation(o.Methods, o.Paths, o.Ports, req, lenient) {
				toOK = true
				break
			}
		}
		if fromOK && toOK {
			return i + 1, true
		}
	}
	return 0, false
}

func matchSource(principals, notPrincipals, namespaces, notNamespaces []string, id string) bool {
	ns := namespaceOf(id)
	if len(principals) > 0 && !slices.ContainsFunc(principals, func(p string) bool { return matchPrincipal(p, id) }) {
		return false
	}
	if slices.ContainsFunc(notPrincipals, func(p string) bool { return matchPrincipal(p, id) }) {
		return false
	}
	if len(namespaces) > 0 && (ns == "" || !slices.Contains(namespaces, ns)) {
		return false
	}
	return ns == "" || !slices.Contains(notNamespaces, ns)
}

// matchPrincipal matches a SPIFFE ID against a principal pattern ("*",
// "prefix*", "*suffix", exact; "spiffe://" optional). Plaintext callers
// (no ID) match nothing.
func matchPrincipal(pattern, id string) bool {
	if id == "" {
		return false
	}
	if pattern == "*" {
		return true
	}
	bare := strings.TrimPrefix(id, "spiffe://")
	pattern = strings.TrimPrefix(pattern, "spiffe://")
	switch {
	case strings.HasPrefix(pattern, "*"):
		return strings.HasSuffix(bare, pattern[1:])
	case strings.HasSuffix(pattern, "*"):
		return strings.HasPrefix(bare, pattern[:len(pattern)-1])
	}
	return bare == pattern
}

func namespaceOf(id string) string {
	parts := strings.Split(strings.TrimPrefix(id, "spiffe://"), "/")
	for i := 0; i+1 < len(parts); i++ {
		if parts[i] == "ns" {
			return parts[i+1]
		}
	}
	return ""
}

func matchOperation(methods, paths []string, ports []int32, req AuthzRequest, lenient bool) bool {
	if len(ports) > 0 && !slices.Contains(ports, req.Port) {
		return false
	}
	if !req.HTTP {
		if len(methods) > 0 || len(paths) > 0 {
			return lenient
		}
		return true
	}
	if len(methods) > 0 && !slices.Contains(methods, strings.ToUpper(req.Method)) {
		return false
	}
	if len(paths) > 0 && !slices.ContainsFunc(paths, func(p string) bool { return matchPath(p, req.Path) }) {
		return false
	}
	return true
}

func matchPath(pattern, path string) bool {
	path, _, _ = strings.Cut(path, "?")
	switch {
	case pattern == "*":
		return true
	case strings.HasSuffix(pattern, "*"):
		return strings.HasPrefix(path, pattern[:len(pattern)-1])
	case strings.HasPrefix(pattern, "*"):
		return strings.HasSuffix(path, pattern[1:])
	}
	return path == pattern
}
