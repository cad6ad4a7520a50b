package injector

import (
	"fmt"

	"github.com/weftmesh/weft/api/annotation"
	corev1 "k8s.io/api/core/v1"
)

// Reason is a short, bounded code for why a pod was or was not injected;
// it is a metric attribute, so it never carries pod-specific text.
type Reason string

// Reasons, one per rule of Decide.
const (
	ReasonHostNetwork       Reason = "host_network"       // rule 1: never inject host-network pods
	ReasonAlreadyInjected   Reason = "already_injected"   // rule 2: idempotency
	ReasonPodOptOut         Reason = "pod_opt_out"        // rule 3: sidecar.weft.dev/inject=false
	ReasonOtherRevision     Reason = "other_revision"     // rules 4, 7: another revision owns the pod
	ReasonRevision          Reason = "revision"           // rules 4, 7: our revision owns the pod
	ReasonPodOptIn          Reason = "pod_opt_in"         // rule 5: sidecar.weft.dev/inject=true
	ReasonNamespaceEnabled  Reason = "namespace_enabled"  // rule 6: weft-injection=enabled
	ReasonNamespaceDisabled Reason = "namespace_disabled" // rule 6: weft-injection=disabled
	ReasonNotSelected       Reason = "not_selected"       // rule 8: nothing asks for a sidecar
)

// Decision is the outcome of Decide: whether to inject, a Reason for metrics
// and a Detail for logs and the admission response message.
type Decision struct {
	Inject bool   // add the sidecar
	Reason Reason // bounded code, a metric attribute
	Detail string // human-readable: which label decided
}

// Decide says whether a pod gets the sidecar of the injector serving
// revision. The first matching rule wins:
//
//  1. hostNetwork pods are never injected: redirecting their traffic would
//     capture the node's.
//  2. Already injected pods (status annotation or a weft-sidecar container)
//     are left alone, so reinvocation (reinvocationPolicy: IfNeeded) and
//     re-applied manifests never inject twice.
//  3. Pod label sidecar.weft.dev/inject=false opts the pod out.
//  4. Pod label weft.dev/rev picks the revision: equal to ours injects, any
//     other is left to that revision's injector.
//  5. Pod label sidecar.weft.dev/inject=true opts the pod in.
//  6. Namespace label weft-injection=enabled injects; =disabled does not.
//  7. Namespace label weft.dev/rev equal to ours injects; another revision
//     is left to its injector.
//  8. Otherwise the pod is not injected.
//
// Other values of the inject label are ignored (rules 3 and 5 do not match).
// Pod labels win over namespace labels (rules 3-5 before 6-7), as in Istio;
// the MutatingWebhookConfiguration additionally never sends pods of
// weft-injection=disabled namespaces (weft-system), which is the safety net
// for the control plane itself.
func Decide(pod *corev1.Pod, ns *corev1.Namespace, revision string) Decision {
	podLabels := pod.GetLabels()
	var nsLabels map[string]string
	if ns != nil {
		nsLabels = ns.GetLabels()
	}
	switch {
	case pod.Spec.HostNetwork:
		return Decision{false, ReasonHostNetwork, "host-network pods are never injected"}
	case alreadyInjected(pod):
		return Decision{false, ReasonAlreadyInjected, "pod already has " + SidecarContainer}
	case podLabels[annotation.InjectLabel] == "false":
		return Decision{false, ReasonPodOptOut, "pod label " + annotation.InjectLabel + "=false"}
	}
	if rev, ok := podLabels[annotation.RevisionLabel]; ok {
		return revisionDecision("pod", rev, revision)
	}
	if podLabels[annotation.InjectLabel] == "true" {
		return Decision{true, ReasonPodOptIn, "pod label " + annotation.InjectLabel + "=true"}
	}
	switch nsLabels[annotation.InjectionLabel] {
	case annotation.InjectionEnabled:
		return Decision{true, ReasonNamespaceEnabled, "namespace label " + annotation.InjectionLabel + "=enabled"}
	case annotation.InjectionDisabled:
		return Decision{false, ReasonNamespaceDisabled, "namespace label " + annotation.InjectionLabel + "=disabled"}
	}
	if rev, ok := nsLabels[annotation.RevisionLabel]; ok {
		return revisionDecision("namespace", rev, revision)
	}
	return Decision{false, ReasonNotSelected, "neither pod nor namespace asks for injection"}
}

func revisionDecision(holder, rev, ours string) Decision {
	detail := fmt.Sprintf("%s label %s=%s", holder, annotation.RevisionLabel, rev)
	if rev == ours {
		return Decision{true, ReasonRevision, detail}
	}
	return Decision{false, ReasonOtherRevision, detail + ", this injector serves " + ours}
}

// alreadyInjected is true when the pod carries any trace of an injection.
func alreadyInjected(pod *corev1.Pod) bool {
	if _, ok := pod.GetAnnotations()[annotation.StatusAnnotation]; ok {
		return true
	}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			if c.Name == SidecarContainer {
				return true
			}
		}
	}
	return false
}
