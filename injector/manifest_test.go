package injector

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/install"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// renderedWebhookConfig renders the install manifests and returns the
// injector's MutatingWebhookConfiguration and the names of all objects.
func renderedWebhookConfig(t *testing.T) (*admissionregistrationv1.MutatingWebhookConfiguration, []string) {
	t.Helper()
	out, err := install.Render(install.Defaults())
	require.NoError(t, err)
	objs, err := install.Decode(out)
	require.NoError(t, err)
	var mwc *admissionregistrationv1.MutatingWebhookConfiguration
	var names []string
	for _, o := range objs {
		names = append(names, o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName())
		if o.GetKind() == "MutatingWebhookConfiguration" && o.GetName() == DefaultWebhookConfigName {
			mwc = &admissionregistrationv1.MutatingWebhookConfiguration{}
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, mwc))
		}
	}
	require.NotNil(t, mwc, "no %s in the rendered manifests", DefaultWebhookConfigName)
	return mwc, names
}

func TestManifestObjects(t *testing.T) {
	mwc, names := renderedWebhookConfig(t)
	for _, want := range []string{
		"ServiceAccount weft-system/weft-injector", "ClusterRole /weft-injector", "ClusterRoleBinding /weft-injector",
		"Role weft-system/weft-injector", "RoleBinding weft-system/weft-injector",
		"Service weft-system/weft-injector", "Deployment weft-system/weft-injector",
	} {
		assert.Contains(t, names, want)
	}
	require.Len(t, mwc.Webhooks, 4)
	for _, w := range mwc.Webhooks {
		assert.Empty(t, w.ClientConfig.CABundle, "%s: caBundle is the injector's to set", w.Name)
		require.NotNil(t, w.ClientConfig.Service)
		assert.Equal(t, DefaultServiceName, w.ClientConfig.Service.Name)
		assert.Equal(t, InjectPath, *w.ClientConfig.Service.Path)
		assert.EqualValues(t, 443, *w.ClientConfig.Service.Port)
		assert.Equal(t, admissionregistrationv1.Fail, *w.FailurePolicy)
		assert.Equal(t, admissionregistrationv1.IfNeededReinvocationPolicy, *w.ReinvocationPolicy)
		assert.Equal(t, admissionregistrationv1.SideEffectClassNone, *w.SideEffects)
		assert.EqualValues(t, 10, *w.TimeoutSeconds)
		assert.Equal(t, []string{"v1"}, w.AdmissionReviewVersions)
		require.Len(t, w.Rules, 1)
		assert.Equal(t, []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, w.Rules[0].Operations)
		assert.Equal(t, []string{"pods"}, w.Rules[0].Resources)
	}

	v := install.Defaults()
	v.Components.Mesh = false
	out, err := install.Render(v)
	require.NoError(t, err)
	assert.NotContains(t, string(out), "weft-injector")
}

// TestWebhookSelectorsAgreeWithDecide walks every combination of the
// labels that matter and checks the API server would send each pod to at
// most one webhook, and always to one when Decide would inject it (outside
// namespaces that are deliberately never sent).
func TestWebhookSelectorsAgreeWithDecide(t *testing.T) {
	mwc, _ := renderedWebhookConfig(t)
	type hook struct {
		name    string
		ns, obj labels.Selector
	}
	var hooks []hook
	for _, w := range mwc.Webhooks {
		ns, err := metav1.LabelSelectorAsSelector(w.NamespaceSelector)
		require.NoError(t, err)
		obj, err := metav1.LabelSelectorAsSelector(w.ObjectSelector)
		require.NoError(t, err)
		hooks = append(hooks, hook{w.Name, ns, obj})
	}
	values := func(key string, vs ...string) []map[string]string {
		out := []map[string]string{{}}
		for _, v := range vs {
			out = append(out, map[string]string{key: v})
		}
		return out
	}
	merge := func(a, b map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range a {
			m[k] = v
		}
		for k, v := range b {
			m[k] = v
		}
		return m
	}
	checked := 0
	for _, nsName := range []string{"shop", "kube-system"} {
		for _, nsInj := range values("weft-injection", "enabled", "disabled", "yes") {
			for _, nsRev := range values("weft.dev/rev", "default", "canary") {
				for _, podInj := range values("sidecar.weft.dev/inject", "true", "false", "maybe") {
					for _, podRev := range values("weft.dev/rev", "default", "canary") {
						nsLabels := merge(merge(nsInj, nsRev), map[string]string{"kubernetes.io/metadata.name": nsName})
						podLabels := merge(podInj, podRev)
						var matched []string
						for _, h := range hooks {
							if h.ns.Matches(labels.Set(nsLabels)) && h.obj.Matches(labels.Set(podLabels)) {
								matched = append(matched, h.name)
							}
						}
						ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsName, Labels: nsLabels}}
						pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: podLabels}}
						d := Decide(pod, ns, "default")
						assert.LessOrEqual(t, len(matched), 1, "ns %v pod %v sent to %v", nsLabels, podLabels, matched)
						neverSent := nsName == "kube-system" || nsLabels["weft-injection"] == "disabled"
						if d.Inject && !neverSent {
							assert.Len(t, matched, 1, "ns %v pod %v: Decide injects (%s) but no webhook sends it", nsLabels, podLabels, d.Detail)
						}
						if neverSent {
							assert.Empty(t, matched, "ns %v must never be sent", nsLabels)
						}
						checked++
					}
				}
			}
		}
	}
	assert.Equal(t, 2*4*3*4*3, checked)
}

// injectorArgs renders the chart with v and returns weft-injector's args.
func injectorArgs(t *testing.T, v install.Values) []string {
	t.Helper()
	out, err := install.Render(v)
	require.NoError(t, err)
	objs, err := install.Decode(out)
	require.NoError(t, err)
	for _, o := range objs {
		if o.GetKind() == "Deployment" && o.GetName() == "weft-injector" {
			var d appsv1.Deployment
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d))
			return d.Spec.Template.Spec.Containers[0].Args
		}
	}
	t.Fatal("no weft-injector Deployment")
	return nil
}

// TestManifestSidecarOTLPEndpoint: the chart tells the injector the
// collector its components use, so injected agents export there too, and
// nothing when there is none.
func TestManifestSidecarOTLPEndpoint(t *testing.T) {
	const flag = "--sidecar-otlp-endpoint="
	for _, arg := range injectorArgs(t, install.Defaults()) {
		assert.NotContains(t, arg, flag, "no collector, no endpoint for the sidecars")
	}
	v := install.Defaults()
	v.Telemetry.Collector.Enabled = true
	assert.Contains(t, injectorArgs(t, v), flag+"http://weft-otel-collector.weft-system.svc.cluster.local:4317")
	v.Telemetry.OTLPEndpoint = "http://otel.observability:4317"
	assert.Contains(t, injectorArgs(t, v), flag+v.Telemetry.OTLPEndpoint, "telemetry.otlpEndpoint wins")
}
