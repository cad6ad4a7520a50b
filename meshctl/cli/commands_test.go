package cli

import (
	"encoding/json"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/install"
	"github.com/weftmesh/weft/meshctl/inject"
	"github.com/weftmesh/weft/meshctl/internal/fakekube"
	"github.com/weftmesh/weft/meshctl/internal/golden"
	"github.com/weftmesh/weft/meshctl/lifecycle"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

type errString string

func (e errString) Error() string { return string(e) }

var createOpts = metav1.CreateOptions{}

// authzSelecting is a DENY AuthorizationPolicy selecting app.
func authzSelecting(ns, app string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "mesh.weft.dev/v1alpha1", "kind": "AuthorizationPolicy",
		"metadata": map[string]any{"namespace": ns, "name": app},
		"spec":     map[string]any{"action": "DENY", "selector": map[string]any{"matchLabels": map[string]any{"app": app}}},
	}}
}

func TestCheckExitCodes(t *testing.T) {
	r := run(t, fakekube.Mesh(fakekube.MeshOptions{Now: now}), "", "check")
	assert.Equal(t, 0, r.code, r.out)
	assert.Empty(t, r.errOut)
	assert.Contains(t, r.out, "post-install check: all checks passed (14 passed)")

	// A root that expires in 10 days fails a 30-day window, with a fix.
	expiring := fakekube.Mesh(fakekube.MeshOptions{Now: now, RootNotAfter: now.AddDate(0, 0, 10)})
	r = run(t, expiring, "", "check", "--fail-within", "30d")
	assert.Equal(t, 1, r.code)
	assert.Empty(t, r.errOut, "the report says it all")
	assert.Contains(t, r.out, "✗ root (secret weft-system/weft-ca) valid for more than 30d: expires within 30d: ")
	assert.Contains(t, r.out, "      fix: rotate the CA")
	assert.Contains(t, r.out, "post-install check: FAILED (13 passed, 1 failed)")
	r = run(t, expiring, "", "check", "--fail-within", "168h")
	assert.Equal(t, 0, r.code, "10 days left is fine for a 7-day window")

	r = run(t, fakekube.Mesh(fakekube.MeshOptions{Now: now, MissingRedirect: true}), "", "check", "-o", "json")
	assert.Equal(t, 1, r.code)
	var rep struct {
		Results []struct{ Check, Status, Detail, Fix string }
		Summary struct{ Failed int }
	}
	require.NoError(t, json.Unmarshal([]byte(r.out), &rep))
	assert.Equal(t, 1, rep.Summary.Failed)
	for _, x := range rep.Results {
		if x.Status == "failed" {
			assert.Equal(t, "meshed pods have their traffic redirect rules", x.Check)
			assert.NotEmpty(t, x.Fix)
		}
	}

	r = run(t, fakekube.Mesh(fakekube.MeshOptions{Now: now, OldSidecar: true}), "", "check")
	assert.Equal(t, 0, r.code, "an older sidecar is a warning")
	assert.Contains(t, r.out, "⚠ sidecar versions match the control plane: 1 pod(s) run weft.local/sidecar:1.1.0 (shop/cart-1)")
	assert.Contains(t, r.out, "passed with warnings")
}

func TestCheckPre(t *testing.T) {
	c := fakekube.New(fakekube.Node("node-1", "10.244.0.0/24"))
	c.SetAccess(func(authzv1.ResourceAttributes) bool { return true })
	r := run(t, c, "", "check", "--pre")
	assert.Equal(t, 0, r.code, r.out)
	assert.Contains(t, r.out, "pre-install check: all checks passed")

	r = run(t, c, "", "check", "--pre", "--set", "components.cni=false", "--set", "components.proxy=false")
	assert.Equal(t, 0, r.code, r.out)
	assert.NotContains(t, r.out, "no other CNI plugin runs")
	assert.Contains(t, r.out, "no other service mesh injects sidecars")
}

func TestInjectFile(t *testing.T) {
	manifest := "../inject/testdata/app.yaml"
	data, err := os.ReadFile(manifest)
	require.NoError(t, err)
	objs, _, err := inject.Stream(data, inject.ConfigFromValues(install.Defaults()))
	require.NoError(t, err)
	want, err := inject.YAML(objs)
	require.NoError(t, err)

	r := run(t, nil, "", "inject", "-f", manifest)
	require.Equal(t, 0, r.code, r.errOut)
	assert.Equal(t, string(want), r.out, "the output is the webhook's injection")
	assert.Equal(t, "injected Deployment shop/web (namespace label weft-injection=enabled)\n"+
		"injected Pod shop/debug (namespace label weft-injection=enabled)\n"+
		"skipped Job shop/migrate (pod label sidecar.weft.dev/inject=false)\n", r.errOut)

	// Twice: the second pass changes nothing.
	again := run(t, nil, r.out, "inject", "-f", "-", "-q")
	require.Equal(t, 0, again.code, again.errOut)
	assert.Equal(t, r.out, again.out)
	assert.Empty(t, again.errOut)

	// The sidecar image follows the values.
	r = run(t, nil, "", "inject", "-f", manifest, "--set", "tag=1.2.0", "-q")
	require.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.out, "image: weft.local/sidecar:1.2.0")
	assert.NotContains(t, r.out, "sidecar:dev")

	// A manifest without pods passes through.
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n"
	r = run(t, nil, cm, "inject", "-f", "-")
	require.Equal(t, 0, r.code, r.errOut)
	assert.YAMLEq(t, cm, r.out)
	assert.Empty(t, r.errOut)

	r = run(t, nil, "", "inject", "-f", "does-not-exist.yaml")
	oneLineError(t, r, 1, "error: read manifest: open does-not-exist.yaml: no such file or directory")
	r = run(t, nil, "kind: [", "inject", "-f", "-")
	oneLineError(t, r, 1, "error: decode manifest 1: ")
}

func TestInstallDryRunPrintsTheManifests(t *testing.T) {
	kc := closedKubeconfig(t)
	want, err := install.Render(install.Defaults())
	require.NoError(t, err)
	// No cluster is needed: the kubeconfig's server is never dialled.
	r := run(t, nil, "", "install", "--dry-run", "--kubeconfig", kc)
	require.Equal(t, 0, r.code, r.errOut)
	assert.Equal(t, string(want), r.out)
	for _, s := range []string{"kind: CustomResourceDefinition", "name: weft-pilot", "kind: MutatingWebhookConfiguration", "name: weft-cni-node"} {
		assert.Contains(t, r.out, s)
	}

	r = run(t, nil, "", "install", "--dry-run", "--components", "mesh", "--set", "tag=1.2.0")
	require.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.out, "image: weft.local/pilot:1.2.0")
	assert.NotContains(t, r.out, "name: weft-cni-node")

	r = run(t, nil, "registry: ghcr.io/weft\n", "install", "--dry-run", "-f", "-")
	require.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.out, "ghcr.io/weft/pilot:dev")
}

func TestInstallAndUninstall(t *testing.T) {
	c := fakekube.New(fakekube.Node("node-1", "10.244.0.0/24"))
	a := &fakekube.Applier{C: c}
	r := runEnv(t, Env{Applier: a}, c, "", "install")
	require.Equal(t, 0, r.code, r.out+r.errOut)
	assert.Contains(t, r.out, "Installing Weft dev (components cni,proxy,mesh) on https://fake-apiserver:6443")
	assert.Contains(t, r.out, "Weft is ready (")
	assert.Contains(t, r.out, "Next: meshctl check")
	assert.NotEmpty(t, a.Applied)

	// Upgrading names the version change.
	r = runEnv(t, Env{Applier: a}, c, "", "upgrade", "--set", "tag=1.3.0")
	require.Equal(t, 0, r.code, r.out+r.errOut)
	assert.Contains(t, r.out, "Upgrading Weft: control plane weft.local/pilot:dev → weft.local/pilot:1.3.0")

	a.Applied = nil
	r = runEnv(t, Env{Applier: a}, c, "", "uninstall")
	require.Equal(t, 0, r.code, r.out+r.errOut)
	assert.Contains(t, r.out, "Uninstalling Weft (components cni,proxy,mesh) from https://fake-apiserver:6443")
	assert.Contains(t, r.out, "Weft components cni,proxy,mesh removed (")
	assert.Contains(t, a.Deleted, "Namespace weft-system")
	assert.Contains(t, a.Deleted, "MutatingWebhookConfiguration weft-sidecar-injector")
	assert.Equal(t, []string{"DaemonSet weft-system/" + lifecycle.CleanupDaemonSetName}, a.Applied)

	// Uninstalling again finds nothing and says so; upgrade needs an install.
	r = runEnv(t, Env{Applier: a}, c, "", "uninstall")
	require.Equal(t, 0, r.code, r.out+r.errOut)
	assert.Contains(t, r.out, "Namespace weft-system does not exist: removing what is left outside it")
	r = runEnv(t, Env{Applier: a}, c, "", "upgrade")
	oneLineError(t, r, 1, "error: Weft is not installed in this cluster (no namespace weft-system): run meshctl install")
}

func TestInstallSaysWhatFailed(t *testing.T) {
	c := fakekube.New(fakekube.Node("node-1", "10.244.0.0/24"))
	a := &fakekube.Applier{C: c, NotReady: map[string]bool{"DaemonSet weft-system/weft-proxy": true}}
	r := runEnv(t, Env{Applier: a}, c, "", "install", "--wait-timeout", "200ms")
	oneLineError(t, r, 1, "error: not ready: DaemonSet weft-system/weft-proxy (0/2 nodes ready): no pods created: timed out after 200ms")
	assert.Contains(t, r.out, "✗ DaemonSet weft-proxy")
}

// stableVersion hides what differs between builds.
func stableVersion(s string) string {
	return strings.ReplaceAll(s, runtime.Version(), "go1.N")
}

func TestVersion(t *testing.T) {
	c := fakekube.Mesh(fakekube.MeshOptions{Now: now, OldSidecar: true})
	r := run(t, c, "", "version")
	require.Equal(t, 0, r.code, r.errOut)
	golden.Check(t, "version.txt", []byte(stableVersion(r.out)))
	r = run(t, c, "", "version", "-o", "json")
	require.Equal(t, 0, r.code, r.errOut)
	golden.Check(t, "version.json", []byte(stableVersion(r.out)))

	r = run(t, nil, "", "version", "--client", "-o", "yaml")
	require.Equal(t, 0, r.code, r.errOut)
	assert.Equal(t, "client:\n  goVersion: go1.N\n  version: dev\n", stableVersion(r.out))

	r = run(t, fakekube.New(), "", "version")
	require.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.out, "control plane: not installed\nproxies:       none\n")
}

func TestProxyStatus(t *testing.T) {
	c := fakekube.Mesh(fakekube.MeshOptions{Now: now})
	r := run(t, c, "", "proxy-status", "-n", "shop")
	require.Equal(t, 0, r.code, r.errOut)
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	require.Len(t, lines, 4, r.out)
	assert.Equal(t, []string{"NAME", "CDS", "LDS", "EDS", "RDS", "SRDS", "PILOT", "VERSION"}, strings.Fields(lines[0]))
	for i, pod := range []string{"cart-1.shop", "curl-1.shop", "web-1.shop"} {
		// No tracing: pilot reports no SRDS.
		assert.Equal(t, []string{pod, "SYNCED", "SYNCED", "SYNCED", "SYNCED", "-", fakekube.PilotPod, "1.2.0"}, strings.Fields(lines[i+1]))
	}

	// The kubeconfig's namespace is the default one.
	c.Namespace = "shop"
	r = run(t, c, "", "proxy-status", "web-1")
	require.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.out, "web-1.shop")
	assert.NotContains(t, r.out, "curl-1")

	// A meshed pod pilot does not know is a problem.
	c.HTTP.Set("weft-system/"+fakekube.PilotPod+":15014/debug/syncz", fakekube.Syncz(now, "shop", "web-1"))
	r = run(t, c, "", "proxy-status", "-o", "json")
	assert.Equal(t, 1, r.code)
	var rep struct {
		Proxies []struct {
			Name      string
			Connected bool
			Problem   string
		}
	}
	require.NoError(t, json.Unmarshal([]byte(r.out), &rep))
	require.Len(t, rep.Proxies, 3)
	assert.False(t, rep.Proxies[0].Connected)
	assert.Contains(t, rep.Proxies[0].Problem, "not connected to pilot")

	// Without pilot, a one-line error.
	r = run(t, fakekube.New(), "", "proxy-status")
	oneLineError(t, r, 1, "error: no running weft-pilot in weft-system: is the mesh installed? (meshctl check)")
}

func TestProxyConfigSecrets(t *testing.T) {
	c := fakekube.Mesh(fakekube.MeshOptions{Now: now})
	dump, err := os.ReadFile("../testdata/curl-config-dump.json")
	require.NoError(t, err)
	c.Envoy.Set("shop/curl-1/config_dump", dump)
	r := run(t, c, "", "proxy-config", "secrets", "curl-1.shop")
	require.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.out, "spiffe://cluster.local/ns/explore/sa/curl")
	assert.Contains(t, r.out, "ACTIVE")
	assert.Equal(t, []string{"shop/curl-1/config_dump"}, c.Envoy.Gets)

	r = run(t, c, "", "pc", "clusters", "shop/curl-1", "-o", "json")
	require.Equal(t, 0, r.code, r.errOut)
	assert.True(t, json.Valid([]byte(r.out)))

	c.Envoy.Fail("shop/web-1/config_dump", errString("port-forward to shop/web-1:15000: error upgrading connection:\nunable to upgrade"))
	r = run(t, c, "", "proxy-config", "listeners", "web-1", "-n", "shop")
	oneLineError(t, r, 1, "error: cannot read Envoy's admin API in pod shop/web-1: port-forward to shop/web-1:15000: error upgrading connection:; unable to upgrade")
}

func TestAnalyzeCommand(t *testing.T) {
	c := fakekube.Mesh(fakekube.MeshOptions{Now: now})
	r := run(t, c, "", "analyze", "-n", "shop")
	assert.Equal(t, 0, r.code, r.out)
	assert.Equal(t, "✓ no problems found in namespace shop\n", r.out)

	_, err := c.Dynamic.Resource(fakekube.AuthorizationPolicies).Namespace("shop").Create(t.Context(), authzSelecting("shop", "ghost"), createOpts)
	require.NoError(t, err)
	r = run(t, c, "", "analyze", "-A", "-o", "json")
	assert.Equal(t, 1, r.code)
	var rep struct {
		Findings []struct{ Code, Object string }
	}
	require.NoError(t, json.Unmarshal([]byte(r.out), &rep))
	require.Len(t, rep.Findings, 1)
	assert.Equal(t, "WEFT-A0004", rep.Findings[0].Code)
	assert.Equal(t, "AuthorizationPolicy shop/ghost", rep.Findings[0].Object)
}
