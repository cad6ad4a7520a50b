//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// authzPolicy is an AuthorizationPolicy of the namespace.
func authzPolicy(name, spec string) string {
	return fmt.Sprintf("apiVersion: mesh.weft.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: %s}\nspec:\n%s", name, spec)
}

// allowFrom admits one service account of the namespace to an app.
func allowFrom(ns, app, sa string) string {
	return authzPolicy(app+"-from-"+sa, fmt.Sprintf(
		"  selector: {matchLabels: {app: %s}}\n  action: ALLOW\n  rules: [{from: [{principals: [cluster.local/ns/%s/sa/%s]}]}]\n", app, ns, sa))
}

// codeCounts sends n requests and returns the status code counts.
func codeCounts(t *testing.T, curl corev1.Pod, n int, url string) map[string]int {
	t.Helper()
	s, err := send(context.Background(), curl, n, 2, url)
	require.NoError(t, err)
	return s.Codes
}

// expectCodes waits until n requests to url all answer with code.
func expectCodes(t *testing.T, curl corev1.Pod, url, code string) {
	t.Helper()
	start, dumped := time.Now(), false
	waitFor(t, url+" answers "+code, 90*time.Second, func() error {
		c := codeCounts(t, curl, 10, url)
		if c[code] == 10 {
			return nil
		}
		if !dumped && time.Since(start) > 15*time.Second {
			// Config normally lands in about a second; say where it is stuck.
			dumped = true
			logConfigState(t, curl.Namespace)
		}
		return fmt.Errorf("codes %v", c)
	})
}

// logConfigState logs the xDS state of a namespace's proxies and the tail of
// pilot's log, for a wait on config that takes far longer than usual.
func logConfigState(t *testing.T, ns string) {
	t.Helper()
	meshctl(t, 30*time.Second, "proxy-status", "-n", ns)
	ctx := context.Background()
	pods, err := cluster.Client.CoreV1().Pods("weft-system").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=weft-pilot"})
	if err != nil {
		t.Logf("list pilots: %v", err)
		return
	}
	tail := int64(40)
	for _, p := range pods.Items {
		logs, err := cluster.Client.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: "pilot", TailLines: &tail}).DoRaw(ctx)
		t.Logf("pilot %s, last %d log lines (err %v):\n%s", p.Name, tail, err, logs)
	}
}

// hasError reports whether a productpage answer says a call failed.
func hasError(body string) bool {
	for _, k := range []string{"detailsError", "reviewsError", "ratingsError"} {
		if strings.Contains(body, `"`+k+`"`) {
			return true
		}
	}
	return false
}

// TestAuthorizationPolicy follows Istio's HTTP traffic authorization task
// on Bookinfo: AUDIT first (counted and logged, never denied), then deny
// all, then allow productpage → details and reviews, and ratings only from
// reviews.
func TestAuthorizationPolicy(t *testing.T) {
	requireMesh(t)
	ctx := context.Background()
	ns, curl := bookinfoApps(t, "e2e-authz")
	details := "http://details:9080/details/0"

	t.Run("AUDIT counts and logs what it would deny without denying", func(t *testing.T) {
		apply(t, ns, authzPolicy("audit-details", "  selector: {matchLabels: {app: details}}\n  action: AUDIT\n"+
			"  rules: [{from: [{principals: [cluster.local/ns/"+ns+"/sa/curl]}], to: [{methods: [GET], paths: [/details/*]}]}]\n"))
		pods, err := cluster.WaitPodsReady(ctx, ns, "app=details", 1, time.Minute)
		require.NoError(t, err)
		audited := func() float64 {
			n, err := envoyStat(ctx, curl, pods[0].Status.PodIP, "rbac_shadow_denied", `envoy_rbac_http_prefix="audit_"`)
			require.NoError(t, err)
			return n
		}
		waitFor(t, "AUDIT policy in force", 90*time.Second, func() error {
			before := audited()
			if c := codeCounts(t, curl, 5, details); c["200"] != 5 {
				return fmt.Errorf("codes %v", c)
			}
			if audited() < before+5 {
				return fmt.Errorf("audited %v of 5", audited()-before)
			}
			return nil
		})
		// Connections pooled on details' old chain would pass unaudited.
		waitDrained(t, curl, ns)
		before := audited()
		c := codeCounts(t, curl, 50, details)
		n := audited() - before
		lines := 0
		waitFor(t, "audit log lines flushed", 30*time.Second, func() error {
			logs, err := clients(t).CoreV1().Pods(ns).GetLogs(pods[0].Name, &corev1.PodLogOptions{Container: sidecarName}).DoRaw(ctx)
			if err != nil {
				return err
			}
			if lines = strings.Count(string(logs), "weft-audit would deny: GET /details/0"); lines < 55 {
				return fmt.Errorf("%d weft-audit lines", lines)
			}
			return nil
		})
		t.Logf("AUDIT: 50 requests answered %v; audit shadow_denied +%.0f; %d weft-audit log lines in total", c, n, lines)
		assert.Equal(t, 50, c["200"], "AUDIT never denies")
		assert.Equal(t, 50.0, n)
		remove(t, ns, authzPolicy("audit-details", ""))
	})

	t.Run("deny all", func(t *testing.T) {
		apply(t, ns, authzPolicy("allow-nothing", "  {}\n"))
		for _, url := range []string{productURL, details, reviewsURL, "http://ratings:9080/ratings/0"} {
			expectCodes(t, curl, url, "403")
		}
	})

	t.Run("allow productpage → details and reviews, ratings only from reviews", func(t *testing.T) {
		apply(t, ns, allowFrom(ns, "productpage", "curl"))
		apply(t, ns, allowFrom(ns, "details", "bookinfo-productpage"))
		apply(t, ns, allowFrom(ns, "reviews", "bookinfo-productpage"))
		apply(t, ns, allowFrom(ns, "ratings", "bookinfo-reviews"))
		var body string
		// Four policies reach four workloads' sidecars one push at a time:
		// wait until the whole set is in force (ten good answers in a row)
		// before counting.
		waitFor(t, "productpage shows details, reviews and ratings", 90*time.Second, func() error {
			for i := 0; i < 10; i++ {
				var err error
				body, err = fetch(ctx, curl, productURL, "-H", "end-user: jason")
				if err != nil || hasError(body) || !strings.Contains(body, `"details"`) {
					return fmt.Errorf("answer %d: body %.300s: %v", i, body, err)
				}
			}
			return nil
		})
		// Connections pooled on an old chain keep its policies until it
		// has drained; count only after that.
		waitDrained(t, curl, ns)
		pp := codeCounts(t, curl, 40, productURL)
		t.Logf("curl → productpage: %v", pp)
		assert.Equal(t, 40, pp["200"])
		// Every reviews version answers without a ratings error: v2 and v3
		// reach ratings (they run as bookinfo-reviews).
		waitFor(t, "20 answers in a row without errors", time.Minute, func() error {
			for i := 0; i < 20; i++ {
				body, err := fetch(ctx, curl, productURL)
				if err != nil || hasError(body) {
					return fmt.Errorf("answer %d: %.600s: %v", i, body, err)
				}
			}
			return nil
		})
		for _, url := range []string{details, reviewsURL, "http://ratings:9080/ratings/0"} {
			c := codeCounts(t, curl, 20, url)
			t.Logf("curl → %s: %v", url, c)
			assert.Equal(t, 20, c["403"], "%s must refuse curl", url)
		}
	})
}
