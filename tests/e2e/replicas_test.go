//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/install"
	"github.com/weftmesh/weft/meshctl/lifecycle"
	"github.com/weftmesh/weft/tests/e2e/framework"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// pilotLease is the Lease pilot replicas elect their leader with
// (pilot/cmd/pilot, package pilot/leader).
const pilotLease = "weft-pilot"

// TestPilotReplicas scales the installed pilot to two replicas (the chart
// rendered by package install with pilot.replicas=2, server-side applied
// as meshctl does), checks that both serve and exactly one leads (holds the
// Lease and logged "leading"), deletes the leader and checks that the other
// takes over — its singleton loops run: it republishes a deleted
// weft-root-cert — while a meshed curl keeps reaching a meshed httpbin
// over mTLS and a restarted workload still gets its certificate. It
// restores the installed values (one replica) at the end. It changes the
// control plane, so it needs the values Weft was installed with.
func TestPilotReplicas(t *testing.T) {
	requireMesh(t)
	path := installValuesPath(t)
	if path == "" {
		t.Skip("no install values file: pass -install-values <the values Weft was installed with>")
	}
	ctx := context.Background()
	cs := clients(t)
	from := readInstallValues(t, path)
	two := from
	two.Pilot.Replicas = 2

	ns, _, curl := meshedApps(t, "e2e-replicas", true)
	url := "http://httpbin:8000/status/200"
	_, err := eventually(30*time.Second, func() error { return mtlsTo(ctx, curl, "httpbin") })
	require.NoError(t, err, "meshed traffic before scaling pilot")

	_, err = cs.PolicyV1().PodDisruptionBudgets("weft-system").Get(ctx, "weft-pilot", metav1.GetOptions{})
	hadPDB := err == nil
	t.Cleanup(func() {
		if err := applyValues(context.Background(), from); err != nil {
			t.Errorf("restore %d pilot replica(s): %v", from.Pilot.Replicas, err)
		}
		if from.Pilot.Replicas < 2 && !hadPDB {
			// Apply does not prune: the budget of two replicas stays otherwise.
			err := cs.PolicyV1().PodDisruptionBudgets("weft-system").Delete(context.Background(), "weft-pilot", metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("delete the PodDisruptionBudget of two pilots: %v", err)
			}
		}
		if err := waitRollout(context.Background(), from, 3*time.Minute); err != nil {
			t.Errorf("after restoring the install values: %v", err)
		}
	})
	require.NoError(t, applyValues(ctx, two))
	require.NoError(t, waitRollout(ctx, two, 3*time.Minute), "two pilot replicas ready")
	_, err = cs.PolicyV1().PodDisruptionBudgets("weft-system").Get(ctx, "weft-pilot", metav1.GetOptions{})
	require.NoError(t, err, "two replicas get a PodDisruptionBudget")

	pods := pilotPods(t)
	require.Len(t, pods, 2)
	var leader string
	_, err = eventually(time.Minute, func() error {
		var err error
		leader, err = leadingPilot(ctx, pods)
		return err
	})
	require.NoError(t, err, "exactly one pilot leads")
	t.Logf("pilots %s and %s; %s leads", pods[0].Name, pods[1].Name, leader)

	traffic := startTraffic(ctx, curl, url, 3*time.Minute)
	deleted := time.Now()
	require.NoError(t, cs.CoreV1().Pods("weft-system").Delete(ctx, leader, metav1.DeleteOptions{}))
	var next string
	took, err := eventually(time.Minute, func() error {
		h, err := leaseHolder(ctx)
		if err == nil && (h == "" || h == leader) {
			err = fmt.Errorf("the Lease is held by %q", h)
		}
		next = h
		return err
	})
	require.NoError(t, err, "another pilot takes the Lease")
	t.Logf("%s took the Lease %v after %s was deleted", next, took.Round(100*time.Millisecond), leader)
	// Usually the replica that kept running; the replacement may win the
	// race on a fast cluster, which is as good.
	if slices.IndexFunc(pods, func(p corev1.Pod) bool { return p.Name == next }) < 0 {
		t.Logf("the replacement pilot %s took the Lease before the surviving replica", next)
	}

	t.Run("the new leader runs the singleton loops", func(t *testing.T) {
		require.NoError(t, cs.CoreV1().ConfigMaps(ns).Delete(ctx, lifecycle.RootCertMap, metav1.DeleteOptions{}))
		_, err := eventually(time.Minute, func() error {
			_, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, lifecycle.RootCertMap, metav1.GetOptions{})
			return err
		})
		assert.NoError(t, err, "the leader republishes %s in %s", lifecycle.RootCertMap, ns)
	})

	require.NoError(t, waitRollout(ctx, two, 3*time.Minute), "the Deployment replaces the deleted pilot")
	time.Sleep(3 * time.Second) // a few requests after the failover settled
	res := traffic()
	t.Logf("traffic across the failover: %d requests in %v, %d failed (budget %d), %d exec errors; sample errors: %q",
		res.requests, res.took.Round(time.Second), res.failed, upgradeFailureBudget(res.requests), res.execErrors, res.errors)
	assert.GreaterOrEqual(t, res.requests, 50, "too few requests to judge the failover (exec errors: %d)", res.execErrors)
	assert.LessOrEqual(t, res.failed, upgradeFailureBudget(res.requests), "meshed requests failed across the failover: %q", res.errors)
	assert.Less(t, time.Since(deleted), 4*time.Minute)

	t.Run("a restarted workload gets its certificate and talks mTLS", func(t *testing.T) {
		restartDeployment(t, ns, "curl")
		newCurl := waitRestarted(t, ns, "app=curl", curl.Name, sidecarImage(curl))
		_, err := eventually(time.Minute, func() error { return mtlsTo(ctx, newCurl, "httpbin") })
		assert.NoError(t, err)
	})
}

// applyValues renders the chart with v and server-side-applies it as
// meshctl does (CRDs included; hooks are never rendered for it).
func applyValues(ctx context.Context, v install.Values) error {
	stream, err := install.Render(v)
	if err != nil {
		return err
	}
	objs, err := install.Decode(stream)
	if err != nil {
		return err
	}
	a, err := install.NewApplier(cluster.Config, lifecycle.FieldManager)
	if err != nil {
		return err
	}
	return a.Apply(ctx, objs)
}

// pilotPods are the running, Ready pilot pods.
func pilotPods(t *testing.T) []corev1.Pod {
	t.Helper()
	list, err := clients(t).CoreV1().Pods("weft-system").List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=weft-pilot"})
	require.NoError(t, err)
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && framework.PodReady(p) {
			out = append(out, p)
		}
	}
	return out
}

// leaseHolder is the holder of pilot's Lease ("" when released).
func leaseHolder(ctx context.Context) (string, error) {
	l, err := cluster.Client.CoordinationV1().Leases("weft-system").Get(ctx, pilotLease, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if l.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *l.Spec.HolderIdentity, nil
}

// leadingPilot is the one pod of pods that holds the Lease and says so in
// its log, where the other has not said it leads.
func leadingPilot(ctx context.Context, pods []corev1.Pod) (string, error) {
	holder, err := leaseHolder(ctx)
	if err != nil {
		return "", err
	}
	var leading []string
	for _, p := range pods {
		logs, err := cluster.Client.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: "pilot"}).DoRaw(ctx)
		if err != nil {
			return "", fmt.Errorf("logs of %s: %w", p.Name, err)
		}
		if strings.Contains(string(logs), `"msg":"leading"`) {
			leading = append(leading, p.Name)
		}
	}
	if len(leading) != 1 || leading[0] != holder {
		return "", fmt.Errorf("Lease held by %q, pods that logged leading: %v", holder, leading)
	}
	return holder, nil
}

// mtlsTo checks that from reaches app's /headers over mTLS (the server's
// sidecar forwards the client's SPIFFE ID).
func mtlsTo(ctx context.Context, from corev1.Pod, app string) error {
	h, err := headersSeenBy(ctx, from, "http://"+app+":8000/headers")
	if err != nil {
		return err
	}
	xfcc := strings.Join(h["X-Forwarded-Client-Cert"], ",")
	if xfccURI.FindStringSubmatch(xfcc) == nil {
		return errors.New("no client SPIFFE ID in X-Forwarded-Client-Cert: not mTLS")
	}
	return nil
}
