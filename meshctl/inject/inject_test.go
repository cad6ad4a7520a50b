package inject

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/api/annotation"
	"github.com/weftmesh/weft/injector"
	"github.com/weftmesh/weft/install"
	"github.com/weftmesh/weft/meshctl/internal/golden"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

func config(t *testing.T) injector.Config {
	t.Helper()
	cfg := ConfigFromValues(install.Defaults())
	require.NoError(t, cfg.Validate())
	return cfg
}

func manifest(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/app.yaml")
	require.NoError(t, err)
	return b
}

func byKind(t *testing.T, objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind {
			return o
		}
	}
	t.Fatalf("no %s", kind)
	return nil
}

// webhook is what the injection webhook admits for pod in namespace shop,
// labelled weft-injection=enabled.
func webhook(t *testing.T, pod *corev1.Pod, cfg injector.Config) *corev1.Pod {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{annotation.InjectionLabel: annotation.InjectionEnabled}}}
	res, err := injector.Mutate(pod, ns, cfg)
	require.NoError(t, err)
	require.NotNil(t, res.Status, "the webhook injects %s", pod.Name)
	return res.Pod
}

func TestStreamGolden(t *testing.T) {
	objs, outcomes, err := Stream(manifest(t), config(t))
	require.NoError(t, err)
	assert.Equal(t, []Outcome{
		{Object: "Deployment shop/web", Injected: true, Reason: "namespace label weft-injection=enabled"},
		{Object: "Pod shop/debug", Injected: true, Reason: "namespace label weft-injection=enabled"},
		{Object: "Job shop/migrate", Injected: false, Reason: "pod label sidecar.weft.dev/inject=false"},
	}, outcomes)
	y, err := YAML(objs)
	require.NoError(t, err)
	golden.Check(t, "app.injected.yaml", y)
	j, err := JSON(objs)
	require.NoError(t, err)
	golden.Check(t, "app.injected.json", j)
}

func TestPodSameAsWebhook(t *testing.T) {
	cfg := config(t)
	in, err := install.Decode(manifest(t))
	require.NoError(t, err)
	var pod corev1.Pod
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(byKind(t, in, "Pod").Object, &pod))
	want := webhook(t, &pod, cfg)

	objs, _, err := Stream(manifest(t), cfg)
	require.NoError(t, err)
	var got corev1.Pod
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(byKind(t, objs, "Pod").Object, &got))
	assert.Empty(t, cmp.Diff(want.Spec, got.Spec), "spec differs from the webhook's")
	assert.Equal(t, want.Annotations, got.Annotations)
	assert.Equal(t, want.Labels, got.Labels)
	assert.Equal(t, injector.SidecarContainer, got.Spec.InitContainers[0].Name)
	st, err := annotation.ParseStatus(got.Annotations[annotation.StatusAnnotation])
	require.NoError(t, err)
	assert.Equal(t, "weft.local/sidecar:dev", st.Image)
}

func TestDeploymentTemplateSameAsWebhook(t *testing.T) {
	cfg := config(t)
	in, err := install.Decode(manifest(t))
	require.NoError(t, err)
	raw, _, err := unstructured.NestedMap(byKind(t, in, "Deployment").Object, "spec", "template")
	require.NoError(t, err)
	var tmpl corev1.PodTemplateSpec
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &tmpl))
	want := webhook(t, &corev1.Pod{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec}, cfg)

	objs, _, err := Stream(manifest(t), cfg)
	require.NoError(t, err)
	raw, _, err = unstructured.NestedMap(byKind(t, objs, "Deployment").Object, "spec", "template")
	require.NoError(t, err)
	var got corev1.PodTemplateSpec
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &got))
	assert.Empty(t, cmp.Diff(want.Spec, got.Spec), "template differs from the webhook's pod")
	assert.Equal(t, want.Annotations, got.Annotations)
	// The probe now goes through the agent, as the webhook rewrites it.
	assert.NotEqual(t, "/healthz", got.Spec.Containers[0].ReadinessProbe.HTTPGet.Path)
	// Fields outside the template are the user's.
	replicas, _, _ := unstructured.NestedFieldNoCopy(byKind(t, objs, "Deployment").Object, "spec", "replicas")
	assert.EqualValues(t, 2, replicas)
	_, found, _ := unstructured.NestedFieldNoCopy(raw, "metadata", "namespace")
	assert.False(t, found, "the template gets no namespace")
}

func TestInjectingTwiceChangesNothing(t *testing.T) {
	cfg := config(t)
	once, _, err := Stream(manifest(t), cfg)
	require.NoError(t, err)
	first, err := YAML(once)
	require.NoError(t, err)
	twice, outcomes, err := Stream(first, cfg)
	require.NoError(t, err)
	second, err := YAML(twice)
	require.NoError(t, err)
	assert.Equal(t, string(first), string(second))
	for _, o := range outcomes {
		assert.False(t, o.Injected, o.Object)
	}
	assert.Equal(t, "pod already has weft-sidecar", outcomes[0].Reason)
}

func TestObjectsWithoutPodsPassThrough(t *testing.T) {
	in, err := install.Decode(manifest(t))
	require.NoError(t, err)
	objs, _, err := Stream(manifest(t), config(t))
	require.NoError(t, err)
	require.Len(t, objs, len(in))
	for i, o := range objs {
		switch o.GetKind() {
		case "ConfigMap", "Service", "Job":
			assert.Empty(t, cmp.Diff(in[i].Object, o.Object), "%s changed", o.GetKind())
		default:
			assert.NotEqual(t, in[i].Object, o.Object, "%s not injected", o.GetKind())
		}
	}
}

func TestListItemsAreInjected(t *testing.T) {
	list := []byte(`{"apiVersion":"v1","kind":"List","items":[
	  {"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"containers":[{"name":"c","image":"x"}]}},
	  {"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"}}]}`)
	objs, outcomes, err := Stream(list, config(t))
	require.NoError(t, err)
	require.Len(t, outcomes, 1)
	assert.True(t, outcomes[0].Injected)
	items, _, _ := unstructured.NestedSlice(objs[0].Object, "items")
	ics, _, _ := unstructured.NestedSlice(items[0].(map[string]any), "spec", "initContainers")
	assert.Len(t, ics, 1)
	assert.Equal(t, map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "s"}}, items[1])
}

func TestBadInput(t *testing.T) {
	_, _, err := Stream([]byte("kind: Pod\nspec: {}\n"), config(t))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no kind/apiVersion")

	_, _, err = Stream([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: 7}\n"), config(t))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Pod x")
}
