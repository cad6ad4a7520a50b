// Package status reports why mesh configuration is or is not in effect:
// Accepted and ResolvedRefs on the parent status of HTTPRoutes and
// GRPCRoutes attached to Services (controllerName weft.dev/pilot, as the
// Gateway API asks of every implementation,
// https://gateway-api.sigs.k8s.io/reference/spec/#routeparentstatus), and
// conditions on TrafficPolicy, AuthorizationPolicy and Telemetry. Computing a status is
// pure (this file); Writer is the thin client edge that writes it.
package status

import (
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/weftmesh/weft/pilot/model"
)

// ControllerName identifies pilot in route parent statuses.
const ControllerName gatewayv1.GatewayController = "weft.dev/pilot"

// Condition types pilot writes (Gateway API's RouteConditionType and
// PolicyConditionType).
const (
	TypeAccepted     = "Accepted"
	TypeResolvedRefs = "ResolvedRefs"
)

// condition turns a computed condition into a metav1.Condition, keeping the
// transition time of an existing condition whose status did not change
// (meta.SetStatusCondition's rule).
func condition(typ string, c model.Condition, gen int64, existing []metav1.Condition, now time.Time) metav1.Condition {
	st := metav1.ConditionFalse
	if c.Status {
		st = metav1.ConditionTrue
	}
	out := metav1.Condition{Type: typ, Status: st, Reason: c.Reason, Message: truncate(c.Message), ObservedGeneration: gen,
		LastTransitionTime: metav1.NewTime(now)}
	if old := meta.FindStatusCondition(existing, typ); old != nil && old.Status == st {
		out.LastTransitionTime = old.LastTransitionTime
	}
	return out
}

// truncate keeps a message within the API's 32768-byte limit.
func truncate(s string) string {
	const max = 32000
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// RouteParents computes a route's status.parents: pilot's entry for each
// Service parent (from st), in spec order, after the entries of other
// controllers, which are kept as they are.
func RouteParents(spec []gatewayv1.ParentReference, st *model.RouteStatus, existing []gatewayv1.RouteParentStatus, now time.Time) []gatewayv1.RouteParentStatus {
	var out []gatewayv1.RouteParentStatus
	ours := map[int]gatewayv1.RouteParentStatus{}
	for _, e := range existing {
		if e.ControllerName != ControllerName {
			out = append(out, e)
			continue
		}
		for i, p := range spec {
			if equality.Semantic.DeepEqual(p, e.ParentRef) {
				ours[i] = e
			}
		}
	}
	if st == nil {
		return out
	}
	for _, ps := range st.Parents {
		if ps.Index >= len(spec) {
			continue
		}
		old := ours[ps.Index].Conditions
		out = append(out, gatewayv1.RouteParentStatus{
			ParentRef:      spec[ps.Index],
			ControllerName: ControllerName,
			Conditions: []metav1.Condition{
				condition(TypeAccepted, ps.Accepted, st.Generation, old, now),
				condition(TypeResolvedRefs, ps.ResolvedRefs, st.Generation, old, now),
			},
		})
	}
	return out
}

// PolicyConditions computes the conditions of a TrafficPolicy or
// AuthorizationPolicy, keeping conditions of other types.
func PolicyConditions(st *model.PolicyStatus, existing []metav1.Condition, now time.Time) []metav1.Condition {
	out := []metav1.Condition{}
	for _, c := range existing {
		if c.Type != TypeAccepted && c.Type != TypeResolvedRefs {
			out = append(out, c)
		}
	}
	out = append(out, condition(TypeAccepted, st.Accepted, st.Generation, existing, now))
	if st.ResolvedRefs != nil {
		out = append(out, condition(TypeResolvedRefs, *st.ResolvedRefs, st.Generation, existing, now))
	}
	return out
}

// SameConditions compares condition lists ignoring transition times, so an
// unchanged status is not rewritten.
func SameConditions(a, b []metav1.Condition) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		x.LastTransitionTime, y.LastTransitionTime = metav1.Time{}, metav1.Time{}
		if x != y {
			return false
		}
	}
	return true
}

// SameParents compares parent statuses ignoring transition times.
func SameParents(a, b []gatewayv1.RouteParentStatus) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ControllerName != b[i].ControllerName || !equality.Semantic.DeepEqual(a[i].ParentRef, b[i].ParentRef) ||
			!SameConditions(a[i].Conditions, b[i].Conditions) {
			return false
		}
	}
	return true
}

// AuthzStatus is the status of an AuthorizationPolicy: once converted, it
// is always enforced by the sidecars of the workloads it selects.
func AuthzStatus(p *model.AuthzPolicy) *model.PolicyStatus {
	msg := "enforced on inbound requests by the sidecars of the selected workloads"
	if p.Action == model.AuthzAudit {
		msg = `audited (never enforced): the selected workloads' sidecars count the requests it matches ` +
			`(envoy_http_rbac_shadow_denied{envoy_rbac_http_prefix="audit_"} on :15090) and log them ("weft-audit would deny")`
	}
	return &model.PolicyStatus{Generation: p.Generation, Accepted: model.Condition{Status: true, Reason: model.ReasonAccepted, Message: msg}}
}

// ReasonNoTracingCollector is a Telemetry's ResolvedRefs reason when it
// sets tracing but pilot has no --tracing-collector to send spans to.
const ReasonNoTracingCollector = "NoTracingCollector"

// TelemetryStatus is the status of a Telemetry: Accepted unless an older
// Telemetry of its namespace is in force (winner, which View.TelemetryWinner
// computes), and, when it sets tracing, ResolvedRefs says whether pilot
// has the collector tracing needs (tracing: pilot's --tracing-collector
// is set).
func TelemetryStatus(p, winner *model.TelemetryPolicy, rootNamespace string, tracing bool) *model.PolicyStatus {
	scope := "the sidecars of namespace " + p.Namespace
	if p.Namespace == rootNamespace {
		scope = "every sidecar of the mesh, unless its namespace's Telemetry says otherwise"
	}
	st := &model.PolicyStatus{Generation: p.Generation,
		Accepted: model.Condition{Status: true, Reason: model.ReasonAccepted, Message: "applied to " + scope}}
	if winner != nil && winner != p {
		st.Accepted = model.Condition{Reason: model.ReasonConflicted,
			Message: "Telemetry " + winner.Key().String() + " is in force: one Telemetry per namespace, the oldest wins"}
	}
	if p.Settings.SetsTracing() {
		refs := model.Condition{Status: true, Reason: model.ReasonResolvedRefs, Message: "spans go to pilot's tracing collector"}
		if !tracing {
			refs = model.Condition{Reason: ReasonNoTracingCollector,
				Message: "pilot has no --tracing-collector (chart: telemetry.collector.enabled), so the tracing settings have no effect; access logging still applies"}
		}
		st.ResolvedRefs = &refs
	}
	return st
}
