package check

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/install"
	"github.com/weftmesh/weft/meshctl/internal/fakekube"
	"github.com/weftmesh/weft/meshctl/internal/golden"
	"github.com/weftmesh/weft/meshctl/output"
	appsv1 "k8s.io/api/apps/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

const month = 30 * 24 * time.Hour

func post(t *testing.T, c *fakekube.Cluster, within time.Duration) Report {
	t.Helper()
	f := Collect(context.Background(), c.Client(), Options{FailWithin: within, Now: now})
	return NewReport(f)
}

// find returns the result whose check name starts with prefix.
func find(t *testing.T, r Report, prefix string) Result {
	t.Helper()
	for _, x := range r.Results {
		if strings.HasPrefix(x.Check, prefix) {
			return x
		}
	}
	t.Fatalf("no check %q in %+v", prefix, r.Results)
	return Result{}
}

func goldens(t *testing.T, name string, r Report) {
	t.Helper()
	for f, ext := range map[output.Format]string{output.Table: ".txt", output.JSON: ".json"} {
		var b bytes.Buffer
		require.NoError(t, output.Print(&b, f, r))
		golden.Check(t, name+ext, b.Bytes())
	}
}

func TestHealthyMeshPasses(t *testing.T) {
	c := fakekube.Mesh(fakekube.MeshOptions{Now: now})
	r := post(t, c, month)
	assert.False(t, r.Failed(), "%+v", r.Results)
	assert.Zero(t, r.Summary.Warnings, "%+v", r.Results)
	assert.Equal(t, "post-install", r.Mode)
	for _, x := range r.Results {
		assert.Contains(t, []Status{StatusOK, StatusSkip}, x.Status, "%s: %s", x.Check, x.Detail)
		assert.Empty(t, x.Fix, "an ok check has no fix: %s", x.Check)
	}
	assert.Equal(t, "3 connected, all SYNCED", find(t, r, "meshed pods connected").Detail)
	assert.Equal(t, "checked on 2 node(s)", find(t, r, "meshed pods have their traffic redirect rules").Detail)
	assert.Equal(t, StatusOK, find(t, r, "webhook reachable").Status, "the dry-run pod came back injected")
	assert.Equal(t, "2 namespace(s) hold the current roots", find(t, r, "trust bundle").Detail,
		"kube-root-ca.crt is not a trust bundle")
	assert.Contains(t, c.HTTP.Gets, "weft-system/weft-pilot-7d4b9-x2k:15014/debug/syncz")
	goldens(t, "healthy", r)

	// The dry run stored nothing and the test namespace is gone again.
	pods, err := c.Kube.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{LabelSelector: "app=meshctl-check"})
	require.NoError(t, err)
	assert.Empty(t, pods.Items)
	nss, err := c.Kube.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	for _, n := range nss.Items {
		assert.False(t, strings.HasPrefix(n.Name, "weft-check-"), "left %s behind", n.Name)
	}
}

func TestCAExpiringWithinWindowFails(t *testing.T) {
	c := fakekube.Mesh(fakekube.MeshOptions{Now: now, RootNotAfter: now.Add(10 * 24 * time.Hour)})
	r := post(t, c, month)
	require.True(t, r.Failed())
	root := find(t, r, "root (secret weft-system/weft-ca) valid for more than 30d")
	assert.Equal(t, StatusFail, root.Status)
	assert.Equal(t, "expires within 30d: CN=weft root,O=cluster.local, serial 1f:2e:3d, expires 2026-12-02 (10d left)", root.Detail)
	assert.Contains(t, root.Fix, "rotate the CA")
	assert.Equal(t, 1, r.Summary.Failed, "only the root fails: %+v", r.Results)

	// A window shorter than what is left passes.
	r = post(t, c, 7*24*time.Hour)
	assert.False(t, r.Failed())
	assert.Equal(t, StatusOK, find(t, r, "root (secret weft-system/weft-ca) valid for more than 7d").Status)
}

func TestExpiredRootFails(t *testing.T) {
	c := fakekube.Mesh(fakekube.MeshOptions{Now: now, RootNotAfter: now.Add(-48 * time.Hour)})
	r := post(t, c, 0)
	root := find(t, r, "root (")
	assert.Equal(t, StatusFail, root.Status)
	assert.True(t, strings.HasPrefix(root.Detail, "EXPIRED: "), root.Detail)
}

func TestMissingRedirectRulesFails(t *testing.T) {
	c := fakekube.Mesh(fakekube.MeshOptions{Now: now, MissingRedirect: true})
	r := post(t, c, month)
	require.True(t, r.Failed())
	x := find(t, r, "meshed pods have their traffic redirect rules")
	assert.Equal(t, StatusFail, x.Status)
	assert.Equal(t, "traffic bypasses the sidecar on node-1: 1 pod(s) shop/web-1", x.Detail)
	assert.Contains(t, x.Fix, "delete those pods")
}

func TestSidecarVersionMismatchWarns(t *testing.T) {
	c := fakekube.Mesh(fakekube.MeshOptions{Now: now, OldSidecar: true})
	r := post(t, c, month)
	x := find(t, r, "sidecar versions match the control plane")
	assert.Equal(t, StatusWarn, x.Status)
	assert.Equal(t, "1 pod(s) run weft.local/sidecar:1.1.0 (shop/cart-1); the injector injects weft.local/sidecar:1.2.0", x.Detail)
	assert.Equal(t, "restart them to get the current sidecar: kubectl rollout restart deployment -n shop", x.Fix)
	assert.False(t, r.Failed(), "an old sidecar still works: a warning, exit 0")
}

func TestProblemsGolden(t *testing.T) {
	c := fakekube.Mesh(fakekube.MeshOptions{Now: now, RootNotAfter: now.Add(10 * 24 * time.Hour), OldSidecar: true, MissingRedirect: true})
	r := post(t, c, month)
	assert.Equal(t, Summary{Passed: 11, Warnings: 1, Failed: 2}, r.Summary)
	goldens(t, "problems", r)
}

func TestProxyNotConnectedFails(t *testing.T) {
	c := fakekube.Mesh(fakekube.MeshOptions{Now: now})
	c.HTTP.Set("weft-system/weft-pilot-7d4b9-x2k:15014/debug/syncz", fakekube.Syncz(now, "shop", "web-1", "cart-1"))
	r := post(t, c, month)
	x := find(t, r, "meshed pods connected")
	assert.Equal(t, StatusFail, x.Status)
	assert.Equal(t, "not connected: curl-1.shop", x.Detail)
}

func TestNotInstalledSaysInstall(t *testing.T) {
	c := fakekube.New(fakekube.Node("node-1", "10.244.0.0/24"))
	r := post(t, c, month)
	require.True(t, r.Failed())
	for _, name := range []string{"Deployment weft-pilot", "Deployment weft-injector", "mesh CRDs established", "webhook configured"} {
		x := find(t, r, name)
		assert.Equal(t, StatusFail, x.Status, name)
		assert.Equal(t, "meshctl install", x.Fix, name)
	}
}

func TestForbiddenIsReportedPerCheck(t *testing.T) {
	c := fakekube.Mesh(fakekube.MeshOptions{Now: now})
	c.Forbid("*", "*")
	r := post(t, c, month)
	require.True(t, r.Failed())
	x := find(t, r, "nodes Ready")
	assert.Equal(t, StatusFail, x.Status)
	assert.True(t, strings.HasPrefix(x.Detail, "permission denied: "), x.Detail)
	assert.NotContains(t, x.Detail, "\n")
}

func pre(t *testing.T, c *fakekube.Cluster, comps install.Components) Report {
	t.Helper()
	return NewReport(Collect(context.Background(), c.Client(), Options{Pre: true, Components: comps, Now: now}))
}

var allComponents = install.Components{CNI: true, Proxy: true, Mesh: true}

func TestPreInstallOnACleanCluster(t *testing.T) {
	c := fakekube.New(fakekube.Node("node-1", "10.244.0.0/24"), fakekube.Node("node-2", "10.244.1.0/24"))
	c.SetAccess(func(authzv1.ResourceAttributes) bool { return true })
	r := pre(t, c, allComponents)
	assert.Equal(t, "pre-install", r.Mode)
	assert.False(t, r.Failed(), "%+v", r.Results)
	assert.Zero(t, r.Summary.Warnings, "%+v", r.Results)
	assert.Equal(t, StatusOK, find(t, r, "permissions to install (11 checked)").Status)
	goldens(t, "pre-clean", r)
}

func TestPreInstallFindsConflictsAndMissingRights(t *testing.T) {
	c := fakekube.New(fakekube.Node("node-1", ""),
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-proxy"}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kindnet"}})
	c.SetServerVersion("1", "28", "v1.28.9")
	c.SetAccess(func(ra authzv1.ResourceAttributes) bool { return ra.Resource != "customresourcedefinitions" })
	r := pre(t, c, allComponents)
	require.True(t, r.Failed())
	assert.Equal(t, StatusFail, find(t, r, "Kubernetes v1.28.9").Status)
	assert.Equal(t, "no spec.podCIDR: node-1", find(t, r, "every node has a pod CIDR").Detail)
	assert.Equal(t, "found DaemonSet kube-system/kindnet", find(t, r, "no other CNI plugin runs").Detail)
	assert.Equal(t, "found DaemonSet kube-system/kube-proxy", find(t, r, "no kube-proxy runs").Detail)
	perm := find(t, r, "permissions to install")
	assert.Equal(t, "cannot create customresourcedefinitions.apiextensions.k8s.io", perm.Detail)
	assert.Contains(t, perm.Fix, "cluster-admin")
	goldens(t, "pre-problems", r)

	// Without the CNI and proxy components, their conflicts do not matter.
	r = pre(t, c, install.Components{Mesh: true})
	for _, x := range r.Results {
		assert.NotContains(t, x.Check, "kube-proxy")
		assert.NotContains(t, x.Check, "CNI plugin")
	}
}
