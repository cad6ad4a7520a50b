package install

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// render renders v and decodes the stream.
func render(t *testing.T, v Values) []*unstructured.Unstructured {
	t.Helper()
	out, err := Render(v)
	require.NoError(t, err)
	objs, err := Decode(out)
	require.NoError(t, err)
	return objs
}

func name(o *unstructured.Unstructured) string {
	return o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
}

// renderHooks renders v's Helm hooks and decodes them.
func renderHooks(t *testing.T, v Values) []*unstructured.Unstructured {
	t.Helper()
	out, err := RenderHooks(v)
	require.NoError(t, err)
	objs, err := Decode(out)
	require.NoError(t, err)
	return objs
}

// kinds lists "Kind namespace/name" of every rendered object.
func kinds(t *testing.T, v Values) []string {
	t.Helper()
	var names []string
	for _, o := range render(t, v) {
		names = append(names, name(o))
	}
	return names
}

// find returns the rendered object of a kind and name, converted to T.
func find[T any](t *testing.T, objs []*unstructured.Unstructured, kind, ns, objName string) *T {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetNamespace() == ns && o.GetName() == objName {
			out := new(T)
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, out))
			return out
		}
	}
	require.Failf(t, "object not rendered", "%s %s/%s", kind, ns, objName)
	return nil
}

// localClusterValues are what tests/cluster installs (.cache/cluster/values.yaml).
func localClusterValues() Values {
	v := Defaults()
	v.PullPolicy = "Never"
	v.APIServerHost, v.APIServerPort = "172.20.0.1", "6443"
	v.Components.DNS = true
	v.CNI = CNIValues{BinDir: "/s/cni/bin", ConfDir: "/s/nodes", PerNodeDirs: true, IPAMDir: "/s/nodes/$(NODE_NAME)/cni/ipam", IPAMMount: "/s/nodes"}
	return v
}

func TestRenderDefaults(t *testing.T) {
	names := kinds(t, Defaults())
	assert.Equal(t, "Namespace /weft-system", names[0], "the namespace comes first")
	assert.Equal(t, "MutatingWebhookConfiguration /weft-sidecar-injector", names[len(names)-1], "the webhook comes last")
	assert.Contains(t, names, "DaemonSet weft-system/weft-cni-node")
	assert.Contains(t, names, "DaemonSet weft-system/weft-proxy")
	assert.Contains(t, names, "Deployment weft-system/weft-pilot")
	assert.NotContains(t, names, "Deployment kube-system/coredns", "DNS is off by default: real clusters bring their own")
	assert.NotContains(t, strings.Join(names, "\n"), "PodDisruptionBudget", "one replica gets no PodDisruptionBudget")
}

func TestRenderOrderIsStableAndHeaded(t *testing.T) {
	a, err := Render(localClusterValues())
	require.NoError(t, err)
	b, err := Render(localClusterValues())
	require.NoError(t, err)
	assert.Equal(t, string(a), string(b))
	docs := strings.Split(string(a), "---\n")[1:]
	for _, d := range docs {
		assert.True(t, strings.HasPrefix(d, "# Source: weft/"), "document without a source header:\n%.200s", d)
	}
	rank := map[string]int{}
	for i, k := range kindOrder {
		rank[k] = i
	}
	last := 0
	for _, o := range render(t, localClusterValues()) {
		r, ok := rank[o.GetKind()]
		require.True(t, ok, "%s: kind missing from kindOrder", name(o))
		assert.GreaterOrEqual(t, r, last, "%s out of order", name(o))
		last = r
	}
}

func TestRenderComponentsCanBeTurnedOff(t *testing.T) {
	v := Defaults()
	v.Components = Components{}
	assert.Equal(t, []string{"Namespace /weft-system"}, kinds(t, v))
}

func TestRenderMeshOnly(t *testing.T) {
	v := Defaults()
	v.Components = Components{Mesh: true}
	for _, n := range kinds(t, v) {
		for _, node := range []string{"cni-node", "weft-proxy", "coredns", "kube-dns"} {
			assert.NotContains(t, n, node, "a mesh-only install renders %s", n)
		}
	}
}

func TestRenderLocalClusterValues(t *testing.T) {
	objs := render(t, localClusterValues())
	cni := find[appsv1.DaemonSet](t, objs, "DaemonSet", "weft-system", "weft-cni-node").Spec.Template.Spec.Containers[0]
	assert.Contains(t, cni.Args, "--ipam-data-dir=/s/nodes/$(NODE_NAME)/cni/ipam")
	assert.Contains(t, cni.Args, "--host-cni-conf-dir=/s/nodes/$(NODE_NAME)/cni/net.d")
	assert.Contains(t, cni.VolumeMounts, corev1.VolumeMount{Name: "cni-conf", MountPath: "/host/etc/cni/net.d", SubPathExpr: "$(NODE_NAME)/cni/net.d"})
	assert.Equal(t, corev1.PullNever, cni.ImagePullPolicy)
	apiServer := []corev1.EnvVar{{Name: "KUBERNETES_SERVICE_HOST", Value: "172.20.0.1"}, {Name: "KUBERNETES_SERVICE_PORT", Value: "6443"}}
	for _, w := range []struct{ kind, ns, name string }{
		{"DaemonSet", "weft-system", "weft-cni-node"}, {"DaemonSet", "weft-system", "weft-proxy"},
		{"Deployment", "weft-system", "weft-pilot"}, {"Deployment", "weft-system", "weft-injector"},
		{"Deployment", "kube-system", "coredns"},
	} {
		spec := podSpec(t, objs, w.kind, w.ns, w.name)
		assert.Subset(t, spec.Containers[0].Env, apiServer, "%s %s talks to the API server directly", w.kind, w.name)
	}
	dns := find[corev1.Service](t, objs, "Service", "kube-system", "kube-dns")
	assert.Equal(t, "10.96.0.10", dns.Spec.ClusterIP)
}

func TestRenderWithoutAPIServerHostLeavesTheEnvAlone(t *testing.T) {
	v := Defaults()
	v.Components.DNS = true
	objs := render(t, v)
	for _, o := range objs {
		if o.GetKind() == "DaemonSet" || o.GetKind() == "Deployment" {
			for _, e := range podSpec(t, objs, o.GetKind(), o.GetNamespace(), o.GetName()).Containers[0].Env {
				assert.NotEqual(t, "KUBERNETES_SERVICE_HOST", e.Name, name(o))
			}
		}
	}
	assert.Empty(t, podSpec(t, objs, "Deployment", "kube-system", "coredns").Containers[0].Env)
	cni := podSpec(t, objs, "DaemonSet", "weft-system", "weft-cni-node").Containers[0]
	assert.Contains(t, cni.Args, "--host-cni-conf-dir=/etc/cni/net.d")
	for _, m := range cni.VolumeMounts {
		assert.Empty(t, m.SubPathExpr)
	}
}

func TestRenderNonDefaultValues(t *testing.T) {
	v := Defaults()
	v.Registry, v.Tag, v.TrustDomain, v.LogLevel = "ghcr.io/weftmesh", "v0.1.0", "example.org", "debug"
	v.Pilot.Replicas, v.Injector.Replicas = 3, 2
	v.Pilot.WorkloadCertTTL, v.Pilot.RootCertTTL = "1h", "8760h"
	v.Pilot.Resources.Limits = ResourceList{CPU: "2", Memory: "1Gi"}
	v.Injector.Resources.Limits.Memory = "" // unset a default
	objs := render(t, v)

	pilot := find[appsv1.Deployment](t, objs, "Deployment", "weft-system", "weft-pilot")
	assert.EqualValues(t, 3, *pilot.Spec.Replicas)
	c := pilot.Spec.Template.Spec.Containers[0]
	assert.Equal(t, "ghcr.io/weftmesh/pilot:v0.1.0", c.Image)
	assert.Subset(t, c.Args, []string{"--trust-domain=example.org", "--cert-ttl=1h", "--max-cert-ttl=1h", "--root-ttl=8760h"})
	assert.Equal(t, "2", c.Resources.Limits.Cpu().String())
	assert.Equal(t, "1Gi", c.Resources.Limits.Memory().String())
	assert.Equal(t, "50m", c.Resources.Requests.Cpu().String())

	injector := find[appsv1.Deployment](t, objs, "Deployment", "weft-system", "weft-injector")
	assert.EqualValues(t, 2, *injector.Spec.Replicas)
	ic := injector.Spec.Template.Spec.Containers[0]
	assert.Contains(t, ic.Args, "-v", "logLevel debug turns on the injector's debug logging")
	assert.Contains(t, ic.Args, "--sidecar-image=ghcr.io/weftmesh/sidecar:v0.1.0")
	assert.Empty(t, ic.Resources.Limits, "an empty quantity unsets the default limit")

	for _, n := range []string{"weft-pilot", "weft-injector"} {
		pdb := find[map[string]any](t, objs, "PodDisruptionBudget", "weft-system", n)
		spec := (*pdb)["spec"].(map[string]any)
		assert.EqualValues(t, 1, spec["minAvailable"], n)
		assert.Equal(t, map[string]any{"app.kubernetes.io/name": n}, spec["selector"].(map[string]any)["matchLabels"], n)
	}
	v.Components.Mesh = false
	assert.NotContains(t, strings.Join(kinds(t, v), "\n"), "PodDisruptionBudget")

	def := render(t, Defaults())
	assert.NotContains(t, podSpec(t, def, "Deployment", "weft-system", "weft-injector").Containers[0].Args, "-v")
}

func TestRenderTelemetryEndpoint(t *testing.T) {
	v := Defaults()
	v.Components.DNS = true
	v.Telemetry.OTLPEndpoint = "http://otel-collector.observability:4317"
	objs := render(t, v)
	otlp := corev1.EnvVar{Name: "OTEL_EXPORTER_OTLP_ENDPOINT", Value: v.Telemetry.OTLPEndpoint}
	for _, w := range [][3]string{
		{"DaemonSet", "weft-system", "weft-cni-node"}, {"DaemonSet", "weft-system", "weft-proxy"},
		{"Deployment", "weft-system", "weft-pilot"}, {"Deployment", "weft-system", "weft-injector"},
	} {
		assert.Contains(t, podSpec(t, objs, w[0], w[1], w[2]).Containers[0].Env, otlp, w[2])
	}
	assert.Empty(t, podSpec(t, objs, "Deployment", "kube-system", "coredns").Containers[0].Env, "CoreDNS has no OTLP exporter")
	def := render(t, Defaults())
	for _, o := range def {
		if o.GetKind() == "DaemonSet" || o.GetKind() == "Deployment" {
			for _, e := range podSpec(t, def, o.GetKind(), o.GetNamespace(), o.GetName()).Containers[0].Env {
				assert.NotEqual(t, otlp.Name, e.Name, "%s: OTLP endpoint set without telemetry.otlpEndpoint", name(o))
			}
		}
	}
}

func podSpec(t *testing.T, objs []*unstructured.Unstructured, kind, ns, n string) corev1.PodSpec {
	t.Helper()
	switch kind {
	case "DaemonSet":
		return find[appsv1.DaemonSet](t, objs, kind, ns, n).Spec.Template.Spec
	case "Job":
		return find[batchv1.Job](t, objs, kind, ns, n).Spec.Template.Spec
	}
	return find[appsv1.Deployment](t, objs, kind, ns, n).Spec.Template.Spec
}

// TestWorkloadsAreProbedAndSpread: every container of every workload has
// readiness and liveness probes, and the control plane's replicas prefer
// different nodes.
func TestWorkloadsAreProbedAndSpread(t *testing.T) {
	v := Defaults()
	v.Components.DNS = true
	objs := render(t, v)
	for _, o := range objs {
		if o.GetKind() != "DaemonSet" && o.GetKind() != "Deployment" {
			continue
		}
		spec := podSpec(t, objs, o.GetKind(), o.GetNamespace(), o.GetName())
		for _, c := range spec.Containers {
			assert.NotNil(t, c.ReadinessProbe, "%s container %s has no readiness probe", name(o), c.Name)
			assert.NotNil(t, c.LivenessProbe, "%s container %s has no liveness probe", name(o), c.Name)
			assert.NotEmpty(t, c.Resources.Requests, "%s container %s requests nothing", name(o), c.Name)
		}
		if o.GetKind() == "Deployment" {
			require.NotNil(t, spec.Affinity, name(o))
			require.NotNil(t, spec.Affinity.PodAntiAffinity, name(o))
			terms := spec.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution
			require.Len(t, terms, 1, name(o))
			assert.Equal(t, "kubernetes.io/hostname", terms[0].PodAffinityTerm.TopologyKey)
		}
	}
}

func TestDecodeRejectsObjectsWithoutKind(t *testing.T) {
	_, err := Decode([]byte("metadata: {name: x}\n"))
	assert.ErrorContains(t, err, "no kind")
}

func TestRenderShipsTheMeshCRDsWithTheMesh(t *testing.T) {
	names := kinds(t, Defaults())
	for _, crd := range []string{
		"meshtlses.mesh.weft.dev", "trafficpolicies.mesh.weft.dev", "authorizationpolicies.mesh.weft.dev", "telemetries.mesh.weft.dev",
		"httproutes.gateway.networking.k8s.io", "grpcroutes.gateway.networking.k8s.io", "referencegrants.gateway.networking.k8s.io",
	} {
		assert.Contains(t, names, "CustomResourceDefinition /"+crd)
	}
	assert.Equal(t, "CustomResourceDefinition", strings.Fields(names[1])[0], "CRDs come right after the namespace")
	assert.Contains(t, names, "Deployment weft-system/weft-pilot")
	assert.Contains(t, names, "MutatingWebhookConfiguration /weft-sidecar-injector")
	v := Defaults()
	v.Components.Mesh = false
	assert.NotContains(t, strings.Join(kinds(t, v), "\n"), "CustomResourceDefinition")
}
