package injector

import (
	"fmt"
	"strconv"

	"github.com/weftmesh/weft/api/annotation"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// rewriteEnabled reads annotation.RewriteAppProbersAnnotation (default on).
func rewriteEnabled(pod *corev1.Pod) (bool, error) {
	v, ok := pod.GetAnnotations()[annotation.RewriteAppProbersAnnotation]
	if !ok {
		return true, nil
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("annotation %s=%q: want \"true\" or \"false\"", annotation.RewriteAppProbersAnnotation, v)
	}
	return on, nil
}

// rewriteProbes points the HTTP and TCP probes of app containers (and of the
// user's own native sidecars, which may probe too) at weft-agent, and
// returns the originals for annotation.AppProbersEnv. With STRICT inbound
// mTLS, Envoy refuses the kubelet's plain-text probes; the agent runs them
// from inside the pod instead. Exec and gRPC probes are left alone (exec
// runs inside the container; gRPC health is not proxied by the agent).
// Probes on a named port the container does not declare are left alone
// too: the kubelet would fail them either way, and the agent cannot
// resolve names.
func rewriteProbes(pod *corev1.Pod) annotation.AppProbers {
	probers := annotation.AppProbers{}
	rewrite := func(c *corev1.Container) {
		for _, p := range []struct {
			kind  string
			probe *corev1.Probe
		}{
			{annotation.LivenessProbe, c.LivenessProbe},
			{annotation.ReadinessProbe, c.ReadinessProbe},
			{annotation.StartupProbe, c.StartupProbe},
		} {
			if p.probe == nil {
				continue
			}
			orig, ok := originalProbe(c, p.probe)
			if !ok {
				continue
			}
			path := annotation.AppProbePath(c.Name, p.kind)
			probers[path] = orig
			p.probe.ProbeHandler = corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: path, Port: intstr.FromInt32(annotation.AgentPort), Scheme: corev1.URISchemeHTTP,
			}}
		}
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			rewrite(c)
		}
	}
	for i := range pod.Spec.Containers {
		rewrite(&pod.Spec.Containers[i])
	}
	return probers
}

// originalProbe copies a probe's HTTP or TCP action with its port resolved
// to a number; ok is false for probes that are not rewritten.
func originalProbe(c *corev1.Container, p *corev1.Probe) (annotation.AppProbe, bool) {
	switch {
	case p.HTTPGet != nil:
		port, ok := resolvePort(c, p.HTTPGet.Port)
		if !ok {
			return annotation.AppProbe{}, false
		}
		get := p.HTTPGet.DeepCopy()
		get.Port = port
		if get.Scheme == "" {
			get.Scheme = corev1.URISchemeHTTP
		}
		return annotation.AppProbe{HTTPGet: get, TimeoutSeconds: p.TimeoutSeconds}, true
	case p.TCPSocket != nil:
		port, ok := resolvePort(c, p.TCPSocket.Port)
		if !ok {
			return annotation.AppProbe{}, false
		}
		tcp := p.TCPSocket.DeepCopy()
		tcp.Port = port
		return annotation.AppProbe{TCPSocket: tcp, TimeoutSeconds: p.TimeoutSeconds}, true
	}
	return annotation.AppProbe{}, false
}

func resolvePort(c *corev1.Container, port intstr.IntOrString) (intstr.IntOrString, bool) {
	if port.Type == intstr.Int {
		return port, port.IntVal > 0
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return intstr.FromInt32(p.ContainerPort), true
		}
	}
	return intstr.IntOrString{}, false
}
