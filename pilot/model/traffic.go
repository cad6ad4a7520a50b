package model

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/api/v1alpha1"
)

// TrafficPolicy is a mesh.weft.dev TrafficPolicy reduced to what the
// generator needs; nil fields keep the mesh defaults.
type TrafficPolicy struct {
	Namespace  string
	Name       string
	Generation int64
	Created    time.Time
	// Targets are names of Services in Namespace.
	Targets []string
	// LoadBalancer is LeastRequest, RoundRobin or Random; empty keeps the
	// default (LeastRequest).
	LoadBalancer string
	Pool         *ConnectionPool
	Outlier      *OutlierDetection
	Retry        *RetryPolicy
	Fault        *Fault
}

// Key is the policy's namespace/name.
func (p *TrafficPolicy) Key() Key { return Key{Namespace: p.Namespace, Name: p.Name} }

// ConnectionPool are circuit-breaker thresholds; nil means unlimited.
type ConnectionPool struct {
	MaxConnections, MaxPendingRequests, MaxRequests, MaxRetries, MaxRequestsPerConnection *uint32
}

// OutlierDetection ejects failing endpoints; nil fields keep Envoy's
// defaults.
type OutlierDetection struct {
	Consecutive5xx     *uint32
	Interval           *time.Duration
	BaseEjectionTime   *time.Duration
	MaxEjectionPercent *uint32
}

// Fault delays and/or aborts a share of the requests that carry Headers.
type Fault struct {
	Delay        *time.Duration
	DelayPercent float64
	AbortStatus  int32
	AbortPercent float64
	Headers      []Header
}

// TrafficPolicyFromK8s converts a TrafficPolicy; the CRD's schema should
// have rejected anything that fails here.
func TrafficPolicyFromK8s(tp *v1alpha1.TrafficPolicy) (*TrafficPolicy, error) {
	s := tp.Spec
	out := &TrafficPolicy{
		Namespace: tp.Namespace, Name: tp.Name, Generation: tp.Generation, Created: tp.CreationTimestamp.Time,
	}
	for _, t := range s.TargetRefs {
		if t.Group != "" || t.Kind != "Service" {
			return nil, fmt.Errorf("trafficpolicy %s/%s: target %s/%s is not a Service", tp.Namespace, tp.Name, t.Kind, t.Name)
		}
		out.Targets = append(out.Targets, t.Name)
	}
	if s.LoadBalancer != nil {
		out.LoadBalancer = string(s.LoadBalancer.Algorithm)
	}
	if c := s.ConnectionPool; c != nil {
		out.Pool = &ConnectionPool{
			MaxConnections: u32(c.MaxConnections), MaxPendingRequests: u32(c.MaxPendingRequests),
			MaxRequests: u32(c.MaxRequests), MaxRetries: u32(c.MaxRetries), MaxRequestsPerConnection: u32(c.MaxRequestsPerConnection),
		}
	}
	if o := s.OutlierDetection; o != nil {
		out.Outlier = &OutlierDetection{
			Consecutive5xx: u32(o.Consecutive5xxErrors), Interval: dur(o.Interval),
			BaseEjectionTime: dur(o.BaseEjectionTime), MaxEjectionPercent: u32(o.MaxEjectionPercent),
		}
	}
	if r := s.Retry; r != nil {
		out.Retry = &RetryPolicy{Attempts: r.Attempts, On: slices.Clone(r.RetryOn), Codes: slices.Clone(r.Codes),
			Backoff: dur(r.Backoff), PerTryTimeout: dur(r.PerTryTimeout)}
	}
	if f := s.Fault; f != nil {
		fault := &Fault{}
		if d := f.Delay; d != nil {
			v := d.FixedDelay.Duration
			fault.Delay = &v
			p, err := percent(d.Percentage)
			if err != nil {
				return nil, fmt.Errorf("trafficpolicy %s/%s delay: %w", tp.Namespace, tp.Name, err)
			}
			fault.DelayPercent = p
		}
		if a := f.Abort; a != nil {
			fault.AbortStatus = a.HTTPStatus
			p, err := percent(a.Percentage)
			if err != nil {
				return nil, fmt.Errorf("trafficpolicy %s/%s abort: %w", tp.Namespace, tp.Name, err)
			}
			fault.AbortPercent = p
		}
		for _, h := range f.Headers {
			fault.Headers = append(fault.Headers, Header{Name: h.Name, Value: h.Value})
		}
		out.Fault = fault
	}
	return out, nil
}

func percent(p *v1alpha1.Percent) (float64, error) {
	if p == nil {
		return 100, nil
	}
	v, err := strconv.ParseFloat(string(*p), 64)
	if err != nil || v < 0 || v > 100 {
		return 0, fmt.Errorf("percentage %q is not in [0, 100]", *p)
	}
	return v, nil
}

func u32(v *int32) *uint32 {
	if v == nil || *v < 0 {
		return nil
	}
	u := uint32(*v)
	return &u
}

func dur(d *metav1.Duration) *time.Duration {
	if d == nil {
		return nil
	}
	v := d.Duration
	return &v
}

// PolicyStatus is the computed status of a TrafficPolicy or
// AuthorizationPolicy.
type PolicyStatus struct {
	Generation   int64
	Accepted     Condition
	ResolvedRefs *Condition
}

// Policy condition reasons (Gateway API policy attachment,
// https://gateway-api.sigs.k8s.io/geps/gep-713/#standard-status-condition).
const (
	ReasonConflicted     = "Conflicted"
	ReasonTargetNotFound = "TargetNotFound"
	ReasonInvalid        = "Invalid"
)

// TrafficTable maps Services to the TrafficPolicy in force for them.
type TrafficTable struct {
	bySvc  map[Key]*TrafficPolicy
	status map[Key]*PolicyStatus
}

// For returns the policy in force for a Service, or nil.
func (t *TrafficTable) For(svc Key) *TrafficPolicy { return t.bySvc[svc] }

// Status returns the computed status of every TrafficPolicy.
func (t *TrafficTable) Status() map[Key]*PolicyStatus { return t.status }

// ResolveTrafficPolicies picks, for every targeted Service, the oldest
// policy (then by name), as Gateway API policy attachment resolves
// conflicts; the others are reported Conflicted.
func ResolveTrafficPolicies(services map[Key]*Service, policies []*TrafficPolicy) *TrafficTable {
	t := &TrafficTable{bySvc: map[Key]*TrafficPolicy{}, status: map[Key]*PolicyStatus{}}
	sorted := slices.Clone(policies)
	slices.SortFunc(sorted, func(a, b *TrafficPolicy) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return compareKeys(a.Key(), b.Key())
	})
	for _, p := range sorted {
		st := &PolicyStatus{Generation: p.Generation,
			Accepted: Condition{Status: true, Reason: ReasonAccepted, Message: "applied to every client of the targeted Services"}}
		refs := Condition{Status: true, Reason: ReasonResolvedRefs, Message: "all targeted Services found"}
		var conflicts, missing []string
		for _, name := range p.Targets {
			k := Key{Namespace: p.Namespace, Name: name}
			if _, ok := services[k]; !ok {
				missing = append(missing, name)
			}
			if prev, ok := t.bySvc[k]; ok && prev != p {
				conflicts = append(conflicts, fmt.Sprintf("Service %s is governed by older TrafficPolicy %s", name, prev.Name))
				continue
			}
			t.bySvc[k] = p
		}
		if len(missing) > 0 {
			refs = Condition{Reason: ReasonTargetNotFound, Message: fmt.Sprintf("target Services not found: %v", missing)}
		}
		if len(conflicts) > 0 {
			st.Accepted = Condition{Reason: ReasonConflicted, Message: fmt.Sprintf("%v (the oldest policy wins)", conflicts)}
		}
		st.ResolvedRefs = &refs
		t.status[p.Key()] = st
	}
	return t
}
