// Package identity maps Kubernetes workloads to SPIFFE IDs of the form
// spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>, the naming
// scheme Istio and Linkerd use on top of the SPIFFE-ID standard
// (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md).
//
// Values are go-spiffe spiffeid types, built only through validating
// constructors, so an ID that reaches the CA is always well formed.
package identity

import (
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultTrustDomain is the trust domain of a cluster that did not choose
// one; it matches the Kubernetes default DNS domain, as in Istio.
const DefaultTrustDomain = "cluster.local"

// Workload is the Kubernetes side of an identity: a ServiceAccount in a
// namespace within a trust domain. It is a comparable value type; build it
// with New or FromID so that every Workload is valid.
type Workload struct {
	trustDomain    spiffeid.TrustDomain
	namespace      string
	serviceAccount string
}

// New validates the namespace (a DNS-1123 label) and ServiceAccount name (a
// DNS-1123 subdomain) as Kubernetes does, so no name the API server would
// reject can ever be certified.
func New(td spiffeid.TrustDomain, namespace, serviceAccount string) (Workload, error) {
	if td.IsZero() {
		return Workload{}, fmt.Errorf("empty trust domain")
	}
	if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
		return Workload{}, fmt.Errorf("invalid namespace %q: %s", namespace, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Subdomain(serviceAccount); len(errs) > 0 {
		return Workload{}, fmt.Errorf("invalid service account %q: %s", serviceAccount, strings.Join(errs, "; "))
	}
	return Workload{trustDomain: td, namespace: namespace, serviceAccount: serviceAccount}, nil
}

// Parse is New with the trust domain given as a string, for flags and
// configuration.
func Parse(trustDomain, namespace, serviceAccount string) (Workload, error) {
	td, err := spiffeid.TrustDomainFromString(trustDomain)
	if err != nil {
		return Workload{}, fmt.Errorf("trust domain %q: %w", trustDomain, err)
	}
	return New(td, namespace, serviceAccount)
}

// FromID is the inverse of Workload.ID: it accepts only IDs whose path is
// exactly /ns/<namespace>/sa/<service-account>, so a peer's certificate can
// be mapped back to the ServiceAccount it was issued for.
func FromID(id spiffeid.ID) (Workload, error) {
	if id.IsZero() {
		return Workload{}, fmt.Errorf("empty SPIFFE ID")
	}
	segs := strings.Split(strings.TrimPrefix(id.Path(), "/"), "/")
	if len(segs) != 4 || segs[0] != "ns" || segs[2] != "sa" {
		return Workload{}, fmt.Errorf("SPIFFE ID %q is not of the form spiffe://<td>/ns/<ns>/sa/<sa>", id)
	}
	return New(id.TrustDomain(), segs[1], segs[3])
}

// TrustDomain is the SPIFFE trust domain the workload belongs to.
func (w Workload) TrustDomain() spiffeid.TrustDomain { return w.trustDomain }

// Namespace is the Kubernetes namespace of the workload.
func (w Workload) Namespace() string { return w.namespace }

// ServiceAccount is the Kubernetes ServiceAccount name of the workload.
func (w Workload) ServiceAccount() string { return w.serviceAccount }

// IsZero reports whether w was not built by a constructor.
func (w Workload) IsZero() bool { return w.trustDomain.IsZero() }

// ID is the workload's SPIFFE ID, the URI SAN of its X.509-SVID.
func (w Workload) ID() spiffeid.ID {
	if w.IsZero() {
		return spiffeid.ID{}
	}
	// Segments were validated by New; DNS-1123 names are valid path segments.
	return spiffeid.RequireFromSegments(w.trustDomain, "ns", w.namespace, "sa", w.serviceAccount)
}

// String is the SPIFFE ID as a URI, used as the key of per-identity rate
// limits and in logs.
func (w Workload) String() string { return w.ID().String() }
