// Package nodecleanup undoes on every node what Weft's node agents did
// there (CNI conflist and plugins, routes, masquerade and Service chains,
// the NetworkPolicy table): it runs each agent once more, in cleanup mode,
// through a short-lived DaemonSet. `meshctl uninstall` builds that
// DaemonSet from the rendered chart (DaemonSet); the chart's Helm
// pre-delete hook, command weft-uninstall, builds it from the live agents
// and runs the whole sequence (Run), so `helm uninstall` cleans nodes the
// same way.
package nodecleanup

import (
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DaemonSetName is the short-lived DaemonSet that runs the cleanup.
const DaemonSetName = "weft-node-cleanup"

// Agent is a node agent's DaemonSet and the flag that makes the agent undo
// its work and exit.
type Agent struct {
	DaemonSet string
	Flag      string
}

// Agents are Weft's node agents in cleanup order: weft-cni-node removes
// the conflist, the plugin binaries, its routes, its masquerade chain and
// the NetworkPolicy table; weft-proxy removes every WEFT- chain it owns
// (docs/iptables.md).
var Agents = []Agent{
	{DaemonSet: "weft-cni-node", Flag: "--cleanup"},
	{DaemonSet: "weft-proxy", Flag: "--cleanup"},
}

// Found is an agent with its DaemonSet as installed (rendered or live).
type Found struct {
	Agent     Agent
	DaemonSet *appsv1.DaemonSet
}

// DaemonSetConfig is what the cleanup DaemonSet is made of.
type DaemonSetConfig struct {
	Namespace string
	Agents    []Found
	// PauseImage keeps each pod Ready once its init containers succeeded.
	PauseImage string
	PullPolicy corev1.PullPolicy
}

// DaemonSet builds the cleanup DaemonSet: one init container per agent,
// with the agent's own image, command, arguments (plus its cleanup flag),
// environment, privileges and host mounts, so the paths are exactly those
// it installed to, and a pause container that keeps the pod Ready once the
// init containers succeeded. The pods use no ServiceAccount token: cleanup
// mode never calls the API server. ok is false when no agent has a
// container.
func DaemonSet(cfg DaemonSetConfig) (ds *appsv1.DaemonSet, ok bool) {
	var inits []corev1.Container
	var volumes []corev1.Volume
	for _, a := range cfg.Agents {
		spec := a.DaemonSet.Spec.Template.Spec
		if len(spec.Containers) == 0 {
			continue
		}
		c := *spec.Containers[0].DeepCopy()
		c.Name = a.Agent.DaemonSet
		c.Args = append(c.Args, a.Agent.Flag)
		c.Ports, c.ReadinessProbe, c.LivenessProbe, c.StartupProbe = nil, nil, nil, nil
		inits = append(inits, c)
		for _, v := range spec.Volumes {
			if !slices.ContainsFunc(volumes, func(x corev1.Volume) bool { return x.Name == v.Name }) {
				volumes = append(volumes, *v.DeepCopy())
			}
		}
	}
	if len(inits) == 0 {
		return nil, false
	}
	labels := map[string]string{"app.kubernetes.io/part-of": "weft", "app.kubernetes.io/name": DaemonSetName}
	grace := int64(1)
	automount := false
	ds = &appsv1.DaemonSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: metav1.ObjectMeta{Name: DaemonSetName, Namespace: cfg.Namespace, Labels: labels},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": DaemonSetName}},
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
						Name: "done", Image: cfg.PauseImage, ImagePullPolicy: cfg.PullPolicy,
					}},
					Volumes: volumes,
				},
			},
		},
	}
	return ds, true
}

// PauseLabel is a node label no node carries: while the cleanup
// DaemonSet's node selector asks for it, the DaemonSet exists (so a retry
// finds it after the agents it was built from are gone) but runs nowhere.
const PauseLabel = "weft.dev/node-cleanup-paused"

// Pause makes ds run on no node; Resume undoes it.
func Pause(ds *appsv1.DaemonSet) {
	if ds.Spec.Template.Spec.NodeSelector == nil {
		ds.Spec.Template.Spec.NodeSelector = map[string]string{}
	}
	ds.Spec.Template.Spec.NodeSelector[PauseLabel] = "true"
}

// Resume lets a paused ds run on every node again.
func Resume(ds *appsv1.DaemonSet) { delete(ds.Spec.Template.Spec.NodeSelector, PauseLabel) }

// Paused reports whether ds is paused.
func Paused(ds *appsv1.DaemonSet) bool {
	_, ok := ds.Spec.Template.Spec.NodeSelector[PauseLabel]
	return ok
}

// Ready reports whether every node the DaemonSet should run on has run
// its current template to Ready, i.e. finished the cleanup, and how many
// nodes that is.
func Ready(ds *appsv1.DaemonSet) (ready bool, nodes int32) {
	st := ds.Status
	if st.ObservedGeneration < ds.Generation {
		return false, 0
	}
	n := st.DesiredNumberScheduled
	return n > 0 && st.UpdatedNumberScheduled == n && st.NumberReady == n, n
}
