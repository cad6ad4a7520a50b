package install

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestRenderLeavesHooksToHelm: the uninstall hook is rendered for Helm
// only. meshctl, the local cluster and install/manifests apply Render's
// objects, and applied as an ordinary object the Job would clean the
// nodes right after installing.
func TestRenderLeavesHooksToHelm(t *testing.T) {
	out, err := Render(localClusterValues())
	require.NoError(t, err)
	assert.NotContains(t, string(out), "helm.sh/hook")
	assert.NotContains(t, string(out), "weft-uninstall")

	hooks := renderHooks(t, localClusterValues())
	var names []string
	for _, o := range hooks {
		names = append(names, name(o))
		a := o.GetAnnotations()
		assert.Equal(t, "pre-delete", a["helm.sh/hook"], name(o))
		assert.Equal(t, "before-hook-creation,hook-succeeded", a["helm.sh/hook-delete-policy"], name(o))
		assert.Equal(t, "weft-uninstall", o.GetLabels()["app.kubernetes.io/name"], name(o))
	}
	assert.Equal(t, []string{
		"ServiceAccount weft-system/weft-uninstall",
		"ClusterRole /weft-uninstall", "ClusterRoleBinding /weft-uninstall",
		"Role kube-system/weft-uninstall-dns", "Role weft-system/weft-uninstall",
		"RoleBinding kube-system/weft-uninstall-dns", "RoleBinding weft-system/weft-uninstall",
		"Job weft-system/weft-uninstall",
	}, names, "Helm creates hooks by weight then kind: the Job's identity and permissions first")
	assert.Equal(t, "0", hooks[len(hooks)-1].GetAnnotations()["helm.sh/hook-weight"])
	assert.Equal(t, "-5", hooks[0].GetAnnotations()["helm.sh/hook-weight"])
}

func TestUninstallHookJob(t *testing.T) {
	job := find[batchv1.Job](t, renderHooks(t, localClusterValues()), "Job", "weft-system", "weft-uninstall")
	spec := job.Spec.Template.Spec
	assert.Equal(t, corev1.RestartPolicyNever, spec.RestartPolicy)
	assert.True(t, spec.HostNetwork, "the Job must not need the pod network it removes")
	c := spec.Containers[0]
	assert.Equal(t, "weft.local/cni-node:dev", c.Image, "weft-uninstall ships in the cni-node image")
	assert.Equal(t, []string{"/usr/local/bin/weft-uninstall"}, c.Command)
	assert.Equal(t, []string{
		"--namespace=weft-system", "--pause-image=weft.local/pause:dev", "--pull-policy=Never", "--timeout=2m",
		"--webhook=weft-sidecar-injector", "--deployment=weft-system/weft-pilot", "--deployment=weft-system/weft-injector",
		"--deployment=kube-system/coredns",
	}, c.Args)
	assert.Contains(t, c.Env, corev1.EnvVar{Name: "KUBERNETES_SERVICE_HOST", Value: "172.20.0.1"},
		"the API server is reached as the node agents reach it: weft-proxy's kubernetes Service goes with the cleanup")
	assert.False(t, *c.SecurityContext.AllowPrivilegeEscalation)

	def := find[batchv1.Job](t, renderHooks(t, Defaults()), "Job", "weft-system", "weft-uninstall").Spec.Template.Spec.Containers[0]
	assert.NotContains(t, strings.Join(def.Args, " "), "coredns")
	assert.Empty(t, def.Env)
	assert.NotContains(t, strings.Join(kinds(t, Defaults()), "\n"), "weft-uninstall-dns")
}

func TestUninstallHookOnlyWithNodeAgents(t *testing.T) {
	v := Defaults()
	v.Components = Components{Mesh: true}
	assert.Empty(t, renderHooks(t, v), "a mesh-only install leaves nothing on the nodes: Helm's own deletion suffices")
	v.Components = Components{Proxy: true}
	job := find[batchv1.Job](t, renderHooks(t, v), "Job", "weft-system", "weft-uninstall")
	assert.NotContains(t, strings.Join(job.Spec.Template.Spec.Containers[0].Args, " "), "weft-pilot", "no mesh, no control plane to remove")
}

// TestHelmRunsTheHookBeforeDeletingTheRelease: Helm itself (releaseutil,
// what `helm install` and `helm uninstall` use) reads the uninstall hook
// as a pre-delete hook whose Job waits for its ServiceAccount and roles,
// and keeps it out of the release's ordinary manifests.
func TestHelmRunsTheHookBeforeDeletingTheRelease(t *testing.T) {
	ch, err := LoadChart()
	require.NoError(t, err)
	vals, err := localClusterValues().chartValues()
	require.NoError(t, err)
	top, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: ReleaseName, Namespace: "default", IsInstall: true}, nil)
	require.NoError(t, err)
	files, err := engine.Engine{Strict: true}.Render(ch, top)
	require.NoError(t, err)
	hooks, manifests, err := releaseutil.SortManifests(files, chartutil.DefaultVersionSet, releaseutil.InstallOrder)
	require.NoError(t, err)
	for _, m := range manifests {
		assert.NotContains(t, m.Content, "helm.sh/hook", m.Name)
	}
	var order []string
	for _, h := range hooks {
		assert.Equal(t, []release.HookEvent{release.HookPreDelete}, h.Events, h.Name)
		assert.ElementsMatch(t, []release.HookDeletePolicy{release.HookBeforeHookCreation, release.HookSucceeded}, h.DeletePolicies, h.Name)
		order = append(order, h.Kind+" "+h.Name)
	}
	require.NotEmpty(t, order)
	assert.Equal(t, "Job weft-uninstall", order[len(order)-1], "Helm creates the Job last and waits for it: %v", order)
	assert.Len(t, order, 8)
}
