package lifecycle

import (
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// CleanupDaemonSetName is the short-lived DaemonSet that undoes what the
// node agents did on every node.
const CleanupDaemonSetName = "weft-node-cleanup"

// Node agents of the plan and the flag that makes each undo its work and
// exit: weft-cni-node removes the conflist, the plugin binaries, its
// routes and its masquerade chain; weft-proxy removes every WEFT- chain
// it owns (docs/iptables.md).
var nodeAgents = []struct{ daemonSet, flag string }{
	{"weft-cni-node", "--cleanup"},
	{"weft-proxy", "--cleanup"},
}

// NodeCleanupDaemonSet builds the DaemonSet that runs the node agents of
// the plan in cleanup mode on every node: one init container per agent,
// with the agent's own image, arguments, environment, privileges and host
// mounts (so the paths are exactly those it installed to), and a pause
// container that keeps the pod Ready once the init containers succeeded.
// ok is false when the plan has no node agent.
func NodeCleanupDaemonSet(p Plan) (ds *appsv1.DaemonSet, ok bool, err error) {
	var inits []corev1.Container
	var volumes []corev1.Volume
	for _, a := range nodeAgents {
		obj, found := p.Find("DaemonSet", a.daemonSet)
		if !found {
			continue
		}
		var agent appsv1.DaemonSet
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &agent); err != nil {
			return nil, false, fmt.Errorf("decode %s: %w", a.daemonSet, err)
		}
		spec := agent.Spec.Template.Spec
		if len(spec.Containers) == 0 {
			continue
		}
		c := spec.Containers[0]
		c.Name = a.daemonSet
		c.Args = append(slices.Clone(c.Args), a.flag)
		c.Ports, c.ReadinessProbe, c.LivenessProbe, c.StartupProbe = nil, nil, nil, nil
		inits = append(inits, c)
		for _, v := range spec.Volumes {
			if !slices.ContainsFunc(volumes, func(x corev1.Volume) bool { return x.Name == v.Name }) {
				volumes = append(volumes, v)
			}
		}
	}
	if len(inits) == 0 {
		return nil, false, nil
	}
	labels := map[string]string{"app.kubernetes.io/part-of": "weft", "app.kubernetes.io/name": CleanupDaemonSetName}
	grace := int64(1)
	automount := false
	ds = &appsv1.DaemonSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: metav1.ObjectMeta{Name: CleanupDaemonSetName, Namespace: Namespace, Labels: labels},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": CleanupDaemonSetName}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					HostNetwork:                   true,
					PriorityClassName:             "system-node-critical",
					Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					TerminationGracePeriodSeconds: &grace,
					AutomountServiceAccountToken:  &automount,
					InitContainers:                inits,
					Containers: []corev1.Container{{
						Name: "done", Image: p.Values.Image("pause"),
						ImagePullPolicy: corev1.PullPolicy(p.Values.PullPolicy),
					}},
					Volumes: volumes,
				},
			},
		},
	}
	return ds, true, nil
}

// toUnstructured converts a typed object for the Applier.
func toUnstructured(obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", obj, err)
	}
	u := &unstructured.Unstructured{Object: m}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "spec", "template", "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	return u, nil
}
