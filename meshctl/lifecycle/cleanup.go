package lifecycle

import (
	"fmt"

	"github.com/weftmesh/weft/install/nodecleanup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// CleanupDaemonSetName is the short-lived DaemonSet that undoes what the
// node agents did on every node.
const CleanupDaemonSetName = nodecleanup.DaemonSetName

// nodeAgents are the node agents of the plan and the flag that makes each
// undo its work and exit (shared with the chart's pre-delete hook).
var nodeAgents = nodecleanup.Agents

// NodeCleanupDaemonSet builds the DaemonSet that runs the node agents of
// the plan in cleanup mode on every node (nodecleanup.DaemonSet: the same
// DaemonSet `helm uninstall`'s hook builds from the live agents). ok is
// false when the plan has no node agent.
func NodeCleanupDaemonSet(p Plan) (ds *appsv1.DaemonSet, ok bool, err error) {
	var found []nodecleanup.Found
	for _, a := range nodeAgents {
		obj, ok := p.Find("DaemonSet", a.DaemonSet)
		if !ok {
			continue
		}
		agent := &appsv1.DaemonSet{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, agent); err != nil {
			return nil, false, fmt.Errorf("decode %s: %w", a.DaemonSet, err)
		}
		found = append(found, nodecleanup.Found{Agent: a, DaemonSet: agent})
	}
	ds, ok = nodecleanup.DaemonSet(nodecleanup.DaemonSetConfig{
		Namespace: Namespace, Agents: found,
		PauseImage: p.Values.Image("pause"), PullPolicy: corev1.PullPolicy(p.Values.PullPolicy),
	})
	return ds, ok, nil
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
