package lifecycle

import (
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// DeploymentReady says whether the Deployment's current revision is
// available, with a short summary ("1/1 ready", "rolling out: 0/1 updated").
func DeploymentReady(d *appsv1.Deployment) (bool, string) {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	switch {
	case st.ObservedGeneration < d.Generation:
		return false, "waiting for the controller"
	case st.UpdatedReplicas < want:
		return false, fmt.Sprintf("rolling out: %d/%d updated", st.UpdatedReplicas, want)
	case st.Replicas > st.UpdatedReplicas:
		return false, fmt.Sprintf("rolling out: %d old replicas terminating", st.Replicas-st.UpdatedReplicas)
	case st.AvailableReplicas < want:
		return false, fmt.Sprintf("%d/%d ready", st.AvailableReplicas, want)
	}
	return true, fmt.Sprintf("%d/%d ready", st.AvailableReplicas, want)
}

// DaemonSetReady says whether every node runs a ready pod of the current
// revision.
func DaemonSetReady(ds *appsv1.DaemonSet) (bool, string) {
	st := ds.Status
	switch {
	case st.ObservedGeneration < ds.Generation:
		return false, "waiting for the controller"
	case st.DesiredNumberScheduled == 0:
		return false, "no node to run on"
	case st.UpdatedNumberScheduled < st.DesiredNumberScheduled:
		return false, fmt.Sprintf("rolling out: %d/%d nodes updated", st.UpdatedNumberScheduled, st.DesiredNumberScheduled)
	case st.NumberReady < st.DesiredNumberScheduled:
		return false, fmt.Sprintf("%d/%d nodes ready", st.NumberReady, st.DesiredNumberScheduled)
	}
	return true, fmt.Sprintf("%d/%d nodes ready", st.NumberReady, st.DesiredNumberScheduled)
}

// DiagnosePods says, one line per pod, why pods are not ready: the
// scheduler's reason, a container's waiting reason or last exit, a failing
// probe, from the pods' status and their warning events.
func DiagnosePods(pods []corev1.Pod, events []corev1.Event) []string {
	var out []string
	for _, p := range pods {
		if podIsReady(p) {
			continue
		}
		reasons := podProblems(p)
		for _, e := range events {
			if e.InvolvedObject.Name == p.Name && e.Type == corev1.EventTypeWarning {
				r := fmt.Sprintf("%s: %s", e.Reason, strings.TrimSpace(e.Message))
				if !slices.Contains(reasons, r) {
					reasons = append(reasons, r)
				}
			}
		}
		if len(reasons) == 0 {
			reasons = []string{string(p.Status.Phase)}
		}
		where := ""
		if p.Spec.NodeName != "" {
			where = " on " + p.Spec.NodeName
		}
		out = append(out, fmt.Sprintf("pod %s%s: %s", p.Name, where, strings.Join(reasons, "; ")))
	}
	return out
}

func podIsReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podProblems(p corev1.Pod) []string {
	var out []string
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			out = append(out, fmt.Sprintf("not scheduled (%s): %s", c.Reason, c.Message))
		}
	}
	statuses := append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...)
	for _, cs := range statuses {
		switch {
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "" && cs.State.Waiting.Reason != "PodInitializing":
			msg := fmt.Sprintf("container %s %s", cs.Name, cs.State.Waiting.Reason)
			if m := cs.State.Waiting.Message; m != "" {
				msg += ": " + firstLine(m)
			}
			if t := cs.LastTerminationState.Terminated; t != nil {
				msg += fmt.Sprintf(" (last exit %d", t.ExitCode)
				if t.Message != "" {
					msg += ": " + firstLine(t.Message)
				}
				msg += ")"
			}
			out = append(out, msg)
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode != 0:
			out = append(out, fmt.Sprintf("container %s exited %d (%s)", cs.Name, cs.State.Terminated.ExitCode, cs.State.Terminated.Reason))
		case cs.State.Running != nil && !cs.Ready:
			out = append(out, fmt.Sprintf("container %s running but not ready", cs.Name))
		}
	}
	return out
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
