package model_test

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/weftmesh/weft/api/v1alpha1"
	"github.com/weftmesh/weft/pilot/model"
	mt "github.com/weftmesh/weft/pilot/model/modeltest"
)

func httpRoute(name string, gen int64, created time.Time, rules ...gatewayv1.HTTPRouteRule) *gatewayv1.HTTPRoute {
	return &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Generation: gen, CreationTimestamp: metav1.NewTime(created)},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{
				{Group: ptr.To(gatewayv1.Group("")), Kind: ptr.To(gatewayv1.Kind("Service")), Name: "reviews"},
				{Name: "some-gateway"},
			}},
			Rules: rules,
		},
	}
}

func toBackend(name string, weight int32) gatewayv1.HTTPBackendRef {
	return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{Weight: ptr.To(weight),
		BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(name), Port: ptr.To[int32](9080)}}}
}

func headerRule(value string, backends ...gatewayv1.HTTPBackendRef) gatewayv1.HTTPRouteRule {
	return gatewayv1.HTTPRouteRule{
		Matches:     []gatewayv1.HTTPRouteMatch{{Headers: []gatewayv1.HTTPHeaderMatch{{Name: "end-user", Value: value}}}},
		BackendRefs: backends,
	}
}

func TestRouteConversionRejectsBadInput(t *testing.T) {
	regex := gatewayv1.PathMatchRegularExpression
	for name, rule := range map[string]gatewayv1.HTTPRouteRule{
		"invalid regex": {Matches: []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: &regex, Value: ptr.To("/a/([")}}}},
		"zero weights":  {BackendRefs: []gatewayv1.HTTPBackendRef{toBackend("a", 0), toBackend("b", 0)}},
		"cors":          {Filters: []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterCORS}}},
	} {
		r := model.RouteFromHTTPRoute(httpRoute("r", 1, mt.Epoch, rule))
		if r.Err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	ok := model.RouteFromHTTPRoute(httpRoute("r", 1, mt.Epoch, headerRule("jason", toBackend("reviews-v2", 1))))
	if ok.Err != nil || len(ok.Parents) != 2 || !ok.Parents[0].IsService() || ok.Parents[1].IsService() {
		t.Fatalf("valid route: %+v", ok)
	}
}

func TestResolveRoutes(t *testing.T) {
	reviews := mt.Service("shop", "reviews", "10.96.0.20", "reviews", mt.Port("http", 9080, 9080))
	v1 := mt.Service("shop", "reviews-v1", "10.96.0.21", "reviews", mt.Port("http", 9080, 9080))
	v2 := mt.Service("shop", "reviews-v2", "10.96.0.22", "reviews", mt.Port("http", 9080, 9080))
	st := model.NewStore(model.StoreConfig{RootNamespace: "weft-system"})
	for _, s := range []*model.Service{reviews, v1, v2} {
		st.UpsertService(s)
	}
	old := model.RouteFromHTTPRoute(httpRoute("old", 1, mt.Epoch,
		headerRule("jason", toBackend("reviews-v2", 1)),
		gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{toBackend("reviews-v1", 1)}}))
	newer := model.RouteFromHTTPRoute(httpRoute("newer", 1, mt.Epoch.Add(time.Minute),
		headerRule("jason", toBackend("missing", 1))))
	st.UpsertRoute(old)
	st.UpsertRoute(newer)

	v := st.View()
	rules := v.RouteTable().For(reviews.Key())
	var order []string
	for _, a := range rules {
		order = append(order, a.RuleName())
	}
	want := "HTTPRoute/shop/old/rule/0 HTTPRoute/shop/newer/rule/0 HTTPRoute/shop/old/rule/1"
	if got := strings.Join(order, " "); got != want {
		t.Errorf("match order\n got %s\nwant %s", got, want)
	}
	stNewer := v.RouteTable().Status()[newer.RouteKey()]
	if len(stNewer.Parents) != 1 || stNewer.Parents[0].Index != 0 {
		t.Fatalf("only the Service parent gets pilot's status: %+v", stNewer)
	}
	p := stNewer.Parents[0]
	if !p.Accepted.Status || !strings.Contains(p.Accepted.Message, "shadowed by older HTTPRoute shop/old") {
		t.Errorf("conflict not reported: %+v", p.Accepted)
	}
	if p.ResolvedRefs.Status || p.ResolvedRefs.Reason != model.ReasonBackendNotFound {
		t.Errorf("missing backend not reported: %+v", p.ResolvedRefs)
	}

	// An invalid new generation keeps the last good one in force.
	bad := model.RouteFromHTTPRoute(httpRoute("old", 2, mt.Epoch,
		gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{toBackend("reviews-v1", 0)}}))
	st.UpsertRoute(bad)
	v = st.View()
	ps := v.RouteTable().Status()[bad.RouteKey()].Parents[0]
	if ps.Accepted.Status || !strings.Contains(ps.Accepted.Message, "generation 1 stays in force") {
		t.Errorf("invalid generation: %+v", ps.Accepted)
	}
	if got := len(v.RouteTable().For(reviews.Key())); got != 3 {
		t.Errorf("last good generation not in force: %d rules", got)
	}

	// Missing parent, consumer route, wrong port.
	orphan := httpRoute("orphan", 1, mt.Epoch)
	orphan.Spec.ParentRefs[0].Name = "nope"
	consumer := httpRoute("consumer", 1, mt.Epoch)
	consumer.Namespace = "client"
	consumer.Spec.ParentRefs[0].Namespace = ptr.To(gatewayv1.Namespace("shop"))
	port := httpRoute("port", 1, mt.Epoch)
	port.Spec.ParentRefs[0].Port = ptr.To[int32](1234)
	for _, tc := range []struct {
		hr     *gatewayv1.HTTPRoute
		reason string
	}{{orphan, model.ReasonNoMatchingParent}, {consumer, model.ReasonNotAllowed}, {port, model.ReasonNoMatchingParent}} {
		r := model.RouteFromHTTPRoute(tc.hr)
		st.UpsertRoute(r)
		got := st.View().RouteTable().Status()[r.RouteKey()].Parents[0].Accepted
		if got.Status || got.Reason != tc.reason {
			t.Errorf("%s: %+v, want reason %s", tc.hr.Name, got, tc.reason)
		}
	}
}

func TestGRPCRouteMatches(t *testing.T) {
	gr := &gatewayv1.GRPCRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "g"}, Spec: gatewayv1.GRPCRouteSpec{
		Rules: []gatewayv1.GRPCRouteRule{{Matches: []gatewayv1.GRPCRouteMatch{
			{Method: &gatewayv1.GRPCMethodMatch{Service: ptr.To("pkg.Svc"), Method: ptr.To("Get")}},
			{Method: &gatewayv1.GRPCMethodMatch{Service: ptr.To("pkg.Svc")}},
			{Method: &gatewayv1.GRPCMethodMatch{Method: ptr.To("Get")}},
		}}},
	}}
	r := model.RouteFromGRPCRoute(gr)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	var got []string
	for _, m := range r.Rules[0].Matches {
		got = append(got, string(m.Path.Type)+" "+m.Path.Value)
	}
	want := "Exact /pkg.Svc/Get|PathPrefix /pkg.Svc|RegularExpression /[^/]+/Get"
	if strings.Join(got, "|") != want {
		t.Errorf("got %v", got)
	}
}

func TestTrafficPolicyConflicts(t *testing.T) {
	reviews := mt.Service("shop", "reviews", "10.96.0.20", "reviews", mt.Port("http", 9080, 9080))
	mk := func(name string, created time.Time, targets ...string) *model.TrafficPolicy {
		tp := &v1alpha1.TrafficPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, CreationTimestamp: metav1.NewTime(created)},
			Spec: v1alpha1.TrafficPolicySpec{Fault: &v1alpha1.FaultInjection{Abort: &v1alpha1.FaultAbort{HTTPStatus: 503, Percentage: ptr.To(v1alpha1.Percent("12.5"))}}}}
		for _, n := range targets {
			tp.Spec.TargetRefs = append(tp.Spec.TargetRefs, v1alpha1.PolicyTargetReference{Kind: "Service", Name: n})
		}
		p, err := model.TrafficPolicyFromK8s(tp)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	old, newer := mk("old", mt.Epoch, "reviews"), mk("newer", mt.Epoch.Add(time.Second), "reviews", "gone")
	if old.Fault.AbortPercent != 12.5 {
		t.Errorf("percent = %v", old.Fault.AbortPercent)
	}
	tab := model.ResolveTrafficPolicies(map[model.Key]*model.Service{reviews.Key(): reviews}, []*model.TrafficPolicy{newer, old})
	if tab.For(reviews.Key()) != old {
		t.Error("the oldest policy must win")
	}
	st := tab.Status()[newer.Key()]
	if st.Accepted.Status || st.Accepted.Reason != model.ReasonConflicted || st.ResolvedRefs.Status || st.ResolvedRefs.Reason != model.ReasonTargetNotFound {
		t.Errorf("newer policy status: %+v %+v", st.Accepted, st.ResolvedRefs)
	}
	if !tab.Status()[old.Key()].Accepted.Status {
		t.Error("old policy not accepted")
	}
}
