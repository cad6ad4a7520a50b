package model

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/weftmesh/weft/api/v1alpha1"
)

// AuthzAction is what a matching AuthorizationPolicy does.
type AuthzAction string

// Authorization actions; see api/v1alpha1.AuthorizationAction.
const (
	AuthzAllow AuthzAction = "ALLOW"
	AuthzDeny  AuthzAction = "DENY"
	AuthzAudit AuthzAction = "AUDIT"
)

// AuthzPolicy is a mesh.weft.dev AuthorizationPolicy reduced to what the
// generator needs.
type AuthzPolicy struct {
	Namespace  string
	Name       string
	Generation int64
	Created    time.Time
	// Selector picks workloads; nil means the namespace (or, in the root
	// namespace, the mesh).
	Selector labels.Selector
	Action   AuthzAction
	Rules    []AuthzRule
}

// Key is the policy's namespace/name.
func (p *AuthzPolicy) Key() Key { return Key{Namespace: p.Namespace, Name: p.Name} }

// AuthzRule matches when one of From and one of To match (empty: any).
type AuthzRule struct {
	From []AuthzSource
	To   []AuthzOperation
}

// AuthzSource matches the caller's identity; every set field must match.
type AuthzSource struct {
	Principals, NotPrincipals, Namespaces, NotNamespaces []string
}

// AuthzOperation matches what is called; every set field must match.
type AuthzOperation struct {
	Methods, Paths []string
	Ports          []int32
}

// HTTPOnly reports whether the operation needs HTTP attributes (methods,
// paths), which a TCP connection does not have.
func (o AuthzOperation) HTTPOnly() bool { return len(o.Methods) > 0 || len(o.Paths) > 0 }

// AuthzPolicyFromK8s converts an AuthorizationPolicy.
func AuthzPolicyFromK8s(ap *v1alpha1.AuthorizationPolicy) (*AuthzPolicy, error) {
	out := &AuthzPolicy{
		Namespace: ap.Namespace, Name: ap.Name, Generation: ap.Generation, Created: ap.CreationTimestamp.Time,
		Action: AuthzAction(ap.Spec.Action),
	}
	switch out.Action {
	case "":
		out.Action = AuthzAllow
	case AuthzAllow, AuthzDeny, AuthzAudit:
	default:
		return nil, fmt.Errorf("authorizationpolicy %s/%s: unknown action %q", ap.Namespace, ap.Name, ap.Spec.Action)
	}
	if ap.Spec.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(ap.Spec.Selector)
		if err != nil {
			return nil, fmt.Errorf("authorizationpolicy %s/%s selector: %w", ap.Namespace, ap.Name, err)
		}
		out.Selector = sel
	}
	for _, r := range ap.Spec.Rules {
		rule := AuthzRule{}
		for _, f := range r.From {
			rule.From = append(rule.From, AuthzSource{
				Principals: slices.Clone(f.Principals), NotPrincipals: slices.Clone(f.NotPrincipals),
				Namespaces: slices.Clone(f.Namespaces), NotNamespaces: slices.Clone(f.NotNamespaces),
			})
		}
		for _, t := range r.To {
			rule.To = append(rule.To, AuthzOperation{Methods: slices.Clone(t.Methods), Paths: slices.Clone(t.Paths), Ports: slices.Clone(t.Ports)})
		}
		out.Rules = append(out.Rules, rule)
	}
	return out, nil
}

// SelectAuthz returns the policies that govern a workload, sorted by
// namespace/name: those of its namespace whose selector matches it (or
// that have none), and those of the root namespace (without selector: the
// whole mesh; with one: matching workloads of every namespace), as in
// Istio.
func SelectAuthz(policies []*AuthzPolicy, rootNamespace, namespace string, podLabels map[string]string) []*AuthzPolicy {
	var out []*AuthzPolicy
	set := labels.Set(podLabels)
	for _, p := range policies {
		if p.Namespace != namespace && p.Namespace != rootNamespace {
			continue
		}
		if p.Selector == nil || p.Selector.Matches(set) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *AuthzPolicy) int { return strings.Compare(a.Key().String(), b.Key().String()) })
	return out
}
