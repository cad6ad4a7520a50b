package injector

import (
	"fmt"
	"slices"

	"github.com/weftmesh/weft/api/annotation"
	corev1 "k8s.io/api/core/v1"
)

// Result is what Mutate did: the pod to admit (a copy; the input is never
// modified) and the decision, for logs and metrics.
type Result struct {
	Pod      *corev1.Pod
	Decision Decision
	// Status is the recorded SidecarStatus when the pod was injected.
	Status *annotation.SidecarStatus
}

// Mutate injects weft-sidecar into pod when Decide says so. It is pure: no
// I/O, no clock, no randomness, so the same input always gives the same
// pod (golden tests) and a second call on its own output changes nothing
// (reinvocation). An error means the pod asked for something the injector
// cannot honour (a malformed annotation, a name clash); the webhook refuses
// such pods with the error as the message instead of admitting them
// unmeshed.
//
// What is injected (DESIGN.md "per pod (injected)"):
//   - weft-sidecar, first of the init containers, restartPolicy Always,
//     startup/readiness probes on :15021, UID/GID 1337, read-only root;
//   - volumes weft-token (projected ServiceAccount token, audience weft-ca),
//     weft-proxy-socket (SDS), weft-workload-socket (SPIFFE Workload API,
//     also mounted read-only into every app container with
//     SPIFFE_ENDPOINT_SOCKET), weft-root-cert and weft-envoy;
//   - app HTTP/TCP probes rewritten to the agent (unless
//     sidecar.weft.dev/rewrite-app-probers is "false");
//   - the sidecar.weft.dev/status annotation read by weft-redirect.
func Mutate(pod *corev1.Pod, ns *corev1.Namespace, cfg Config) (Result, error) {
	out := pod.DeepCopy()
	d := Decide(pod, ns, cfg.Revision)
	if !d.Inject {
		return Result{Pod: out, Decision: d}, nil
	}
	st, err := inject(out, cfg)
	if err != nil {
		return Result{Decision: d}, fmt.Errorf("inject pod %s: %w", podName(pod), err)
	}
	return Result{Pod: out, Decision: d, Status: &st}, nil
}

func inject(pod *corev1.Pod, cfg Config) (annotation.SidecarStatus, error) {
	st, err := sidecarStatus(pod.GetAnnotations(), cfg)
	if err != nil {
		return st, err
	}
	res, err := resolveResources(pod.GetAnnotations(), cfg.Resources)
	if err != nil {
		return st, err
	}
	if err := checkConflicts(pod); err != nil {
		return st, err
	}
	rewrite, err := rewriteEnabled(pod)
	if err != nil {
		return st, err
	}
	var probers annotation.AppProbers
	if rewrite {
		probers = rewriteProbes(pod)
	}
	for i := range pod.Spec.Containers {
		addWorkloadAPI(&pod.Spec.Containers[i])
	}
	sidecar := sidecarContainer(cfg, res, probers)
	pod.Spec.InitContainers = append([]corev1.Container{sidecar}, pod.Spec.InitContainers...)
	pod.Spec.Volumes = append(pod.Spec.Volumes, sidecarVolumes()...)
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[annotation.StatusAnnotation] = st.String()
	return st, nil
}

// sidecarStatus builds the status from the config and the pod's traffic
// annotations, rejecting malformed lists with the annotation's name.
func sidecarStatus(ann map[string]string, cfg Config) (annotation.SidecarStatus, error) {
	st := annotation.SidecarStatus{
		Version:             annotation.StatusVersion,
		Image:               cfg.Image,
		Revision:            cfg.Revision,
		ProxyUID:            annotation.ProxyUID,
		ProxyGID:            annotation.ProxyGID,
		OutboundPort:        annotation.OutboundCapturePort,
		InboundPort:         annotation.InboundCapturePort,
		IncludeInboundPorts: annotation.CaptureAllInbound,
	}
	in, err := annotation.ParsePortList(ann[annotation.ExcludeInboundPortsAnnotation])
	if err != nil {
		return st, fmt.Errorf("annotation %s: %w", annotation.ExcludeInboundPortsAnnotation, err)
	}
	in = append(in, annotation.RequiredExcludedInboundPorts()...)
	slices.Sort(in)
	st.ExcludeInboundPorts = slices.Compact(in)
	if st.ExcludeOutboundPorts, err = annotation.ParsePortList(ann[annotation.ExcludeOutboundPortsAnnotation]); err != nil {
		return st, fmt.Errorf("annotation %s: %w", annotation.ExcludeOutboundPortsAnnotation, err)
	}
	if st.ExcludeOutboundCIDRs, err = annotation.ParseCIDRList(ann[annotation.ExcludeOutboundIPRangesAnnotation]); err != nil {
		return st, fmt.Errorf("annotation %s: %w", annotation.ExcludeOutboundIPRangesAnnotation, err)
	}
	if err := st.Validate(); err != nil {
		return st, fmt.Errorf("sidecar status: %w", err)
	}
	return st, nil
}

// checkConflicts refuses pods that already use the names or paths the
// injection adds: the API server would reject the patched pod with a
// message that does not mention the mesh.
func checkConflicts(pod *corev1.Pod) error {
	for _, v := range sidecarVolumes() {
		if slices.ContainsFunc(pod.Spec.Volumes, func(pv corev1.Volume) bool { return pv.Name == v.Name }) {
			return fmt.Errorf("pod already has a volume named %q, which the injector adds", v.Name)
		}
	}
	for _, c := range pod.Spec.Containers {
		for _, m := range c.VolumeMounts {
			if m.MountPath == WorkloadSocketDir {
				return fmt.Errorf("container %q already mounts %s, where the injector mounts the Workload API socket", c.Name, WorkloadSocketDir)
			}
		}
	}
	return nil
}

// podName names a pod in messages; pods created by controllers have only
// a generateName at admission time.
func podName(pod *corev1.Pod) string {
	name := pod.Name
	if name == "" {
		name = pod.GenerateName + "<generated>"
	}
	if pod.Namespace != "" {
		return pod.Namespace + "/" + name
	}
	return name
}
