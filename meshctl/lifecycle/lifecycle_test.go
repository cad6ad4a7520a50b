package lifecycle

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/install"
	"github.com/weftmesh/weft/meshctl/internal/fakekube"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func plan(t *testing.T, v install.Values) Plan {
	t.Helper()
	p, err := NewPlan(v)
	require.NoError(t, err)
	return p
}

func names(objs []string, kind string) []string {
	var out []string
	for _, o := range objs {
		if strings.HasPrefix(o, kind+" ") {
			out = append(out, strings.TrimPrefix(o, kind+" "))
		}
	}
	return out
}

func TestPlanSplitsCRDsAndWorkloads(t *testing.T) {
	p := plan(t, install.Defaults())
	var crds []string
	for _, c := range p.CRDs {
		crds = append(crds, c.GetName())
	}
	assert.ElementsMatch(t, []string{
		"authorizationpolicies.mesh.weft.dev", "meshtlses.mesh.weft.dev", "trafficpolicies.mesh.weft.dev", "telemetries.mesh.weft.dev",
		"grpcroutes.gateway.networking.k8s.io", "httproutes.gateway.networking.k8s.io", "referencegrants.gateway.networking.k8s.io",
	}, crds)
	for _, o := range p.Objects {
		assert.NotEqual(t, "CustomResourceDefinition", o.GetKind())
	}
	assert.Equal(t, "Namespace", p.Objects[0].GetKind(), "the namespace is applied first")
	assert.ElementsMatch(t, []Workload{
		{"DaemonSet", Namespace, "weft-cni-node"}, {"DaemonSet", Namespace, "weft-proxy"},
		{"Deployment", Namespace, "weft-injector"}, {"Deployment", Namespace, "weft-pilot"},
	}, p.Workloads())
	assert.Equal(t, "DaemonSet weft-system/weft-proxy", Workload{"DaemonSet", Namespace, "weft-proxy"}.String())
	pilot, ok := p.Find("Deployment", "weft-pilot")
	require.True(t, ok)
	assert.Equal(t, Namespace, pilot.GetNamespace())
	all := p.All()
	assert.Len(t, all, len(p.CRDs)+len(p.Objects))
	assert.Equal(t, "CustomResourceDefinition", all[0].GetKind(), "CRDs are applied first")

	mesh := plan(t, components(install.Components{Mesh: true}))
	assert.Len(t, mesh.CRDs, 7)
	assert.ElementsMatch(t, []Workload{{"Deployment", Namespace, "weft-injector"}, {"Deployment", Namespace, "weft-pilot"}}, mesh.Workloads())

	noMesh := plan(t, components(install.Components{CNI: true}))
	assert.Empty(t, noMesh.CRDs, "the CRDs come with the mesh")
}

func components(c install.Components) install.Values {
	v := install.Defaults()
	v.Components = c
	return v
}

func TestReadValuesAndSet(t *testing.T) {
	v, err := ReadValues([]byte("tag: 1.2.0\n"), []string{"components.dns=true", "registry=ghcr.io/weft", "apiServerHost=10.0.0.1"})
	require.NoError(t, err)
	assert.Equal(t, "1.2.0", v.Tag)
	assert.True(t, v.Components.DNS)
	assert.True(t, v.Components.Mesh, "defaults stay")
	assert.Equal(t, "ghcr.io/weft/sidecar:1.2.0", v.Image("sidecar"))
	assert.Equal(t, "10.0.0.1", v.APIServerHost)

	v, err = ReadValues(nil, []string{"tag=1.0"})
	require.NoError(t, err)
	assert.Equal(t, "1.0", v.Tag, "a number-like tag stays a string")

	v, err = ReadValues(nil, []string{"pilot.replicas=2"})
	require.NoError(t, err)
	assert.Equal(t, 2, v.Pilot.Replicas, "a number value is set as a number")
	_, err = ReadValues(nil, []string{"pilot.replicas=two"})
	assert.EqualError(t, err, `--set pilot.replicas: "two" is not a number`)

	for set, msg := range map[string]string{
		"tag":                     `--set "tag": want key=value`,
		"components.mesh=maybe":   `--set components.mesh: "maybe" is not true or false`,
		"components=all":          "--set components: is a group of values; set one of its fields",
		"compnents.mesh=true":     `--set compnents.mesh: unknown value "compnents" (see install/helm/weft/values.yaml)`,
		"components.gateway=true": `--set components.gateway: unknown value "gateway" (see install/helm/weft/values.yaml)`,
	} {
		_, err := ReadValues(nil, []string{set})
		require.Error(t, err, set)
		assert.Equal(t, msg, err.Error())
	}
	_, err = ReadValues([]byte("tga: 1\n"), nil)
	require.Error(t, err, "a typo in the values file is an error")
}

func TestParseComponents(t *testing.T) {
	c, err := ParseComponents("mesh, proxy")
	require.NoError(t, err)
	assert.Equal(t, install.Components{Mesh: true, Proxy: true}, c)
	assert.Equal(t, "proxy,mesh", ComponentNames(c))
	c, err = ParseComponents("all")
	require.NoError(t, err)
	assert.Equal(t, "cni,proxy,dns,mesh", ComponentNames(c))
	_, err = ParseComponents("mesh,gateway")
	assert.EqualError(t, err, `--components: unknown component "gateway" (want cni, proxy, dns, mesh or all)`)
	_, err = ParseComponents(",")
	assert.EqualError(t, err, "--components: no component given")
}

func installer(c *fakekube.Cluster, a *fakekube.Applier, out *bytes.Buffer) *Installer {
	return New(Config{Kube: c.Kube, Dynamic: c.Dynamic, Applier: a, Out: out, Timeout: 500 * time.Millisecond, Poll: 10 * time.Millisecond})
}

func TestInstallAppliesCRDsFirstAndWaits(t *testing.T) {
	c := fakekube.New()
	a := &fakekube.Applier{C: c}
	var out bytes.Buffer
	p := plan(t, install.Defaults())
	require.NoError(t, installer(c, a, &out).Install(context.Background(), p))
	assert.Len(t, a.Applied, len(p.All()))
	for i, o := range a.Applied {
		assert.Equal(t, i < len(p.CRDs), strings.HasPrefix(o, "CustomResourceDefinition "), "CRDs first: %s", o)
	}
	assert.Less(t, slices.Index(a.Applied, "Namespace weft-system"), slices.Index(a.Applied, "Deployment weft-system/weft-pilot"))
	text := out.String()
	// Node agents are applied and ready before the Deployments are applied.
	var last int
	for _, want := range []string{"✓ 7 CRDs applied and established", "objects applied: node agents and shared objects (server-side, field manager meshctl)",
		"✓ DaemonSet weft-cni-node", "objects applied: control plane", "✓ Deployment weft-pilot", "✓ injection webhook has its CA bundle"} {
		i := strings.Index(text, want)
		require.GreaterOrEqual(t, i, 0, "missing %q in:\n%s", want, text)
		assert.Greater(t, i, last-1, "%q out of order in:\n%s", want, text)
		last = i
	}
	assert.Less(t, slices.Index(a.Applied, "DaemonSet weft-system/weft-proxy"), slices.Index(a.Applied, "Deployment weft-system/weft-pilot"))
	assert.Less(t, slices.Index(a.Applied, "Deployment weft-system/weft-injector"), slices.Index(a.Applied, "MutatingWebhookConfiguration weft-sidecar-injector"))
	assert.NotContains(t, text, "✗")
}

func TestInstallSaysWhichComponentIsNotReadyAndWhy(t *testing.T) {
	c := fakekube.New(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: "weft-pilot-6f7-abc", Labels: map[string]string{"app.kubernetes.io/name": "weft-pilot"}},
		Spec:       corev1.PodSpec{NodeName: "node-1"},
		Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{Name: "pilot",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image \"weft.local/pilot:dev\"\nmore"}}}}},
	})
	a := &fakekube.Applier{C: c, NotReady: map[string]bool{"Deployment weft-system/weft-pilot": true}}
	var out bytes.Buffer
	err := installer(c, a, &out).Install(context.Background(), plan(t, install.Defaults()))
	require.Error(t, err)
	assert.Equal(t, `not ready: Deployment weft-system/weft-pilot (0/1 ready): pod weft-pilot-6f7-abc on node-1: container pilot ImagePullBackOff: Back-off pulling image "weft.local/pilot:dev": timed out after 500ms`, err.Error())
	assert.Contains(t, out.String(), "✗ Deployment weft-pilot")
	assert.Contains(t, out.String(), "✓ Deployment weft-injector")
}

// installed is a fake cluster where the plan was applied, the mesh ran
// for a while (runtime objects, a meshed namespace) and someone else also
// manages the HTTPRoute CRD.
func installed(t *testing.T) (*fakekube.Cluster, *fakekube.Applier, Plan) {
	t.Helper()
	p := plan(t, install.Defaults())
	c := fakekube.New(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"weft-injection": "enabled"}}},
		fakekube.MeshedPod("shop", "web-1", "node-1", fakekube.SidecarImage, map[string]string{"app": "web"}),
		fakekube.PlainPod("shop", "job-1", nil),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: RootCertMap}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "app-config"}},
	)
	a := &fakekube.Applier{C: c}
	require.NoError(t, a.Apply(context.Background(), p.All()))
	ctx := context.Background()
	for _, s := range []string{CASecret, InjectorSecret, PluggedCASecret} {
		_, err := c.Kube.CoreV1().Secrets(Namespace).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: s}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	_, err := c.Kube.CoreV1().ConfigMaps(Namespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: RootCertMap}}, metav1.CreateOptions{})
	require.NoError(t, err)
	hr, err := c.Dynamic.Resource(fakekube.CRDs).Get(ctx, "httproutes.gateway.networking.k8s.io", metav1.GetOptions{})
	require.NoError(t, err)
	hr.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: FieldManager}, {Manager: "helm"}, {Manager: "kube-apiserver", Subresource: "status"}})
	_, err = c.Dynamic.Resource(fakekube.CRDs).Update(ctx, hr, metav1.UpdateOptions{})
	require.NoError(t, err)
	a.Applied = nil
	return c, a, p
}

func TestUninstallRemovesEverythingWeftCreated(t *testing.T) {
	c, a, p := installed(t)
	var out bytes.Buffer
	ctx := context.Background()
	left, err := installer(c, a, &out).Uninstall(ctx, p, UninstallOptions{})
	require.NoError(t, err, out.String())

	// Order: webhook, Deployments (pods on the pod network), node agents,
	// their cleanup, the rest, the CRDs.
	require.Greater(t, len(a.Deleted), 5)
	assert.Equal(t, "MutatingWebhookConfiguration weft-sidecar-injector", a.Deleted[0], "the webhook goes first")
	assert.ElementsMatch(t, []string{"Deployment weft-system/weft-pilot", "Deployment weft-system/weft-injector"}, a.Deleted[1:3], "pods on the pod network go while the CNI still works")
	assert.Equal(t, []string{"DaemonSet weft-system/weft-proxy", "DaemonSet weft-system/weft-cni-node"}, a.Deleted[3:5], "node agents stop before their cleanup")
	assert.Equal(t, []string{"DaemonSet weft-system/" + CleanupDaemonSetName}, a.Applied, "the cleanup DaemonSet is all uninstall applies")
	assert.Equal(t, "DaemonSet weft-system/"+CleanupDaemonSetName, a.Deleted[5])
	ns := slices.Index(a.Deleted, "Namespace weft-system")
	require.Contains(t, a.Deleted, "ServiceAccount weft-system/weft-pilot")
	assert.Greater(t, ns, slices.Index(a.Deleted, "ServiceAccount weft-system/weft-pilot"), "the namespace goes after what is in it")
	assert.ElementsMatch(t, []string{
		"referencegrants.gateway.networking.k8s.io", "grpcroutes.gateway.networking.k8s.io",
		"trafficpolicies.mesh.weft.dev", "meshtlses.mesh.weft.dev", "authorizationpolicies.mesh.weft.dev", "telemetries.mesh.weft.dev",
	}, names(a.Deleted, "CustomResourceDefinition"), "the shared HTTPRoute CRD is kept")
	assert.Equal(t, "CustomResourceDefinition", strings.Fields(a.Deleted[len(a.Deleted)-1])[0], "CRDs go last")
	for _, kind := range []string{"ClusterRole", "ClusterRoleBinding"} {
		assert.ElementsMatch(t, []string{"weft-cni-node", "weft-proxy", "weft-injector", "weft-pilot"}, names(a.Deleted, kind), kind)
	}

	// What is gone from the cluster.
	_, err = c.Kube.CoreV1().Namespaces().Get(ctx, Namespace, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "namespace weft-system: %v", err)
	_, err = c.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, WebhookName, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err))
	crds, err := c.Dynamic.Resource(fakekube.CRDs).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, crds.Items, 1)
	assert.Equal(t, "httproutes.gateway.networking.k8s.io", crds.Items[0].GetName())
	for _, s := range []string{CASecret, InjectorSecret} {
		_, err := c.Kube.CoreV1().Secrets(Namespace).Get(ctx, s, metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "secret %s", s)
	}
	_, err = c.Kube.CoreV1().ConfigMaps("shop").Get(ctx, RootCertMap, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "trust bundles go in every namespace")
	_, err = c.Kube.CoreV1().ConfigMaps("shop").Get(ctx, "app-config", metav1.GetOptions{})
	assert.NoError(t, err, "the user's config maps stay")
	_, err = c.Kube.AppsV1().DaemonSets(Namespace).Get(ctx, CleanupDaemonSetName, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the cleanup DaemonSet is removed again")

	// What is deliberately left, and said.
	assert.Equal(t, Leftovers{
		SidecarPods:        map[string]int{"shop": 1},
		LabelledNamespaces: []string{"shop"},
		KeptCRDs:           []string{"httproutes.gateway.networking.k8s.io (also managed by helm)"},
		PluggedCA:          true,
	}, left)
	assert.NotContains(t, out.String(), "✗")
}

func TestUninstallKeepsNamespaceForOtherComponents(t *testing.T) {
	c, a, _ := installed(t)
	mesh := plan(t, components(install.Components{Mesh: true}))
	var out bytes.Buffer
	_, err := installer(c, a, &out).Uninstall(context.Background(), mesh, UninstallOptions{KeepNamespace: true})
	require.NoError(t, err, out.String())
	assert.NotContains(t, a.Deleted, "Namespace weft-system")
	assert.NotContains(t, a.Deleted, "DaemonSet weft-system/weft-cni-node", "node agents are not the mesh's")
	assert.Empty(t, a.Applied, "no node cleanup without node agents")
	_, err = c.Kube.AppsV1().DaemonSets(Namespace).Get(context.Background(), "weft-proxy", metav1.GetOptions{})
	assert.NoError(t, err)
}

func TestNodeCleanupDaemonSet(t *testing.T) {
	ds, ok, err := NodeCleanupDaemonSet(plan(t, install.Defaults()))
	require.NoError(t, err)
	require.True(t, ok)
	spec := ds.Spec.Template.Spec
	require.Len(t, spec.InitContainers, 2)
	for i, agent := range []string{"weft-cni-node", "weft-proxy"} {
		ic := spec.InitContainers[i]
		assert.Equal(t, agent, ic.Name)
		assert.Equal(t, "--cleanup", ic.Args[len(ic.Args)-1])
		assert.Nil(t, ic.ReadinessProbe)
		assert.Empty(t, ic.Ports)
	}
	assert.True(t, spec.HostNetwork)
	assert.Equal(t, "weft.local/pause:dev", spec.Containers[0].Image)

	_, ok, err = NodeCleanupDaemonSet(plan(t, components(install.Components{Mesh: true})))
	require.NoError(t, err)
	assert.False(t, ok, "no node agents, nothing to clean on nodes")
}

func TestReadiness(t *testing.T) {
	one := int32(1)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Generation: 2}, Spec: appsv1.DeploymentSpec{Replicas: &one}}
	d.Status.ObservedGeneration = 1
	ok, text := DeploymentReady(d)
	assert.False(t, ok)
	assert.Equal(t, "waiting for the controller", text)
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: 2, UpdatedReplicas: 1, Replicas: 2, AvailableReplicas: 1}
	ok, text = DeploymentReady(d)
	assert.False(t, ok)
	assert.Equal(t, "rolling out: 1 old replicas terminating", text)
	d.Status.Replicas = 1
	ok, text = DeploymentReady(d)
	assert.True(t, ok)
	assert.Equal(t, "1/1 ready", text)

	ds := &appsv1.DaemonSet{}
	ok, text = DaemonSetReady(ds)
	assert.False(t, ok)
	assert.Equal(t, "no node to run on", text)
	ds.Status = appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberReady: 2}
	ok, text = DaemonSetReady(ds)
	assert.False(t, ok)
	assert.Equal(t, "2/3 nodes ready", text)
}
