package status_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/weftmesh/weft/pilot/model"
	"github.com/weftmesh/weft/pilot/status"
)

var (
	t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Hour)
)

func TestRouteParentsKeepsOtherControllersAndTransitionTimes(t *testing.T) {
	svc := gatewayv1.ParentReference{Group: ptr.To(gatewayv1.Group("")), Kind: ptr.To(gatewayv1.Kind("Service")), Name: "reviews"}
	gw := gatewayv1.ParentReference{Name: "gw"}
	other := gatewayv1.RouteParentStatus{ParentRef: gw, ControllerName: "example.com/gateway"}
	st := &model.RouteStatus{Generation: 3, Parents: []model.ParentStatus{{Index: 1,
		Accepted:     model.Condition{Status: true, Reason: model.ReasonAccepted, Message: "ok"},
		ResolvedRefs: model.Condition{Reason: model.ReasonBackendNotFound, Message: "missing"}}}}
	spec := []gatewayv1.ParentReference{gw, svc}

	first := status.RouteParents(spec, st, []gatewayv1.RouteParentStatus{other}, t0)
	if len(first) != 2 || first[0].ControllerName != "example.com/gateway" || first[1].ControllerName != status.ControllerName {
		t.Fatalf("parents = %+v", first)
	}
	acc := first[1].Conditions[0]
	if acc.Type != "Accepted" || acc.Status != metav1.ConditionTrue || acc.ObservedGeneration != 3 || !acc.LastTransitionTime.Time.Equal(t0) {
		t.Errorf("accepted = %+v", acc)
	}
	if refs := first[1].Conditions[1]; refs.Status != metav1.ConditionFalse || refs.Reason != model.ReasonBackendNotFound {
		t.Errorf("resolvedRefs = %+v", refs)
	}

	// Recomputed later with the same outcome: nothing changes, so nothing
	// is written.
	again := status.RouteParents(spec, st, first, t1)
	if !status.SameParents(first, again) || !again[1].Conditions[0].LastTransitionTime.Time.Equal(t0) {
		t.Errorf("unchanged status rewritten: %+v", again)
	}
	// A flip moves the transition time.
	st.Parents[0].ResolvedRefs = model.Condition{Status: true, Reason: model.ReasonResolvedRefs}
	flipped := status.RouteParents(spec, st, first, t1)
	if status.SameParents(first, flipped) || !flipped[1].Conditions[1].LastTransitionTime.Time.Equal(t1) {
		t.Errorf("flip not recorded: %+v", flipped[1].Conditions[1])
	}
}

func TestPolicyConditions(t *testing.T) {
	refs := model.Condition{Reason: model.ReasonTargetNotFound, Message: "gone"}
	st := &model.PolicyStatus{Generation: 2, Accepted: model.Condition{Reason: model.ReasonConflicted, Message: "older wins"}, ResolvedRefs: &refs}
	keep := metav1.Condition{Type: "Custom", Status: metav1.ConditionTrue, Reason: "X"}
	got := status.PolicyConditions(st, []metav1.Condition{keep}, t0)
	if len(got) != 3 || got[0].Type != "Custom" || got[1].Reason != model.ReasonConflicted || got[2].Reason != model.ReasonTargetNotFound {
		t.Fatalf("conditions = %+v", got)
	}
	audit := status.AuthzStatus(&model.AuthzPolicy{Action: model.AuthzAudit, Generation: 4})
	if !audit.Accepted.Status || audit.Generation != 4 {
		t.Errorf("audit status = %+v", audit)
	}
}

func TestTelemetryStatus(t *testing.T) {
	older := &model.TelemetryPolicy{Namespace: "shop", Name: "a", Generation: 1, Created: t0,
		Settings: model.TelemetrySettings{SamplingPercent: model.Some(5.0)}}
	newer := &model.TelemetryPolicy{Namespace: "shop", Name: "b", Generation: 2, Created: t1,
		Settings: model.TelemetrySettings{AccessLogDisabled: model.Some(false)}}
	mesh := &model.TelemetryPolicy{Namespace: "weft-system", Name: "mesh", Generation: 3,
		Settings: model.TelemetrySettings{TracingDisabled: model.Some(true)}}
	v := model.NewViewWith(model.StoreConfig{RootNamespace: "weft-system"}, nil, nil, nil, nil,
		model.Objects{Telemetry: []*model.TelemetryPolicy{newer, mesh, older}})
	for _, tc := range []struct {
		p            *model.TelemetryPolicy
		tracing      bool
		wantAccepted string
		wantRefs     string // "": no ResolvedRefs condition
	}{
		{older, true, model.ReasonAccepted, model.ReasonResolvedRefs},
		{older, false, model.ReasonAccepted, status.ReasonNoTracingCollector},
		{newer, true, model.ReasonConflicted, ""},
		// Turning tracing off needs no collector.
		{mesh, false, model.ReasonAccepted, ""},
	} {
		st := status.TelemetryStatus(tc.p, v.TelemetryWinner(tc.p.Namespace), v.RootNamespace(), tc.tracing)
		if st.Accepted.Reason != tc.wantAccepted || st.Accepted.Status != (tc.wantAccepted == model.ReasonAccepted) || st.Generation != tc.p.Generation {
			t.Errorf("%s (tracing %v): accepted = %+v, want reason %s", tc.p.Key(), tc.tracing, st.Accepted, tc.wantAccepted)
		}
		switch {
		case tc.wantRefs == "" && st.ResolvedRefs != nil:
			t.Errorf("%s (tracing %v): resolvedRefs = %+v, want none", tc.p.Key(), tc.tracing, *st.ResolvedRefs)
		case tc.wantRefs != "" && (st.ResolvedRefs == nil || st.ResolvedRefs.Reason != tc.wantRefs ||
			st.ResolvedRefs.Status != (tc.wantRefs == model.ReasonResolvedRefs)):
			t.Errorf("%s (tracing %v): resolvedRefs = %+v, want reason %s", tc.p.Key(), tc.tracing, st.ResolvedRefs, tc.wantRefs)
		}
	}
}
