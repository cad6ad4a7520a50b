//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/weftmesh/weft/api/annotation"
	"github.com/weftmesh/weft/tests/samples"
)

// bookinfoApps creates a meshed namespace with Bookinfo and one curl
// client, waits until every app is Ready and returns the namespace and the
// curl pod.
func bookinfoApps(t *testing.T, prefix string, extra ...[]byte) (string, corev1.Pod) {
	t.Helper()
	ctx := context.Background()
	ns := newNamespace(t, prefix, map[string]string{annotation.InjectionLabel: "enabled"})
	docs := append([][]byte{samples.Bookinfo, []byte(strings.ReplaceAll(string(samples.Curl), "replicas: 3", "replicas: 1"))}, extra...)
	for _, m := range docs {
		require.NoError(t, cluster.ApplyIn(ctx, ns, m))
	}
	for sel, n := range map[string]int{"app=productpage": 1, "app=details": 1, "app=ratings": 1, "app=reviews": 3} {
		_, err := cluster.WaitPodsReady(ctx, ns, sel, n, 3*time.Minute)
		require.NoError(t, err, sel)
	}
	curl, err := cluster.WaitPodsReady(ctx, ns, "app=curl", 1, 2*time.Minute)
	require.NoError(t, err)
	return ns, curl[0]
}

// send runs `curl -n n -c c` in the curl pod with extra flags (-H ...).
func send(ctx context.Context, pod corev1.Pod, n, c int, url string, extra ...string) (stats, error) {
	return curlLoad(ctx, pod, "curl", n, c, "10s", url, extra...)
}

// fetch runs one request in the curl pod and returns the body.
func fetch(ctx context.Context, pod corev1.Pod, url string, extra ...string) (string, error) {
	args := append([]string{"curl", "-timeout", "10s"}, extra...)
	out, _, err := cluster.Exec(ctx, pod.Namespace, pod.Name, "curl", append(args, url)...)
	return out, err
}

// versions folds a summary's servedBy (pod names reviews-v1-…) into counts
// per reviews version.
func versions(s stats) map[string]int {
	out := map[string]int{}
	for pod, n := range s.ServedBy {
		v := "other"
		for _, ver := range []string{"v1", "v2", "v3"} {
			if strings.HasPrefix(pod, "reviews-"+ver+"-") {
				v = ver
			}
		}
		out[v] += n
	}
	return out
}

// waitFor retries check (bounded) until it passes: config reaches the
// sidecars asynchronously, so every scenario waits for its config to take
// effect before it measures.
func waitFor(t *testing.T, what string, timeout time.Duration, check func() error) {
	t.Helper()
	took, err := eventually(timeout, check)
	require.NoError(t, err, "%s (waited %v)", what, took.Round(time.Second))
	t.Logf("%s after %v", what, took.Round(100*time.Millisecond))
}

func apply(t *testing.T, ns, yaml string) {
	t.Helper()
	require.NoError(t, cluster.ApplyIn(context.Background(), ns, []byte(yaml)))
}

func remove(t *testing.T, ns, yaml string) {
	t.Helper()
	objs := strings.ReplaceAll(yaml, "metadata: {name:", "metadata: {namespace: "+ns+", name:")
	require.NoError(t, cluster.Delete(context.Background(), []byte(objs)))
}

// reviewsRoute is an HTTPRoute attached to the reviews Service (GAMMA).
func reviewsRoute(name, rules string) string {
	return fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: %s}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
%s`, name, rules)
}

const reviewsURL = "http://reviews:9080/reviews/0"

// allTo waits until n requests all land on one reviews version.
func allTo(t *testing.T, curl corev1.Pod, version string, extra ...string) {
	t.Helper()
	ctx := context.Background()
	var last map[string]int
	waitFor(t, "all requests on reviews "+version, 90*time.Second, func() error {
		s, err := send(ctx, curl, 30, 4, reviewsURL, extra...)
		if err != nil {
			return err
		}
		last = versions(s)
		if last[version] != 30 || s.Codes["200"] != 30 {
			return fmt.Errorf("versions %v codes %v", last, s.Codes)
		}
		return nil
	})
}

// routeConditions returns pilot's Accepted and ResolvedRefs conditions on
// an HTTPRoute's first parent.
func routeConditions(ctx context.Context, ns, name string) (map[string]metav1.Condition, error) {
	dyn, err := dynamic.NewForConfig(cluster.Config)
	if err != nil {
		return nil, err
	}
	gvr := schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}
	u, err := dyn.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	var st struct {
		Parents []struct {
			ControllerName string             `json:"controllerName"`
			Conditions     []metav1.Condition `json:"conditions"`
		} `json:"parents"`
	}
	raw, err := json.Marshal(u.Object["status"])
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, err
	}
	out := map[string]metav1.Condition{}
	for _, p := range st.Parents {
		if p.ControllerName == "weft.dev/pilot" {
			for _, c := range p.Conditions {
				out[c.Type] = c
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no status from weft.dev/pilot yet")
	}
	return out, nil
}

// waitCondition waits until the route's condition has the given status
// and its message contains want.
func waitCondition(t *testing.T, ns, route, typ string, status metav1.ConditionStatus, want string) metav1.Condition {
	t.Helper()
	var got metav1.Condition
	waitFor(t, fmt.Sprintf("%s %s=%s", route, typ, status), time.Minute, func() error {
		cs, err := routeConditions(context.Background(), ns, route)
		if err != nil {
			return err
		}
		got = cs[typ]
		if got.Status != status || !strings.Contains(got.Message, want) {
			return fmt.Errorf("%s is %s (%s: %s)", typ, got.Status, got.Reason, got.Message)
		}
		return nil
	})
	t.Logf("%s %s=%s reason %s: %s", route, typ, got.Status, got.Reason, got.Message)
	return got
}

// TestTrafficRouting follows Istio's request-routing and traffic-shifting
// tasks on Bookinfo with GAMMA HTTPRoutes attached to the reviews Service.
func TestTrafficRouting(t *testing.T) {
	requireMesh(t)
	ctx := context.Background()
	ns, curl := bookinfoApps(t, "e2e-routes")

	t.Run("without routes reviews is balanced over v1, v2, v3", func(t *testing.T) {
		s, err := send(ctx, curl, 60, 4, reviewsURL)
		require.NoError(t, err)
		t.Logf("no route: %v codes %v", versions(s), s.Codes)
		assert.Len(t, versions(s), 3)
	})

	t.Run("all traffic to reviews v1", func(t *testing.T) {
		apply(t, ns, reviewsRoute("reviews", `  - backendRefs: [{name: reviews-v1, port: 9080}]
`))
		allTo(t, curl, "v1")
		s, err := send(ctx, curl, 200, 4, reviewsURL)
		require.NoError(t, err)
		t.Logf("all to v1: %v over %d requests, codes %v", versions(s), s.Requests, s.Codes)
		assert.Equal(t, 200, versions(s)["v1"])
		waitCondition(t, ns, "reviews", "Accepted", metav1.ConditionTrue, "")
		waitCondition(t, ns, "reviews", "ResolvedRefs", metav1.ConditionTrue, "")
	})

	t.Run("50/50 split between v1 and v3", func(t *testing.T) {
		apply(t, ns, reviewsRoute("reviews", `  - backendRefs:
    - {name: reviews-v1, port: 9080, weight: 50}
    - {name: reviews-v3, port: 9080, weight: 50}
`))
		waitFor(t, "v3 receives traffic", 90*time.Second, func() error {
			s, err := send(ctx, curl, 20, 4, reviewsURL)
			if err != nil {
				return err
			}
			if v := versions(s); v["v3"] == 0 || v["v2"] > 0 {
				return fmt.Errorf("versions %v", v)
			}
			return nil
		})
		s, err := send(ctx, curl, 400, 4, reviewsURL)
		require.NoError(t, err)
		v := versions(s)
		v1, v3 := float64(v["v1"])/float64(s.Requests), float64(v["v3"])/float64(s.Requests)
		t.Logf("50/50 split over %d requests: v1 %.1f%% v3 %.1f%% (v2 %d, codes %v)", s.Requests, 100*v1, 100*v3, v["v2"], s.Codes)
		assert.Equal(t, 400, s.Codes["200"])
		assert.Zero(t, v["v2"])
		assert.InDelta(t, 0.5, v1, 0.1, "v1 share")
		assert.InDelta(t, 0.5, v3, 0.1, "v3 share")
	})

	t.Run("end-user jason goes to v2, everyone else to v1", func(t *testing.T) {
		apply(t, ns, reviewsRoute("reviews", `  - matches: [{headers: [{name: end-user, value: jason}]}]
    backendRefs: [{name: reviews-v2, port: 9080}]
  - backendRefs: [{name: reviews-v1, port: 9080}]
`))
		allTo(t, curl, "v2", "-H", "end-user: jason")
		jason, err := send(ctx, curl, 100, 4, reviewsURL, "-H", "end-user: jason")
		require.NoError(t, err)
		others, err := send(ctx, curl, 100, 4, reviewsURL, "-H", "end-user: alice")
		require.NoError(t, err)
		t.Logf("header routing: jason %v, alice %v", versions(jason), versions(others))
		assert.Equal(t, 100, versions(jason)["v2"])
		assert.Equal(t, 100, versions(others)["v1"])
		// Through productpage, which forwards end-user: v2 shows black stars.
		waitFor(t, "productpage shows reviews v2 to jason", 30*time.Second, func() error {
			body, err := fetch(ctx, curl, productURL, "-H", "end-user: jason")
			if err != nil || !strings.Contains(body, `"version":"v2"`) {
				return fmt.Errorf("body %.300s: %v", body, err)
			}
			return nil
		})
	})

	t.Run("mirroring copies requests to v2 without affecting responses", func(t *testing.T) {
		apply(t, ns, reviewsRoute("reviews", `  - backendRefs: [{name: reviews-v1, port: 9080}]
    filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: reviews-v2, port: 9080}}
`))
		v2, err := cluster.WaitPodsReady(ctx, ns, "app=reviews,version=v2", 1, time.Minute)
		require.NoError(t, err)
		count := func() float64 {
			// The label's opening quote keeps out the traced inbound
			// listener's cluster (traced|inbound|9080||), which a sampled
			// request also passes.
			n, err := envoyStat(ctx, curl, v2[0].Status.PodIP, "upstream_rq_total", `envoy_cluster_name="inbound|9080||"`)
			require.NoError(t, err)
			return n
		}
		waitFor(t, "mirror reaches v2", 90*time.Second, func() error {
			before := count()
			s, err := send(ctx, curl, 10, 2, reviewsURL)
			if err != nil {
				return err
			}
			if versions(s)["v1"] != 10 || count() < before+10 {
				return fmt.Errorf("versions %v, v2 copies %v", versions(s), count()-before)
			}
			return nil
		})
		before := count()
		s, err := send(ctx, curl, 100, 4, reviewsURL)
		require.NoError(t, err)
		time.Sleep(time.Second) // mirrored requests complete asynchronously
		copies := count() - before
		t.Logf("mirroring: responses %v codes %v; v2 received %.0f copies of 100", versions(s), s.Codes, copies)
		assert.Equal(t, 100, versions(s)["v1"], "responses come from v1 only")
		assert.InDelta(t, 100, copies, 2, "v2 gets a copy of every request")
	})

	t.Run("bad input is reported in status and the last good config keeps serving", func(t *testing.T) {
		good := reviewsRoute("reviews", `  - backendRefs: [{name: reviews-v1, port: 9080}]
`)
		apply(t, ns, good)
		allTo(t, curl, "v1")

		apply(t, ns, reviewsRoute("reviews", `  - matches: [{path: {type: RegularExpression, value: "/reviews/(["}}]
    backendRefs: [{name: reviews-v3, port: 9080}]
`))
		waitCondition(t, ns, "reviews", "Accepted", metav1.ConditionFalse, "invalid regular expression")
		allTo(t, curl, "v1")

		apply(t, ns, reviewsRoute("reviews", `  - backendRefs: [{name: reviews-v2, port: 9080, weight: 0}, {name: reviews-v3, port: 9080, weight: 0}]
`))
		waitCondition(t, ns, "reviews", "Accepted", metav1.ConditionFalse, "weights sum to 0")
		allTo(t, curl, "v1")

		apply(t, ns, good)
		waitCondition(t, ns, "reviews", "Accepted", metav1.ConditionTrue, "")
		apply(t, ns, reviewsRoute("reviews-missing", `  - matches: [{path: {type: PathPrefix, value: /missing}}]
    backendRefs: [{name: no-such-service, port: 9080}]
`))
		waitCondition(t, ns, "reviews-missing", "ResolvedRefs", metav1.ConditionFalse, "not found")
		// The status is written when pilot translates the route, before
		// curl's sidecar has the config: until then /missing reaches
		// reviews, which answers 404.
		waitFor(t, "the missing backend's route in force", 30*time.Second, func() error {
			s, err := send(ctx, curl, 1, 1, "http://reviews:9080/missing")
			if err == nil && s.Codes["500"] != 1 {
				err = fmt.Errorf("codes %v", s.Codes)
			}
			return err
		})
		s, err := send(ctx, curl, 5, 1, "http://reviews:9080/missing")
		require.NoError(t, err)
		t.Logf("missing backend: codes %v", s.Codes)
		assert.Equal(t, 5, s.Codes["500"], "a missing backend's share fails with 500 (Gateway API)")
		allTo(t, curl, "v1")

		apply(t, ns, `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: orphan}
spec:
  parentRefs: [{group: "", kind: Service, name: no-such-parent}]
  rules: [{backendRefs: [{name: reviews-v1, port: 9080}]}]
`)
		waitCondition(t, ns, "orphan", "Accepted", metav1.ConditionFalse, "not found")

		time.Sleep(time.Second) // a strictly newer creationTimestamp
		apply(t, ns, reviewsRoute("reviews-conflict", `  - backendRefs: [{name: reviews-v3, port: 9080}]
`))
		waitCondition(t, ns, "reviews-conflict", "Accepted", metav1.ConditionTrue, "shadowed by older HTTPRoute "+ns+"/reviews")
		allTo(t, curl, "v1")
		for _, name := range []string{"reviews-conflict", "reviews-missing", "orphan"} {
			remove(t, ns, fmt.Sprintf("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: %s}\n", name))
		}
	})

	t.Run("deleting the route restores the default route", func(t *testing.T) {
		remove(t, ns, "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: reviews}\n")
		waitFor(t, "all versions served again", 90*time.Second, func() error {
			s, err := send(ctx, curl, 60, 4, reviewsURL)
			if err != nil {
				return err
			}
			if len(versions(s)) != 3 {
				return fmt.Errorf("versions %v", versions(s))
			}
			return nil
		})
	})
}

// trafficPolicy is a TrafficPolicy for one Service of the namespace.
func trafficPolicy(target, spec string) string {
	return fmt.Sprintf("apiVersion: mesh.weft.dev/v1alpha1\nkind: TrafficPolicy\nmetadata: {name: %s}\nspec:\n  targetRefs: [{group: \"\", kind: Service, name: %s}]\n%s",
		target, target, spec)
}

const productURL = "http://productpage:9080/api/v1/products/0"

// TestTrafficPolicies follows Istio's fault injection, request timeout,
// retry and circuit breaking tasks with Weft's TrafficPolicy.
func TestTrafficPolicies(t *testing.T) {
	requireMesh(t)
	ctx := context.Background()
	ns, curl := bookinfoApps(t, "e2e-resilience", samples.HTTPBin)
	jason, alice := []string{"-H", "end-user: jason"}, []string{"-H", "end-user: alice"}
	apply(t, ns, reviewsRoute("reviews", "  - backendRefs: [{name: reviews-v2, port: 9080}]\n"))
	allTo(t, curl, "v2")

	t.Run("a 2s delay for jason on ratings, then a 1s reviews timeout", func(t *testing.T) {
		apply(t, ns, trafficPolicy("ratings", "  fault:\n    delay: {fixedDelay: 2s}\n    headers: [{name: end-user, value: jason}]\n"))
		waitFor(t, "jason's requests are delayed", 90*time.Second, func() error {
			s, err := send(ctx, curl, 2, 1, productURL, jason...)
			if err != nil || s.P50ms < 1900 {
				return fmt.Errorf("p50 %vms: %v", s.P50ms, err)
			}
			return nil
		})
		j, err := send(ctx, curl, 5, 5, productURL, jason...)
		require.NoError(t, err)
		a, err := send(ctx, curl, 5, 5, productURL, alice...)
		require.NoError(t, err)
		t.Logf("delay fault: jason p50 %.0fms codes %v; alice p50 %.0fms codes %v", j.P50ms, j.Codes, a.P50ms, a.Codes)
		assert.GreaterOrEqual(t, j.P50ms, 1900.0)
		assert.Less(t, a.P50ms, 1000.0)
		body, err := fetch(ctx, curl, productURL, jason...)
		require.NoError(t, err)
		assert.NotContains(t, body, "reviewsError", "2s is within productpage's 3s reviews timeout")

		apply(t, ns, reviewsRoute("reviews", "  - backendRefs: [{name: reviews-v2, port: 9080}]\n    timeouts: {request: 1s}\n"))
		var out string
		waitFor(t, "productpage reports reviews unavailable for jason", 90*time.Second, func() error {
			out, err = fetch(ctx, curl, productURL, jason...)
			if err != nil || !strings.Contains(out, "reviewsError") {
				return fmt.Errorf("body %.200s: %v", out, err)
			}
			return nil
		})
		j, err = send(ctx, curl, 5, 5, productURL, jason...)
		require.NoError(t, err)
		body, err = fetch(ctx, curl, productURL, alice...)
		require.NoError(t, err)
		t.Logf("with a 1s reviews timeout: jason p50 %.0fms (productpage answers with reviewsError); alice unaffected", j.P50ms)
		assert.Less(t, j.P50ms, 1900.0)
		assert.NotContains(t, body, "reviewsError")
		apply(t, ns, reviewsRoute("reviews", "  - backendRefs: [{name: reviews-v2, port: 9080}]\n"))
	})

	t.Run("an abort fault returns the configured status", func(t *testing.T) {
		apply(t, ns, trafficPolicy("ratings", "  fault:\n    abort: {httpStatus: 418}\n    headers: [{name: end-user, value: jason}]\n"))
		var j stats
		waitFor(t, "jason's ratings requests are aborted", 90*time.Second, func() error {
			var err error
			if j, err = send(ctx, curl, 50, 4, "http://ratings:9080/ratings/0", jason...); err != nil || j.Codes["418"] != 50 {
				return fmt.Errorf("codes %v: %v", j.Codes, err)
			}
			return nil
		})
		a, err := send(ctx, curl, 50, 4, "http://ratings:9080/ratings/0", alice...)
		require.NoError(t, err)
		t.Logf("abort fault: jason codes %v, alice codes %v", j.Codes, a.Codes)
		assert.Equal(t, 50, a.Codes["200"])
		body, err := fetch(ctx, curl, productURL, jason...)
		require.NoError(t, err)
		assert.Contains(t, body, "ratingsError", "reviews v2 shows ratings unavailable")
	})

	t.Run("retries recover from 503s of a broken replica", func(t *testing.T) {
		apply(t, ns, trafficPolicy("ratings", "  loadBalancer: {algorithm: RoundRobin}\n"))
		broken := deployment("ratings-broken", 1, podSpec(curlContainer()))
		broken.Spec.Template.Labels = map[string]string{"app": "ratings", "version": "broken"}
		broken.Spec.Selector.MatchLabels = broken.Spec.Template.Labels
		broken.Spec.Template.Spec.ServiceAccountName = "bookinfo-ratings"
		createAll(t, ns, broken)
		var before stats
		waitFor(t, "the broken replica takes requests", 2*time.Minute, func() error {
			var err error
			if before, err = send(ctx, curl, 100, 4, "http://ratings:9080/ratings/0"); err != nil || before.Codes["503"] < 25 {
				return fmt.Errorf("codes %v: %v", before.Codes, err)
			}
			return nil
		})
		apply(t, ns, trafficPolicy("ratings", "  loadBalancer: {algorithm: RoundRobin}\n  retry: {attempts: 3, retryOn: [5xx]}\n"))
		var after stats
		waitFor(t, "retries hide the broken replica", 90*time.Second, func() error {
			var err error
			if after, err = send(ctx, curl, 200, 4, "http://ratings:9080/ratings/0"); err != nil || after.Codes["200"] != 200 {
				return fmt.Errorf("codes %v: %v", after.Codes, err)
			}
			return nil
		})
		t.Logf("retries: without %v (%.0f%% ok), with attempts 3 on 5xx %v (%.0f%% ok)", before.Codes,
			100*float64(before.Codes["200"])/float64(before.Requests), after.Codes, 100*float64(after.Codes["200"])/float64(after.Requests))
		require.NoError(t, clients(t).AppsV1().Deployments(ns).Delete(ctx, "ratings-broken", metav1.DeleteOptions{}))
	})

	t.Run("circuit breaking trips under concurrent load", func(t *testing.T) {
		url := "http://httpbin:8000/delay/0.5"
		base, err := send(ctx, curl, 20, 10, url)
		require.NoError(t, err)
		apply(t, ns, trafficPolicy("httpbin", "  connectionPool: {maxConnections: 1, maxPendingRequests: 1, maxRequests: 1}\n"))
		var s stats
		waitFor(t, "the circuit breaker trips", 90*time.Second, func() error {
			if s, err = send(ctx, curl, 40, 10, url); err != nil || s.Codes["503"] == 0 {
				return fmt.Errorf("codes %v: %v", s.Codes, err)
			}
			return nil
		})
		overflow, err := envoyStat(ctx, curl, "127.0.0.1", "upstream_rq_pending_overflow", "outbound|8000||httpbin")
		require.NoError(t, err)
		t.Logf("circuit breaking: without policy %v; maxConnections=1 maxPendingRequests=1, 40 requests at concurrency 10: %v, pending overflows %.0f",
			base.Codes, s.Codes, overflow)
		assert.Equal(t, 20, base.Codes["200"])
		assert.Positive(t, s.Codes["200"], "some requests still pass")
		assert.Positive(t, overflow)
	})
}
