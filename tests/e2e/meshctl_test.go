//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"k8s.io/apimachinery/pkg/util/wait"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/meshctl/analyze"
	"github.com/weftmesh/weft/meshctl/cli"
	"github.com/weftmesh/weft/meshctl/explain"
	"github.com/weftmesh/weft/meshctl/proxyconfig"
	"github.com/weftmesh/weft/meshctl/proxystatus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

var (
	meshctlLifecycle = flag.Bool("meshctl-lifecycle", false,
		"run TestMeshctlUninstallReinstall: uninstall Weft with meshctl, check nothing is left, install it again (replaces the harness's install)")
	meshctlValues = flag.String("meshctl-values", "",
		"values file for meshctl install/uninstall in TestMeshctlUninstallReinstall (default: the local cluster's .cache/cluster/values.yaml when it exists, else meshctl's defaults)")
)

// meshctlResult is one in-process run of meshctl.
type meshctlResult struct {
	code        int
	out, errOut string
}

// meshctl runs meshctl in-process (cli.Run is the whole program) against
// the cluster under test, bounded by timeout, and logs what it printed.
func meshctl(t testing.TB, timeout time.Duration, args ...string) meshctlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out, errOut bytes.Buffer
	args = append(slices.Clone(args), "--kubeconfig", *kubeconfig)
	code := cli.Run(ctx, args, cli.Env{In: strings.NewReader(""), Out: &out, Err: &errOut})
	r := meshctlResult{code: code, out: out.String(), errOut: errOut.String()}
	t.Logf("meshctl %s → exit %d\n%s%s", strings.Join(args[:len(args)-2], " "), code, truncateLog(r.out), r.errOut)
	return r
}

func truncateLog(s string) string {
	if len(s) > 4000 {
		return s[:4000] + "…\n"
	}
	return s
}

// meshctlJSON runs meshctl with -o json and decodes its output into v.
func meshctlJSON(t testing.TB, timeout time.Duration, v any, args ...string) (meshctlResult, error) {
	t.Helper()
	r := meshctl(t, timeout, append(args, "-o", "json")...)
	if r.out == "" {
		return r, fmt.Errorf("exit %d, no output: %s", r.code, strings.TrimSpace(r.errOut))
	}
	if err := json.Unmarshal([]byte(r.out), v); err != nil {
		return r, fmt.Errorf("decode %q: %w", truncateLog(r.out), err)
	}
	return r, nil
}

// oneLineFailure checks that r failed with a single "error: …" line that
// contains want.
func oneLineFailure(t *testing.T, r meshctlResult, want string) {
	t.Helper()
	assert.NotEqual(t, 0, r.code, "exit code")
	assert.Equal(t, 1, strings.Count(r.errOut, "\n"), "one line on stderr: %q", r.errOut)
	assert.True(t, strings.HasPrefix(r.errOut, "error: "), "stderr %q", r.errOut)
	assert.Contains(t, r.errOut, want)
	assert.NotContains(t, r.errOut, "goroutine ")
}

// TestMeshctl drives the operator's CLI against the installed mesh: check,
// proxy-status, proxy-config secrets, explain before and after a DENY
// policy, analyze on a seeded misconfiguration, and the one-line errors of
// bad input.
func TestMeshctl(t *testing.T) {
	requireMesh(t)
	ctx := context.Background()

	t.Run("check passes", func(t *testing.T) {
		// Pods of tests that just ended may still be going; a healthy mesh
		// passes within a minute.
		var last meshctlResult
		took, err := eventually(90*time.Second, func() error {
			last = meshctl(t, 2*time.Minute, "check")
			if last.code != 0 {
				return fmt.Errorf("exit %d", last.code)
			}
			return nil
		})
		require.NoError(t, err, "meshctl check after %v:\n%s%s", took.Round(time.Second), last.out, last.errOut)
		assert.Regexp(t, `post-install check: (all checks passed|passed with warnings)`, last.out)
		assert.Empty(t, last.errOut)
	})

	ns, httpbin, curl := meshedApps(t, "e2e-meshctl", true)
	pods := map[string]corev1.Pod{"httpbin": httpbin, "curl": curl}

	t.Run("proxy-status shows the proxies SYNCED for every type", func(t *testing.T) {
		var rep proxystatus.Report
		waitFor(t, "both proxies SYNCED", 90*time.Second, func() error {
			r, err := meshctlJSON(t, time.Minute, &rep, "proxy-status", "-n", ns)
			if err != nil {
				return err
			}
			if r.code != 0 {
				return fmt.Errorf("exit %d", r.code)
			}
			if len(rep.Proxies) != 2 {
				return fmt.Errorf("%d proxies, want 2", len(rep.Proxies))
			}
			for _, p := range rep.Proxies {
				if !p.Connected {
					return fmt.Errorf("%s not connected: %s", p.Name, p.Problem)
				}
				if len(p.Types) != len(proxystatus.Types) {
					return fmt.Errorf("%s: types %+v", p.Name, p.Types)
				}
				for _, c := range p.Types {
					if c.State != proxystatus.Synced {
						return fmt.Errorf("%s %s is %s %s", p.Name, c.Type, c.State, c.Error)
					}
				}
			}
			return nil
		})
		var names []string
		for _, p := range rep.Proxies {
			names = append(names, p.Pod)
			assert.Equal(t, ns, p.Namespace)
		}
		assert.ElementsMatch(t, []string{httpbin.Name, curl.Name}, names)

		r := meshctl(t, time.Minute, "proxy-status", curl.Name+"."+ns)
		assert.Equal(t, 0, r.code)
		assert.Regexp(t, curl.Name+`\.`+ns+`\s+SYNCED\s+SYNCED\s+SYNCED\s+SYNCED`, r.out)
	})

	t.Run("proxy-config secrets shows the workload's SPIFFE ID", func(t *testing.T) {
		for sa, pod := range pods {
			want := "spiffe://cluster.local/ns/" + ns + "/sa/" + sa
			var rep proxyconfig.SecretReport
			waitFor(t, pod.Name+" holds its SVID", time.Minute, func() error {
				r, err := meshctlJSON(t, time.Minute, &rep, "proxy-config", "secrets", pod.Name, "-n", ns)
				if err != nil {
					return err
				}
				if r.code != 0 || rep.Identity() != want {
					return fmt.Errorf("exit %d, identity %q", r.code, rep.Identity())
				}
				return nil
			})
			for _, s := range rep.Secrets {
				if s.Type == "Cert Chain" {
					require.NotNil(t, s.Valid, "chain of %s verified", pod.Name)
					assert.True(t, *s.Valid, "SVID chains to the trust bundle: %s", s.Chain)
				}
			}
			r := meshctl(t, time.Minute, "proxy-config", "secrets", pod.Name, "-n", ns)
			assert.Equal(t, 0, r.code)
			assert.Contains(t, r.out, want)
		}
	})

	t.Run("explain: allowed, then denied naming the DENY policy", func(t *testing.T) {
		target := "httpbin:8000"
		url := "http://httpbin:8000/status/200"
		expectCodes(t, curl, url, "200")
		var ex explain.Explanation
		r, err := meshctlJSON(t, 2*time.Minute, &ex, "explain", curl.Name, target, "-n", ns, "--path", "/status/200")
		require.NoError(t, err)
		assert.Equal(t, explain.Allowed, ex.Verdict, "reason: %s", ex.Reason)
		assert.Equal(t, 0, r.code)
		assert.NotEmpty(t, ex.Steps)

		policy := "deny-curl"
		apply(t, ns, authzPolicy(policy, fmt.Sprintf(
			"  selector: {matchLabels: {app: httpbin}}\n  action: DENY\n  rules: [{from: [{principals: [cluster.local/ns/%s/sa/curl]}]}]\n", ns)))
		// The mesh enforces it, and explain says so and why.
		expectCodes(t, curl, url, "403")
		waitFor(t, "explain says DENIED", time.Minute, func() error {
			r, err = meshctlJSON(t, 2*time.Minute, &ex, "explain", curl.Name, target, "-n", ns, "--path", "/status/200")
			if err != nil {
				return err
			}
			if ex.Verdict != explain.Denied {
				return fmt.Errorf("verdict %s: %s", ex.Verdict, ex.Reason)
			}
			return nil
		})
		assert.Equal(t, 1, r.code, "a verdict other than ALLOWED exits 1")
		assert.Contains(t, ex.Reason, ns+"/"+policy)
		r = meshctl(t, 2*time.Minute, "explain", curl.Name+"."+ns, "httpbin."+ns+":http")
		assert.Contains(t, r.out, "DENIED: denied by DENY policy "+ns+"/"+policy)
		remove(t, ns, authzPolicy(policy, ""))
	})

	t.Run("analyze flags seeded misconfigurations with their codes", func(t *testing.T) {
		var rep analyze.Report
		_, err := meshctlJSON(t, time.Minute, &rep, "analyze", "-n", ns)
		require.NoError(t, err)
		for _, f := range rep.Findings {
			assert.NotContains(t, []string{analyze.CodeRouteToMissing, analyze.CodeAuthzSelectsNone}, f.Code, "before seeding: %+v", f)
		}
		apply(t, ns, authzPolicy("ghost", "  selector: {matchLabels: {app: ghost}}\n  action: DENY\n  rules: [{from: [{namespaces: [nowhere]}]}]\n"))
		apply(t, ns, `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: to-nowhere}
spec:
  parentRefs: [{group: "", kind: Service, name: httpbin, port: 8000}]
  rules: [{matches: [{path: {type: PathPrefix, value: /nowhere}}], backendRefs: [{name: httpbin-v9, port: 8000}]}]
`)
		r, err := meshctlJSON(t, time.Minute, &rep, "analyze", "-n", ns)
		require.NoError(t, err)
		assert.Equal(t, 1, r.code, "findings exit 1")
		found := map[string]string{}
		for _, f := range rep.Findings {
			found[f.Code] = f.Object
		}
		assert.Equal(t, "AuthorizationPolicy "+ns+"/ghost", found[analyze.CodeAuthzSelectsNone])
		assert.Equal(t, "HTTPRoute "+ns+"/to-nowhere", found[analyze.CodeRouteToMissing])
		r = meshctl(t, time.Minute, "analyze", "-A")
		assert.Contains(t, r.out, "["+analyze.CodeRouteToMissing+"] HTTPRoute "+ns+"/to-nowhere: backendRef Service "+ns+"/httpbin-v9 does not exist")
		remove(t, ns, `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: to-nowhere}
`)
	})

	t.Run("a pod without a sidecar: one-line error", func(t *testing.T) {
		plain := newNamespace(t, "e2e-meshctl-plain", nil)
		createAll(t, plain, deployment("plain", 1, podSpec(curlContainer())))
		ready, err := cluster.WaitPodsReady(ctx, plain, "app=plain", 1, 2*time.Minute)
		require.NoError(t, err)
		pod := ready[0].Name
		r := meshctl(t, time.Minute, "proxy-config", "secrets", pod, "-n", plain)
		oneLineFailure(t, r, "pod "+plain+"/"+pod+" has no Weft sidecar")
		assert.Contains(t, r.errOut, "kubectl label namespace "+plain+" weft-injection=enabled")
		assert.Empty(t, r.out)
		r = meshctl(t, time.Minute, "proxy-status", pod+"."+plain)
		oneLineFailure(t, r, "has no Weft sidecar")
		r = meshctl(t, time.Minute, "proxy-config", "listeners", "no-such-pod", "-n", plain)
		oneLineFailure(t, r, "pod no-such-pod not found in namespace "+plain)
	})

	t.Run("bad input: one-line errors", func(t *testing.T) {
		oneLineFailure(t, meshctl(t, time.Minute, "check", "--context", "no-such-context"),
			`context "no-such-context" is not in the kubeconfig`)
		r := meshctl(t, time.Minute, "proxy-status", "-o", "xml")
		oneLineFailure(t, r, `unknown output format "xml"`)
		assert.Equal(t, 2, r.code)
	})
}

// lifecycleValues is the values file meshctl installs and uninstalls with:
// the harness's, so the reinstall is the install the suite ran against.
func lifecycleValues(t *testing.T) []string {
	t.Helper()
	path := *meshctlValues
	if path == "" {
		local, err := filepath.Abs(filepath.Join("..", "..", ".cache", "cluster", "values.yaml"))
		require.NoError(t, err)
		if _, err := os.Stat(local); err == nil {
			path = local
		}
	}
	if path == "" {
		t.Log("no values file: meshctl's defaults")
		return nil
	}
	t.Logf("values: %s", path)
	return []string{"-f", path}
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// weftLeftovers lists the cluster-scoped and control-plane objects of
// Weft that still exist.
func weftLeftovers(ctx context.Context, t *testing.T) []string {
	t.Helper()
	cs := clients(t)
	var left []string
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "weft-system", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		left = append(left, fmt.Sprintf("namespace weft-system (%v)", err))
	}
	dyn, err := dynamic.NewForConfig(cluster.Config)
	require.NoError(t, err)
	crds, err := dyn.Resource(crdGVR).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, c := range crds.Items {
		if strings.HasSuffix(c.GetName(), ".mesh.weft.dev") {
			left = append(left, "CRD "+c.GetName())
		}
	}
	mwcs, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, m := range mwcs.Items {
		if strings.HasPrefix(m.Name, "weft-") || m.Labels["app.kubernetes.io/part-of"] == "weft" {
			left = append(left, "MutatingWebhookConfiguration "+m.Name)
		}
	}
	crs, err := cs.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, r := range crs.Items {
		if strings.HasPrefix(r.Name, "weft-") || r.Labels["app.kubernetes.io/part-of"] == "weft" {
			left = append(left, "ClusterRole "+r.Name)
		}
	}
	crbs, err := cs.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, b := range crbs.Items {
		if strings.HasPrefix(b.Name, "weft-") || b.Labels["app.kubernetes.io/part-of"] == "weft" {
			left = append(left, "ClusterRoleBinding "+b.Name)
		}
	}
	return left
}

// TestMeshctlUninstallReinstall removes Weft with meshctl uninstall,
// checks that nothing Weft owns is left, then installs it again with
// meshctl install and checks it. It replaces the harness's install, so it
// runs only with -meshctl-lifecycle (and should run last: -run selects it
// alone, or the lead stages it after the rest of the suite).
func TestMeshctlUninstallReinstall(t *testing.T) {
	if !*meshctlLifecycle {
		t.Skip("replaces the installed mesh: run with -args -meshctl-lifecycle")
	}
	requireMesh(t)
	ctx := context.Background()
	values := lifecycleValues(t)
	// Uninstall removes the pod network too: pods still on it (the suite's
	// namespaces, deleted asynchronously) could not be torn down after it.
	waitTestNamespacesGone(t)

	r := meshctl(t, 20*time.Minute, append([]string{"uninstall", "--wait-timeout", "5m"}, values...)...)
	assert.Equal(t, 0, r.code, "uninstall: %s", r.errOut)
	assert.Contains(t, r.out, "removed (")
	var left []string
	_, err := eventually(2*time.Minute, func() error {
		if left = weftLeftovers(ctx, t); len(left) > 0 {
			return fmt.Errorf("left: %s", strings.Join(left, ", "))
		}
		return nil
	})
	assert.NoError(t, err, "uninstall leaves nothing of Weft")
	// Nor on the nodes: no WEFT- chains, conflist or plugins (t.Errorf
	// only, so the reinstall below always runs).
	checkNodesClean(t, valuesFromArgs(t, values))
	r = meshctl(t, time.Minute, append([]string{"check", "--pre"}, values...)...)
	assert.Equal(t, 0, r.code, "pre-install check after uninstall")

	// Always reinstall, even when the checks above failed: the suite's
	// cluster must be usable afterwards.
	r = meshctl(t, 20*time.Minute, append([]string{"install", "--wait-timeout", "5m"}, values...)...)
	require.Equal(t, 0, r.code, "install: %s", r.errOut)
	assert.Contains(t, r.out, "Weft is ready")
	var last meshctlResult
	_, err = eventually(3*time.Minute, func() error {
		last = meshctl(t, 2*time.Minute, "check")
		if last.code != 0 {
			return fmt.Errorf("exit %d", last.code)
		}
		return nil
	})
	require.NoError(t, err, "check after reinstall:\n%s", last.out)
}

// waitTestNamespacesGone waits (bounded) until no namespace of the suite
// (prefix e2e-) is left.
func waitTestNamespacesGone(t *testing.T) {
	t.Helper()
	cs := clients(t)
	var left []string
	err := wait.PollUntilContextTimeout(context.Background(), time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		nss, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		left = nil
		for _, ns := range nss.Items {
			if strings.HasPrefix(ns.Name, "e2e-") {
				left = append(left, ns.Name)
			}
		}
		return len(left) == 0, nil
	})
	require.NoError(t, err, "test namespaces still terminating: %v", left)
}
