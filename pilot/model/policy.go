package model

import (
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
)

// MTLSMode is the inbound mutual TLS mode of a workload, as set by MeshTLS
// (api/v1alpha1) and Istio's PeerAuthentication.
type MTLSMode string

const (
	// MTLSUnset inherits the mode of the parent scope.
	MTLSUnset MTLSMode = ""
	// MTLSStrict refuses plaintext.
	MTLSStrict MTLSMode = "STRICT"
	// MTLSPermissive accepts mutual TLS and plaintext.
	MTLSPermissive MTLSMode = "PERMISSIVE"
	// MTLSDisable accepts plaintext only.
	MTLSDisable MTLSMode = "DISABLE"
)

// DefaultMTLSMode applies when no policy says otherwise: PERMISSIVE, so
// meshed and unmeshed workloads keep talking during a rollout, as in Istio.
const DefaultMTLSMode = MTLSPermissive

// TLSPolicy is a MeshTLS object reduced to what resolution needs.
type TLSPolicy struct {
	Namespace string
	Name      string
	// Selector picks workloads; nil means the whole namespace (or the mesh,
	// in the root namespace).
	Selector labels.Selector
	Mode     MTLSMode
	// PortModes overrides Mode per container port.
	PortModes map[int32]MTLSMode
	Created   time.Time
}

// Key is the policy's namespace/name.
func (p *TLSPolicy) Key() Key { return Key{Namespace: p.Namespace, Name: p.Name} }

// EffectiveMTLS is the resolved mTLS behaviour of one workload.
type EffectiveMTLS struct {
	// Mode applies to every port not in PortModes.
	Mode MTLSMode
	// PortModes are per container port overrides, already resolved (never
	// MTLSUnset).
	PortModes map[int32]MTLSMode
}

// ForPort is the mode of one container port.
func (e EffectiveMTLS) ForPort(port int32) MTLSMode {
	if m, ok := e.PortModes[port]; ok {
		return m
	}
	return e.Mode
}

// ResolveMTLS picks the policy that governs a workload with the given
// namespace and labels, with Istio's PeerAuthentication precedence
// (https://istio.io/latest/docs/concepts/security/#peer-authentication):
// a workload policy (selector matches) beats the namespace policy, which
// beats the mesh policy (root namespace, no selector); among policies of the
// same scope the oldest wins (then the name, for a stable answer). An unset
// mode inherits from the next scope, and PERMISSIVE is the last resort.
// Port-level modes come from the workload policy only.
func ResolveMTLS(policies []*TLSPolicy, rootNamespace, namespace string, podLabels map[string]string) EffectiveMTLS {
	var workload, ns, mesh *TLSPolicy
	set := labels.Set(podLabels)
	for _, p := range policies {
		switch {
		case p.Namespace == namespace && p.Selector != nil:
			if p.Selector.Matches(set) {
				workload = older(workload, p)
			}
		case p.Namespace == namespace && p.Selector == nil && namespace != rootNamespace:
			ns = older(ns, p)
		case p.Namespace == rootNamespace && p.Selector == nil:
			mesh = older(mesh, p)
		}
	}
	out := EffectiveMTLS{Mode: DefaultMTLSMode}
	for _, p := range []*TLSPolicy{mesh, ns, workload} {
		if p != nil && p.Mode != MTLSUnset {
			out.Mode = p.Mode
		}
	}
	if workload != nil {
		for port, m := range workload.PortModes {
			if m == MTLSUnset {
				continue
			}
			if out.PortModes == nil {
				out.PortModes = make(map[int32]MTLSMode, len(workload.PortModes))
			}
			out.PortModes[port] = m
		}
	}
	return out
}

// older returns whichever of a and b was created first; b may not be nil.
func older(a, b *TLSPolicy) *TLSPolicy {
	if a == nil {
		return b
	}
	if c := a.Created.Compare(b.Created); c != 0 {
		if c < 0 {
			return a
		}
		return b
	}
	if strings.Compare(a.Name, b.Name) <= 0 {
		return a
	}
	return b
}

// sortPolicies orders policies by namespace/name so resolution input and
// debug output are deterministic.
func sortPolicies(ps []*TLSPolicy) {
	slices.SortFunc(ps, func(a, b *TLSPolicy) int {
		return strings.Compare(a.Key().String(), b.Key().String())
	})
}
