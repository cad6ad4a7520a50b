package injector

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDecide(t *testing.T) {
	type labels = map[string]string
	cases := []struct {
		name        string
		ns, pod     labels
		hostNetwork bool
		revision    string
		want        Reason
		inject      bool
	}{
		{name: "enabled namespace", ns: labels{"weft-injection": "enabled"}, want: ReasonNamespaceEnabled, inject: true},
		{name: "disabled namespace", ns: labels{"weft-injection": "disabled"}, want: ReasonNamespaceDisabled},
		{name: "unlabelled namespace", want: ReasonNotSelected},
		{name: "nil namespace", ns: nil, want: ReasonNotSelected},
		{name: "unknown injection value", ns: labels{"weft-injection": "yes"}, want: ReasonNotSelected},
		{name: "pod opts out", ns: labels{"weft-injection": "enabled"}, pod: labels{"sidecar.weft.dev/inject": "false"}, want: ReasonPodOptOut},
		{name: "pod opts in", pod: labels{"sidecar.weft.dev/inject": "true"}, want: ReasonPodOptIn, inject: true},
		{name: "pod label overrides disabled namespace", ns: labels{"weft-injection": "disabled"}, pod: labels{"sidecar.weft.dev/inject": "true"}, want: ReasonPodOptIn, inject: true},
		{name: "unknown pod label value falls through", ns: labels{"weft-injection": "enabled"}, pod: labels{"sidecar.weft.dev/inject": "maybe"}, want: ReasonNamespaceEnabled, inject: true},
		{name: "host network beats everything", ns: labels{"weft-injection": "enabled"}, pod: labels{"sidecar.weft.dev/inject": "true"}, hostNetwork: true, want: ReasonHostNetwork},
		{name: "pod revision ours", pod: labels{"weft.dev/rev": "default"}, want: ReasonRevision, inject: true},
		{name: "pod revision other", ns: labels{"weft-injection": "enabled"}, pod: labels{"weft.dev/rev": "canary"}, want: ReasonOtherRevision},
		{name: "pod revision other beats opt-in", pod: labels{"weft.dev/rev": "canary", "sidecar.weft.dev/inject": "true"}, want: ReasonOtherRevision},
		{name: "opt-out beats pod revision", pod: labels{"weft.dev/rev": "default", "sidecar.weft.dev/inject": "false"}, want: ReasonPodOptOut},
		{name: "namespace revision ours", ns: labels{"weft.dev/rev": "default"}, want: ReasonRevision, inject: true},
		{name: "namespace revision other", ns: labels{"weft.dev/rev": "canary"}, want: ReasonOtherRevision},
		{name: "canary injector serves canary namespace", ns: labels{"weft.dev/rev": "canary"}, revision: "canary", want: ReasonRevision, inject: true},
		{name: "injection label wins over namespace revision", ns: labels{"weft-injection": "enabled", "weft.dev/rev": "canary"}, want: ReasonNamespaceEnabled, inject: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ns *corev1.Namespace
			if c.ns != nil || c.name != "nil namespace" {
				ns = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: c.ns}}
			}
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: c.pod}}
			pod.Spec.HostNetwork = c.hostNetwork
			rev := c.revision
			if rev == "" {
				rev = "default"
			}
			d := Decide(pod, ns, rev)
			assert.Equal(t, c.want, d.Reason, d.Detail)
			assert.Equal(t, c.inject, d.Inject, d.Detail)
			assert.NotEmpty(t, d.Detail)
		})
	}
}

func TestDecideDetectsInjectionByContainerAlone(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"weft-injection": "enabled"}}}
	for _, pod := range []*corev1.Pod{
		{Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: SidecarContainer}}}},
		{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: SidecarContainer}}}},
		{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"sidecar.weft.dev/status": "{}"}}},
	} {
		assert.Equal(t, ReasonAlreadyInjected, Decide(pod, ns, "default").Reason)
	}
}

func TestResolveResources(t *testing.T) {
	def := testConfig().Resources
	res, err := resolveResources(map[string]string{"proxy.weft.dev/memory-limit": "1Gi"}, def)
	require.NoError(t, err)
	assert.Equal(t, "10m", res.Requests.Cpu().String())
	assert.Equal(t, "40Mi", res.Requests.Memory().String())
	assert.Equal(t, "1Gi", res.Limits.Memory().String())
	assert.NotContains(t, res.Limits, corev1.ResourceCPU)

	_, err = resolveResources(map[string]string{"proxy.weft.dev/cpu": "500m", "proxy.weft.dev/cpu-limit": "200m"}, def)
	assert.ErrorContains(t, err, "proxy cpu limit 200m is below its request 500m")
	_, err = resolveResources(map[string]string{"proxy.weft.dev/memory": "-1Mi"}, def)
	assert.ErrorContains(t, err, "must not be negative")
	_, err = resolveResources(map[string]string{"proxy.weft.dev/memory": "0"}, def)
	require.NoError(t, err, "zero means: no request")

	_, err = ParseProxyResources("10m", "lots", "", "")
	assert.ErrorContains(t, err, `proxy memory "lots"`)
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	cfg := DefaultConfig()
	cfg.Image = ""
	assert.Error(t, cfg.Validate())
	cfg = DefaultConfig()
	cfg.ImagePullPolicy = "Sometimes"
	assert.ErrorContains(t, cfg.Validate(), "pull policy")
	cfg = DefaultConfig()
	res, err := ParseProxyResources("1", "", "500m", "")
	require.NoError(t, err)
	cfg.Resources = res
	assert.ErrorContains(t, cfg.Validate(), "default proxy resources")
}

func TestMutateRefusesWorkloadMountClash(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"weft-injection": "enabled"}}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "n"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Name: "app", VolumeMounts: []corev1.VolumeMount{{Name: "spire", MountPath: WorkloadSocketDir}},
	}}}}
	_, err := Mutate(pod, ns, testConfig())
	assert.ErrorContains(t, err, `inject pod n/p: container "app" already mounts /var/run/weft/workload`)

	pod.Spec.Containers[0].VolumeMounts = nil
	pod.Annotations = map[string]string{"sidecar.weft.dev/rewrite-app-probers": "nah"}
	_, err = Mutate(pod, ns, testConfig())
	assert.ErrorContains(t, err, "rewrite-app-probers")
}
