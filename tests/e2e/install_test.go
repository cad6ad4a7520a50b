//go:build e2e

package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/api/annotation"
	"github.com/weftmesh/weft/install"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

var (
	installValues = flag.String("install-values", "",
		"values file Weft is installed with: TestUpgradeKeepsTrafficFlowing upgrades and downgrades with it, the node check after uninstall reads its CNI paths (default: the local cluster's .cache/cluster/values.yaml when it exists)")
	upgradeTag = flag.String("upgrade-tag", "next",
		"tag of the second build TestUpgradeKeepsTrafficFlowing upgrades to (`make images` writes the chart's images with tag next)")
)

// installValuesPath is -install-values, or the local cluster's values file
// when it exists, or "" (no values file).
func installValuesPath(t *testing.T) string {
	t.Helper()
	if *installValues != "" {
		return *installValues
	}
	local, err := filepath.Abs(filepath.Join("..", "..", ".cache", "cluster", "values.yaml"))
	require.NoError(t, err)
	if _, err := os.Stat(local); err == nil {
		return local
	}
	return ""
}

// readInstallValues reads a values file as meshctl -f does.
func readInstallValues(t *testing.T, path string) install.Values {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	v, err := install.ReadValues(data)
	require.NoError(t, err, "values file %s", path)
	return v
}

// nonDefaultValues touch every kind of value: a mesh-only install (no
// DaemonSets), two replicas of each control-plane component (so the
// PodDisruptionBudgets render), another trust domain, registry and tag,
// resources with limits, a shorter certificate lifetime, debug logging and
// an OTLP endpoint.
func nonDefaultValues() install.Values {
	v := install.Defaults()
	v.Components = install.Components{Mesh: true}
	v.Registry, v.Tag = "registry.example.com:5000/weft", "v1.2.3-rc.1"
	v.TrustDomain = "e2e.example.org"
	v.LogLevel = "debug"
	v.Pilot.Replicas, v.Injector.Replicas = 2, 2
	v.Pilot.WorkloadCertTTL = "12h"
	v.Pilot.Resources = install.Resources{
		Requests: install.ResourceList{CPU: "100m", Memory: "128Mi"},
		Limits:   install.ResourceList{CPU: "1", Memory: "512Mi"},
	}
	v.Injector.Resources.Limits.CPU = "500m"
	v.Telemetry.OTLPEndpoint = "http://otel-collector.observability.svc:4317"
	return v
}

// TestChartServerSideDryRun renders the chart with the default and with
// non-default values and has the API server validate every object by a
// server-side apply dry run (nothing is changed). Weft is installed, so
// its CRDs exist for any custom resources.
func TestChartServerSideDryRun(t *testing.T) {
	requireMesh(t)
	dyn, err := dynamic.NewForConfig(cluster.Config)
	require.NoError(t, err)
	dc, err := discovery.NewDiscoveryClientForConfig(cluster.Config)
	require.NoError(t, err)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))

	for _, c := range []struct {
		name   string
		values install.Values
	}{{"defaults", install.Defaults()}, {"non-default", nonDefaultValues()}} {
		t.Run(c.name, func(t *testing.T) {
			stream, err := install.Render(c.values)
			require.NoError(t, err)
			objs, err := install.Decode(stream)
			require.NoError(t, err)
			require.NotEmpty(t, objs)
			var rejected []string
			for _, o := range objs {
				if err := dryRunApply(context.Background(), dyn, mapper, o); err != nil {
					rejected = append(rejected, fmt.Sprintf("%s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err))
				}
			}
			if len(rejected) > 0 {
				t.Errorf("the API server rejected %d of %d objects:\n  %s", len(rejected), len(objs), strings.Join(rejected, "\n  "))
			}
			t.Logf("%d objects validated by the API server (dry run)", len(objs)-len(rejected))
		})
	}
}

// dryRunApply server-side-applies obj with dryRun=All.
func dryRunApply(ctx context.Context, dyn dynamic.Interface, mapper *restmapper.DeferredDiscoveryRESTMapper, obj *unstructured.Unstructured) error {
	gvk := obj.GroupVersionKind()
	mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		mapper.Reset()
		if mapping, err = mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			return fmt.Errorf("no API for %s: %w", gvk, err)
		}
	}
	var res dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := obj.GetNamespace()
		if ns == "" {
			ns = metav1.NamespaceDefault
		}
		res = dyn.Resource(mapping.Resource).Namespace(ns)
	}
	data, err := obj.MarshalJSON()
	if err != nil {
		return err
	}
	force := true
	_, err = res.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{
		DryRun: []string{metav1.DryRunAll}, Force: &force, FieldManager: "weft-e2e-dryrun"})
	return err
}

// upgradeFailureBudget is how many requests of the traffic loop may fail
// while the control plane and the node agents roll out: 1% of them, at
// least 3. Sidecars keep their Envoy config, certificates and connections
// while pilot and the injector restart, and weft-proxy and weft-cni-node
// leave their kernel state in place across a restart, so meshed traffic
// should not notice; the budget covers name lookups that hit a CoreDNS
// replica as it is replaced (the local cluster's values upgrade CoreDNS
// too) before the Service's endpoints are updated everywhere.
func upgradeFailureBudget(requests int) int { return max(3, requests/100) }

// TestUpgradeKeepsTrafficFlowing upgrades the installed Weft (version N,
// the values file's tag) to a second build (N+1, tag -upgrade-tag) with
// `meshctl upgrade` while a meshed client sends ~10 requests a second to a
// meshed server, then restarts the workloads so their sidecars are
// upgraded too (control plane first, then data plane), and finally
// downgrades to N so later tests see the original install.
func TestUpgradeKeepsTrafficFlowing(t *testing.T) {
	requireMesh(t)
	path := installValuesPath(t)
	if path == "" {
		t.Skip("no install values file: pass -install-values <the values Weft was installed with> (make e2e passes .cache/cluster/values.yaml)")
	}
	ctx := context.Background()
	from := readInstallValues(t, path)
	to := from
	to.Tag = *upgradeTag
	require.NotEqual(t, from.Tag, to.Tag, "-upgrade-tag must differ from the installed tag")
	t.Logf("upgrade %s → %s with values %s", from.Image("pilot"), to.Image("pilot"), path)
	requireImagesOnNodes(t, to)

	ns, httpbin, curl := meshedApps(t, "e2e-upgrade", true)
	url := "http://httpbin:8000/status/200"
	_, err := eventually(30*time.Second, func() error {
		s, err := load(ctx, curl, "curl", 5, url)
		if err == nil && s.Codes["200"] != 5 {
			err = fmt.Errorf("codes %s", keys(s.Codes))
		}
		return err
	})
	require.NoError(t, err, "meshed traffic before the upgrade")

	// The two builds are told apart by what they report, not by their tags:
	// `make images` links the N+1 build with telemetry.Version=next.
	assert.Equal(t, []string{from.Tag}, pilotVersions(ctx, t), "pilot's build before the upgrade")
	t.Cleanup(func() { downgrade(t, path, from) })
	traffic := startTraffic(ctx, curl, url, 3*time.Minute)
	r := meshctl(t, 10*time.Minute, "upgrade", "-f", path, "--set", "tag="+to.Tag, "--wait-timeout", "5m")
	var rollout error
	if r.code == 0 {
		rollout = waitRollout(ctx, to, 3*time.Minute)
		time.Sleep(3 * time.Second) // a few requests after the last component is ready
	}
	res := traffic()
	t.Logf("traffic during the upgrade: %d requests in %v, %d failed (budget %d), %d exec errors; sample errors: %q",
		res.requests, res.took.Round(time.Second), res.failed, upgradeFailureBudget(res.requests), res.execErrors, res.errors)
	require.Equal(t, 0, r.code, "meshctl upgrade: %s", r.errOut)
	require.NoError(t, rollout, "control plane and node agents on %s", to.Tag)
	assert.Contains(t, r.out, "Upgrading Weft: control plane "+from.Image("pilot")+" → "+to.Image("pilot"))
	assert.Equal(t, []string{to.Tag}, pilotVersions(ctx, t), "pilot's build after the upgrade")
	assert.Regexp(t, `Meshed pods still run an older sidecar in: .*\b`+ns+` \(2\)`, r.out, "meshctl names the namespace to restart")
	assert.GreaterOrEqual(t, res.requests, 50, "too few requests to judge the upgrade (exec errors: %d)", res.execErrors)
	assert.LessOrEqual(t, res.failed, upgradeFailureBudget(res.requests), "meshed requests failed during the upgrade: %q", res.errors)

	t.Run("the data plane is untouched until workloads restart", func(t *testing.T) {
		for _, p := range []corev1.Pod{httpbin, curl} {
			now, err := clients(t).CoreV1().Pods(ns).Get(ctx, p.Name, metav1.GetOptions{})
			require.NoError(t, err, "pod %s must survive the control-plane upgrade", p.Name)
			assert.Equal(t, from.Image("sidecar"), sidecarImage(*now), "sidecar of %s", p.Name)
		}
	})

	t.Run("restarted workloads get the new sidecar and keep mTLS", func(t *testing.T) {
		for _, d := range []string{"httpbin", "curl"} {
			restartDeployment(t, ns, d)
		}
		newHTTPBin := waitRestarted(t, ns, "app=httpbin", httpbin.Name, to.Image("sidecar"))
		newCurl := waitRestarted(t, ns, "app=curl", curl.Name, to.Image("sidecar"))
		for _, p := range []corev1.Pod{newHTTPBin, newCurl} {
			st, err := annotation.ParseStatus(p.Annotations[annotation.StatusAnnotation])
			require.NoError(t, err, "status annotation of %s", p.Name)
			assert.Equal(t, to.Image("sidecar"), st.Image, "injected image of %s", p.Name)
		}
		var xfcc string
		_, err := eventually(time.Minute, func() error {
			h, err := headersSeenBy(ctx, newCurl, "http://httpbin:8000/headers")
			if err != nil {
				return err
			}
			xfcc = strings.Join(h["X-Forwarded-Client-Cert"], ",")
			if xfcc == "" {
				return errors.New("no X-Forwarded-Client-Cert: not mTLS")
			}
			return nil
		})
		require.NoError(t, err, "traffic between the restarted pods")
		m := xfccURI.FindStringSubmatch(xfcc)
		require.NotNil(t, m, "no client identity in XFCC %q", xfcc)
		assert.Equal(t, "spiffe://"+to.TrustDomain+"/ns/"+ns+"/sa/curl", m[1])
		assert.Contains(t, xfcc, "By=spiffe://"+to.TrustDomain+"/ns/"+ns+"/sa/httpbin")
		s, err := load(ctx, newCurl, "curl", 20, url)
		require.NoError(t, err)
		assert.Equal(t, 20, s.Codes["200"], "codes %s, errors %q", keys(s.Codes), s.Errors)
	})
}

// downgrade reinstalls the values file's version with meshctl upgrade and
// waits until every component runs it again.
func downgrade(t *testing.T, path string, v install.Values) {
	t.Helper()
	r := meshctl(t, 10*time.Minute, "upgrade", "-f", path, "--wait-timeout", "5m")
	if r.code != 0 {
		t.Errorf("downgrade to %s: exit %d: %s", v.Tag, r.code, r.errOut)
	}
	if err := waitRollout(context.Background(), v, 3*time.Minute); err != nil {
		t.Errorf("after the downgrade to %s: %v", v.Tag, err)
	}
}

// trafficResult counts what the traffic loop saw.
type trafficResult struct {
	requests, failed, execErrors int
	errors                       []string // the first few failures
	took                         time.Duration
}

// startTraffic sends batches of 10 requests (4 at a time) from pod's curl
// to url about once a second until the returned function is called or
// limit passes; the function stops the loop and returns the counts.
// A request fails unless it gets a 200. Failing to exec into the pod is
// counted apart: it is the API server's path, not the mesh's.
func startTraffic(ctx context.Context, pod corev1.Pod, url string, limit time.Duration) func() trafficResult {
	ctx, cancel := context.WithTimeout(ctx, limit)
	var res trafficResult
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	note := func(s string) {
		if len(res.errors) < 10 {
			res.errors = append(res.errors, s)
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() { mu.Lock(); res.took = time.Since(start); mu.Unlock() }()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			s, err := load(ctx, pod, "curl", 10, url)
			mu.Lock()
			switch {
			case err != nil && ctx.Err() != nil: // stopped mid-batch: not counted
			case err != nil:
				res.execErrors++
				note("exec: " + err.Error())
			default:
				res.requests += s.Requests
				if bad := s.Requests - s.Codes["200"]; bad > 0 {
					res.failed += bad
					note(fmt.Sprintf("%s at %v: codes %s %q", time.Now().Format(time.TimeOnly), time.Since(start).Round(time.Second), keys(s.Codes), s.Errors))
				}
			}
			mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() trafficResult {
		cancel()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return res
	}
}
