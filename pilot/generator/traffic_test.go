package generator_test

import (
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/weftmesh/weft/pilot/model"
	mt "github.com/weftmesh/weft/pilot/model/modeltest"
)

func ptr[T any](v T) *T { return &v }

// bookinfo is the reviews part of Istio's Bookinfo: a reviews Service over
// all versions and one Service per version, as traffic splitting needs.
func bookinfo() ([]*model.Service, []*model.EndpointSlice, []*model.Pod) {
	port := mt.Port("http", 9080, 9080)
	var svcs []*model.Service
	var slices []*model.EndpointSlice
	pods := []*model.Pod{productpage}
	all := mt.Service(ns, "reviews", "10.96.0.20", "reviews", port)
	var versions []*model.Pod
	for i, v := range []string{"v1", "v2", "v3"} {
		p := mt.Pod(ns, "reviews-"+v, "reviews", "10.0.2."+string(rune('1'+i))+"0", "reviews", true)
		p.Labels["version"] = v
		s := mt.Service(ns, "reviews-"+v, "10.96.0.2"+string(rune('1'+i)), "reviews", port)
		s.Selector = map[string]string{"app": "reviews", "version": v}
		svcs = append(svcs, s)
		slices = append(slices, mt.Slice(s, p))
		versions = append(versions, p)
	}
	pods = append(pods, versions...)
	svcs = append(svcs, all, mt.Service(ns, "productpage", "10.96.0.10", "productpage", port))
	slices = append(slices, mt.Slice(all, versions...))
	return svcs, slices, pods
}

func parent(name string) model.ParentRef {
	return model.ParentRef{Kind: "Service", Namespace: ns, Name: name}
}

func backend(name string, weight int32) model.BackendRef {
	return model.BackendRef{Kind: "Service", Namespace: ns, Name: name, Port: 9080, Weight: weight}
}

func route(name string, created time.Time, rules ...model.RouteRule) *model.Route {
	return &model.Route{Kind: model.KindHTTPRoute, Namespace: ns, Name: name, Generation: 1, Created: created,
		Parents: []model.ParentRef{parent("reviews")}, Rules: rules}
}

func trafficScenarios() map[string]world {
	svcs, slices, pods := bookinfo()
	d := func(s string) *time.Duration { v, _ := time.ParseDuration(s); return &v }
	split := route("reviews-split", mt.Epoch,
		model.RouteRule{
			Matches:  []model.RouteMatch{{Headers: []model.NameMatch{{Name: "end-user", Type: model.MatchExact, Value: "jason"}}}},
			Backends: []model.BackendRef{backend("reviews-v2", 1)},
		},
		model.RouteRule{
			Matches:  []model.RouteMatch{{Path: &model.StringMatch{Type: model.MatchPrefix, Value: "/"}}},
			Backends: []model.BackendRef{backend("reviews-v1", 50), backend("reviews-v3", 50), backend("reviews-v2", 0)},
			Timeout:  d("3s"), BackendTimeout: d("1s"),
			Retry: &model.RetryPolicy{Attempts: 3, Codes: []int32{500, 503}, Backoff: d("50ms")},
		})
	// A newer route with the same header match is shadowed; its other rule
	// applies.
	conflicting := route("reviews-newer", mt.Epoch.Add(time.Hour),
		model.RouteRule{
			Matches:  []model.RouteMatch{{Headers: []model.NameMatch{{Name: "end-user", Type: model.MatchExact, Value: "jason"}}}},
			Backends: []model.BackendRef{backend("reviews-v3", 1)},
		},
		model.RouteRule{
			Matches:  []model.RouteMatch{{Path: &model.StringMatch{Type: model.MatchExact, Value: "/health"}, Method: "GET"}},
			Backends: []model.BackendRef{backend("reviews-v1", 1), backend("missing", 1)},
		})
	filters := route("reviews-filters", mt.Epoch,
		model.RouteRule{
			Matches: []model.RouteMatch{{Path: &model.StringMatch{Type: model.MatchRegex, Value: "^/reviews/[0-9]+$"},
				Query: []model.NameMatch{{Name: "debug", Type: model.MatchExact, Value: "1"}}}},
			Backends:        []model.BackendRef{backend("reviews-v1", 1)},
			RequestHeaders:  &model.HeaderModifier{Set: []model.Header{{Name: "x-set", Value: "a"}}, Add: []model.Header{{Name: "x-add", Value: "b"}}, Remove: []string{"x-drop"}},
			ResponseHeaders: &model.HeaderModifier{Set: []model.Header{{Name: "x-served-through", Value: "weft"}}},
			Mirrors:         []model.Mirror{{Backend: backend("reviews-v2", 0), Percent: 100}, {Backend: backend("reviews-v3", 0), Percent: 12.5}},
		},
		model.RouteRule{
			Matches:  []model.RouteMatch{{Path: &model.StringMatch{Type: model.MatchPrefix, Value: "/v1/"}}},
			Backends: []model.BackendRef{backend("reviews-v1", 1)},
			Rewrite:  &model.Rewrite{Hostname: ptr("reviews.internal"), Path: &model.PathModifier{Type: model.ReplacePrefixMatch, Value: "/"}},
		},
		model.RouteRule{
			Matches:  []model.RouteMatch{{Path: &model.StringMatch{Type: model.MatchPrefix, Value: "/legacy"}}},
			Backends: []model.BackendRef{backend("reviews-v1", 1)},
			Rewrite:  &model.Rewrite{Path: &model.PathModifier{Type: model.ReplaceFullPath, Value: "/index.html"}},
		},
		model.RouteRule{
			Matches:  []model.RouteMatch{{Path: &model.StringMatch{Type: model.MatchPrefix, Value: "/old"}}},
			Redirect: &model.Redirect{Scheme: ptr("https"), Hostname: ptr("example.com"), Port: ptr[int32](8443), StatusCode: 301, Path: &model.PathModifier{Type: model.ReplacePrefixMatch, Value: "/new"}},
		},
		model.RouteRule{
			Matches: []model.RouteMatch{{Path: &model.StringMatch{Type: model.MatchExact, Value: "/broken"}}},
		},
		model.RouteRule{
			Matches:  []model.RouteMatch{{Path: &model.StringMatch{Type: model.MatchPrefix, Value: "/other-ns"}}},
			Backends: []model.BackendRef{{Kind: "Service", Namespace: "elsewhere", Name: "x", Port: 80, Weight: 1}},
		})
	grpc := &model.Route{Kind: model.KindGRPCRoute, Namespace: ns, Name: "ratings-grpc", Generation: 1, Created: mt.Epoch,
		Parents: []model.ParentRef{{Kind: "Service", Namespace: ns, Name: "reviews", Port: 9080}},
		Rules: []model.RouteRule{{
			Matches:  []model.RouteMatch{{Path: &model.StringMatch{Type: model.MatchExact, Value: "/bookinfo.Ratings/Get"}}},
			Backends: []model.BackendRef{backend("reviews-v3", 1)},
		}}}
	policy := &model.TrafficPolicy{Namespace: ns, Name: "reviews", Generation: 1, Created: mt.Epoch,
		Targets: []string{"reviews", "reviews-v1"}, LoadBalancer: "RoundRobin",
		Pool:    &model.ConnectionPool{MaxConnections: ptr[uint32](1), MaxPendingRequests: ptr[uint32](1), MaxRequests: ptr[uint32](10), MaxRetries: ptr[uint32](3), MaxRequestsPerConnection: ptr[uint32](1)},
		Outlier: &model.OutlierDetection{Consecutive5xx: ptr[uint32](5), Interval: d("5s"), BaseEjectionTime: d("30s"), MaxEjectionPercent: ptr[uint32](50)},
		Retry:   &model.RetryPolicy{Attempts: 3, On: []string{"5xx", "reset"}, PerTryTimeout: d("2s")},
		Fault: &model.Fault{Delay: d("2s"), DelayPercent: 100, AbortStatus: 503, AbortPercent: 0.5,
			Headers: []model.Header{{Name: "end-user", Value: "jason"}}}}

	ratings := mt.Pod(ns, "ratings-1", "ratings", "10.0.7.10", "ratings", true)
	ratingsSvc := mt.Service(ns, "ratings", "10.96.0.70", "ratings", mt.Port("http", 9080, 9080), mt.Port("tcp-db", 5432, 5432))
	authz := []*model.AuthzPolicy{
		{Namespace: ns, Name: "allow-nothing", Action: model.AuthzAllow, Created: mt.Epoch},
		{Namespace: ns, Name: "ratings-from-reviews", Action: model.AuthzAllow, Created: mt.Epoch,
			Selector: labels.SelectorFromSet(labels.Set{"app": "ratings"}),
			Rules: []model.AuthzRule{{
				From: []model.AuthzSource{{Principals: []string{"cluster.local/ns/shop/sa/reviews", "spiffe://cluster.local/ns/shop/sa/bookinfo-*"}}},
				To:   []model.AuthzOperation{{Methods: []string{"GET"}, Paths: []string{"/ratings/*", "/health"}}},
			}, {
				From: []model.AuthzSource{{Namespaces: []string{"monitoring"}}},
				To:   []model.AuthzOperation{{Ports: []int32{5432}}},
			}}},
		{Namespace: ns, Name: "deny-plaintext", Action: model.AuthzDeny, Created: mt.Epoch,
			Rules: []model.AuthzRule{{From: []model.AuthzSource{{NotPrincipals: []string{"*"}}}}}},
		{Namespace: "weft-system", Name: "mesh-audit-delete", Action: model.AuthzAudit, Created: mt.Epoch,
			Rules: []model.AuthzRule{{
				From: []model.AuthzSource{{NotNamespaces: []string{"shop"}}},
				To:   []model.AuthzOperation{{Methods: []string{"DELETE"}}},
			}}},
		{Namespace: "other", Name: "not-selected", Action: model.AuthzDeny, Created: mt.Epoch},
	}
	return map[string]world{
		"route-split": {services: svcs, slices: slices, pods: pods, proxy: productpage,
			objects: model.Objects{Routes: []*model.Route{split, conflicting}}},
		"route-filters": {services: svcs, slices: slices, pods: pods, proxy: productpage,
			objects: model.Objects{Routes: []*model.Route{filters, grpc}}},
		"traffic-policy": {services: svcs, slices: slices, pods: pods, proxy: productpage,
			objects: model.Objects{Traffic: []*model.TrafficPolicy{policy}}},
		"traffic-policy-with-route": {services: svcs, slices: slices, pods: pods, proxy: productpage,
			objects: model.Objects{Routes: []*model.Route{split}, Traffic: []*model.TrafficPolicy{policy}}},
		"authz": {services: []*model.Service{ratingsSvc}, slices: []*model.EndpointSlice{mt.Slice(ratingsSvc, ratings)},
			pods: []*model.Pod{ratings}, proxy: ratings, objects: model.Objects{Authz: authz},
			policies: []*model.TLSPolicy{mt.Policy(ns, "ratings", map[string]string{"app": "ratings"}, model.MTLSUnset, map[int32]model.MTLSMode{5432: model.MTLSStrict})}},
	}
}
