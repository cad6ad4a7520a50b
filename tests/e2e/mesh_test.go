//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/api/annotation"
	"github.com/weftmesh/weft/tests/samples"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// sidecarName is the injected native sidecar's container name.
const sidecarName = "weft-sidecar"

// requireMesh fails (not skips) when the mesh is not installed: the suite
// is run against a cluster with Weft installed (`make e2e` does it).
func requireMesh(t *testing.T) {
	t.Helper()
	_, err := clients(t).AppsV1().Deployments("weft-system").Get(context.Background(), "weft-pilot", metav1.GetOptions{})
	require.NoError(t, err, "the Weft mesh is not installed on this cluster (go run ./tests/cluster install, or meshctl install)")
}

// meshedApps creates a namespace (meshed or not) with httpbin and curl from
// the samples, one replica each, and returns it with the ready pods.
func meshedApps(t *testing.T, prefix string, meshed bool) (string, corev1.Pod, corev1.Pod) {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{}
	if meshed {
		labels[annotation.InjectionLabel] = "enabled"
	}
	ns := newNamespace(t, prefix, labels)
	for _, m := range [][]byte{samples.HTTPBin, samples.Curl} {
		objs := strings.ReplaceAll(string(m), "replicas: 3", "replicas: 1")
		require.NoError(t, cluster.ApplyIn(ctx, ns, []byte(objs)))
	}
	httpbin, err := cluster.WaitPodsReady(ctx, ns, "app=httpbin", 1, 2*time.Minute)
	require.NoError(t, err)
	curl, err := cluster.WaitPodsReady(ctx, ns, "app=curl", 1, 2*time.Minute)
	require.NoError(t, err)
	return ns, httpbin[0], curl[0]
}

// assertSidecarFirst checks the native-sidecar ordering the kubelet
// enforces: the sidecar has a startup probe (the kubelet starts the app
// containers only once it passed), it is started and ready, and no app
// container started before it (the status's times have one-second
// resolution, so "not before" is what can be checked).
func assertSidecarFirst(t *testing.T, ctx context.Context, p corev1.Pod) {
	t.Helper()
	for _, c := range p.Spec.InitContainers {
		if c.Name == sidecarName {
			assert.NotNil(t, c.StartupProbe, "%s: the sidecar has no startup probe to gate the app on", p.Name)
		}
	}
	pod, err := clients(t).CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
	require.NoError(t, err)
	var sidecarStarted time.Time
	for _, st := range pod.Status.InitContainerStatuses {
		if st.Name != sidecarName {
			continue
		}
		require.NotNil(t, st.State.Running, "%s: sidecar not running: %+v", p.Name, st.State)
		assert.True(t, st.Started != nil && *st.Started, "%s: sidecar not marked started", p.Name)
		assert.True(t, st.Ready, "%s: sidecar not ready", p.Name)
		sidecarStarted = st.State.Running.StartedAt.Time
	}
	require.False(t, sidecarStarted.IsZero(), "%s: no status for %s", p.Name, sidecarName)
	for _, st := range pod.Status.ContainerStatuses {
		require.NotNil(t, st.State.Running, "%s/%s not running", p.Name, st.Name)
		assert.False(t, st.State.Running.StartedAt.Time.Before(sidecarStarted),
			"%s: app container %s started at %v, before the sidecar (%v)", p.Name, st.Name, st.State.Running.StartedAt, sidecarStarted)
	}
}

func hasSidecar(p corev1.Pod) bool {
	for _, c := range p.Spec.InitContainers {
		if c.Name == sidecarName && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			return true
		}
	}
	return false
}

// headersSeenBy requests /headers from pod's curl and returns what httpbin saw.
func headersSeenBy(ctx context.Context, pod corev1.Pod, url string) (map[string][]string, error) {
	out, _, err := cluster.Exec(ctx, pod.Namespace, pod.Name, "curl", "curl", "-timeout", "5s", url)
	if err != nil {
		return nil, err
	}
	var r struct{ Headers map[string][]string }
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return nil, fmt.Errorf("decode %q: %w", out, err)
	}
	return r.Headers, nil
}

// envoyStat sums the Prometheus samples on 15090 of the sidecar at ip whose
// line contains every one of the given fragments.
func envoyStat(ctx context.Context, from corev1.Pod, ip string, fragments ...string) (float64, error) {
	out, _, err := cluster.Exec(ctx, from.Namespace, from.Name, "curl", "curl", "-timeout", "5s", "http://"+ip+":15090/stats/prometheus")
	if err != nil {
		return 0, err
	}
	sum := 0.0
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "#") || !containsAll(line, fragments) {
			continue
		}
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			sum += v
		}
	}
	return sum, nil
}

// waitDrained waits until no sidecar in ns drains filter chains of a
// replaced listener. Envoy serves every connection accepted on an old
// filter chain with that chain's config until the chain has drained (the
// agent's drain time), and that includes connections other sidecars keep
// in their pools. So a listener change (an AuthorizationPolicy, a
// Telemetry) reaches every connection only after this. Call it once the
// change is seen in force on new connections: before the update arrives
// there is nothing draining yet.
func waitDrained(t *testing.T, from corev1.Pod, ns string) {
	t.Helper()
	ctx := context.Background()
	waitFor(t, "old filter chains drained in "+ns, time.Minute, func() error {
		pods, err := cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, p := range pods.Items {
			if p.Status.PodIP == "" || p.Annotations[annotation.StatusAnnotation] == "" || p.DeletionTimestamp != nil {
				continue
			}
			n, err := envoyStat(ctx, from, p.Status.PodIP, "envoy_listener_manager_total_filter_chains_draining{")
			if err != nil {
				return err
			}
			if n > 0 {
				return fmt.Errorf("%s drains %v filter chains", p.Name, n)
			}
		}
		return nil
	})
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

var xfccURI = regexp.MustCompile(`URI=(spiffe://[^;,]+)`)

// TestSidecarInjectionAndCapture: pods of labelled namespaces get the native
// sidecar and are Ready only with it; unlabelled namespaces are untouched;
// the app's traffic is captured (the sidecar's stats count it); a Job
// completes with the sidecar; meshed pods are deleted cleanly.
func TestSidecarInjectionAndCapture(t *testing.T) {
	requireMesh(t)
	ctx := context.Background()
	ns, httpbin, curl := meshedApps(t, "e2e-inject", true)
	plainNS, plainHTTPBin, _ := meshedApps(t, "e2e-plain", false)

	t.Run("sidecar injected as a native sidecar with its status annotation", func(t *testing.T) {
		for _, p := range []corev1.Pod{httpbin, curl} {
			assert.True(t, hasSidecar(p), "%s has no native sidecar", p.Name)
			st, err := annotation.ParseStatus(p.Annotations[annotation.StatusAnnotation])
			require.NoError(t, err, "status annotation of %s", p.Name)
			assert.Equal(t, int64(1337), st.ProxyUID)
			assertSidecarFirst(t, ctx, p)
		}
	})

	t.Run("unlabelled namespaces are untouched", func(t *testing.T) {
		assert.False(t, hasSidecar(plainHTTPBin))
		assert.NotContains(t, plainHTTPBin.Annotations, annotation.StatusAnnotation)
	})

	t.Run("the app's outbound request goes through its sidecar", func(t *testing.T) {
		before, err := envoyStat(ctx, curl, "127.0.0.1", "upstream_rq_total", "outbound|8000||httpbin")
		require.NoError(t, err)
		_, err = headersSeenBy(ctx, curl, "http://httpbin:8000/headers")
		require.NoError(t, err)
		after, err := envoyStat(ctx, curl, "127.0.0.1", "upstream_rq_total", "outbound|8000||httpbin")
		require.NoError(t, err)
		assert.Equal(t, before+1, after, "one request, counted once by the client sidecar")
	})

	t.Run("a Job completes with the sidecar", func(t *testing.T) {
		job := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: "once"},
			Spec: batchv1.JobSpec{BackoffLimit: new(int32), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{Name: "curl", Image: curlImage, ImagePullPolicy: corev1.PullIfNotPresent,
					Command: []string{"curl", "-f", "-timeout", "10s", "http://httpbin." + ns + ":8000/status/200"}}},
			}}},
		}
		_, err := clients(t).BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = eventually(2*time.Minute, func() error {
			j, err := clients(t).BatchV1().Jobs(ns).Get(ctx, "once", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if j.Status.Succeeded != 1 {
				return fmt.Errorf("job status %+v", j.Status)
			}
			return nil
		})
		require.NoError(t, err, "the Job must complete although its pod has a sidecar")
	})

	t.Run("meshed pod deletion is clean", func(t *testing.T) {
		require.NoError(t, clients(t).CoreV1().Pods(ns).Delete(ctx, httpbin.Name, metav1.DeleteOptions{}))
		took, err := eventually(time.Minute, func() error {
			_, err := clients(t).CoreV1().Pods(ns).Get(ctx, httpbin.Name, metav1.GetOptions{})
			if err == nil {
				return fmt.Errorf("pod %s still there", httpbin.Name)
			}
			return nil
		})
		require.NoError(t, err)
		t.Logf("meshed pod gone %v after delete", took.Round(100*time.Millisecond))
	})
	_ = plainNS
}

// TestMutualTLS: the first meshed request and the mTLS modes.
func TestMutualTLS(t *testing.T) {
	requireMesh(t)
	ctx := context.Background()
	ns, httpbin, curl := meshedApps(t, "e2e-mtls", true)
	plainNS, plainHTTPBin, plainCurl := meshedApps(t, "e2e-nomesh", false)
	url := "http://httpbin." + ns + ":8000/headers"

	t.Run("curl → httpbin by Service name, httpbin sees the client's SPIFFE ID", func(t *testing.T) {
		var h map[string][]string
		_, err := eventually(10*time.Second, func() error {
			var err error
			h, err = headersSeenBy(ctx, curl, url)
			return err
		})
		require.NoError(t, err)
		xfcc := strings.Join(h["X-Forwarded-Client-Cert"], ",")
		m := xfccURI.FindStringSubmatch(xfcc)
		require.NotNil(t, m, "no client identity in XFCC %q", xfcc)
		assert.Equal(t, "spiffe://cluster.local/ns/"+ns+"/sa/curl", m[1])
		assert.Contains(t, xfcc, "By=spiffe://cluster.local/ns/"+ns+"/sa/httpbin")
	})

	t.Run("TLS on the wire: both sidecars count handshakes", func(t *testing.T) {
		client, err := envoyStat(ctx, curl, "127.0.0.1", "ssl_handshake", "outbound|8000||httpbin")
		require.NoError(t, err)
		assert.Positive(t, client, "client sidecar made no TLS handshake to httpbin")
		server, err := envoyStat(ctx, curl, httpbin.Status.PodIP, "listener", "ssl_handshake")
		require.NoError(t, err)
		assert.Positive(t, server, "httpbin's sidecar accepted no TLS handshake")
	})

	t.Run("PERMISSIVE (default): a pod without sidecar is served, without identity", func(t *testing.T) {
		h, err := headersSeenBy(ctx, plainCurl, url)
		require.NoError(t, err)
		assert.Empty(t, h["X-Forwarded-Client-Cert"])
	})

	t.Run("a meshed pod reaches a Service without sidecars in plaintext", func(t *testing.T) {
		// The Service's endpoints reach the client's Envoy by a debounced
		// push shortly after the pod is Ready: allow for that propagation.
		var h map[string][]string
		took, err := eventually(10*time.Second, func() error {
			var err error
			h, err = headersSeenBy(ctx, curl, "http://httpbin."+plainNS+":8000/headers")
			return err
		})
		require.NoError(t, err)
		assert.Empty(t, h["X-Forwarded-Client-Cert"], "plaintext to a pod without sidecar")
		t.Logf("served after %v", took.Round(100*time.Millisecond))
		_ = plainHTTPBin
	})

	t.Run("STRICT: plaintext refused, mesh clients still served", func(t *testing.T) {
		strict := fmt.Sprintf("apiVersion: mesh.weft.dev/v1alpha1\nkind: MeshTLS\nmetadata: {name: strict, namespace: %s}\nspec: {mode: STRICT}\n", ns)
		require.NoError(t, cluster.Apply(ctx, []byte(strict)))
		took, err := eventually(30*time.Second, func() error {
			if _, err := headersSeenBy(ctx, plainCurl, url); err == nil {
				return fmt.Errorf("plaintext client still served")
			}
			return nil
		})
		require.NoError(t, err)
		t.Logf("STRICT in force after %v", took.Round(100*time.Millisecond))
		_, err = headersSeenBy(ctx, curl, url)
		assert.NoError(t, err, "mesh client under STRICT")
		require.NoError(t, cluster.Delete(ctx, []byte(strict)))
		_, err = eventually(30*time.Second, func() error { _, err := headersSeenBy(ctx, plainCurl, url); return err })
		assert.NoError(t, err, "back to PERMISSIVE after the policy is deleted")
	})

	t.Run("scaling httpbin reaches the client's Envoy within seconds", func(t *testing.T) {
		start := time.Now()
		scale(t, ns, "httpbin", 3)
		_, err := cluster.WaitPodsReady(ctx, ns, "app=httpbin", 3, 2*time.Minute)
		require.NoError(t, err)
		podsReady := time.Since(start)
		// From the last pod Ready: EndpointSlice update, pilot's push,
		// Envoy's EDS ACK. "Within seconds" is the bound.
		took, err := eventually(15*time.Second, func() error {
			s, err := load(ctx, curl, "curl", 30, "http://httpbin:8000/")
			if err != nil {
				return err
			}
			if len(s.ServedBy) != 3 {
				return fmt.Errorf("served by %s", keys(s.ServedBy))
			}
			return nil
		})
		require.NoError(t, err, "endpoints did not reach the client's Envoy within 15s of the pods being Ready")
		t.Logf("scale 1→3: pods Ready after %v, then all replicas served through the mesh after %v more",
			podsReady.Round(100*time.Millisecond), took.Round(100*time.Millisecond))
	})
}
