package analyze

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/weftmesh/weft/api/annotation"
	"github.com/weftmesh/weft/api/v1alpha1"
	"github.com/weftmesh/weft/pilot/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// systemNamespaces never hold mesh clients worth reporting.
var systemNamespaces = []string{"kube-system", "kube-public", "kube-node-lease", "weft-system"}

func meshed(p corev1.Pod) bool {
	_, ok := p.Annotations[annotation.StatusAnnotation]
	return ok
}

// live pods run or are about to; finished pods and host-network pods
// (never injected) do not count.
func live(p corev1.Pod) bool {
	return p.DeletionTimestamp == nil && !p.Spec.HostNetwork &&
		p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

func optedOut(p corev1.Pod) bool { return p.Labels[annotation.InjectLabel] == "false" }

func (s Snapshot) namespace(name string) *corev1.Namespace {
	for i := range s.Namespaces {
		if s.Namespaces[i].Name == name {
			return &s.Namespaces[i]
		}
	}
	return nil
}

func names(pods []corev1.Pod, max int) string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	sort.Strings(out)
	if len(out) > max {
		return strings.Join(out[:max], ", ") + fmt.Sprintf(" and %d more", len(out)-max)
	}
	return strings.Join(out, ", ")
}

// mixedInjection (WEFT-A0001): a namespace with pods with and without the
// sidecar — usually pods created before the namespace was labelled, which
// talk plaintext and break under STRICT.
func mixedInjection(s Snapshot) []Finding {
	byNS := map[string][2][]corev1.Pod{}
	for _, p := range s.Pods {
		if !live(p) || slices.Contains(systemNamespaces, p.Namespace) {
			continue
		}
		g := byNS[p.Namespace]
		switch {
		case meshed(p):
			g[0] = append(g[0], p)
		case !optedOut(p):
			g[1] = append(g[1], p)
		}
		byNS[p.Namespace] = g
	}
	var out []Finding
	for ns, g := range byNS {
		if len(g[0]) == 0 || len(g[1]) == 0 {
			continue
		}
		fix := fmt.Sprintf("restart them to get the sidecar (kubectl rollout restart deployment -n %s), or label pods that must stay out %s=false", ns, annotation.InjectLabel)
		if n := s.namespace(ns); n == nil || n.Labels[annotation.InjectionLabel] != annotation.InjectionEnabled {
			fix = fmt.Sprintf("label the namespace (kubectl label namespace %s %s=enabled) and restart its workloads, or label pods that must stay out %s=false", ns, annotation.InjectionLabel, annotation.InjectLabel)
		}
		out = append(out, Finding{Code: CodeMixedInjection, Level: Warning, Object: "Namespace " + ns,
			Message: fmt.Sprintf("%d pod(s) run the sidecar and %d do not (%s): the latter send and accept plaintext", len(g[0]), len(g[1]), names(g[1], 3)),
			Fix:     fix})
	}
	return out
}

// routesToMissing (WEFT-A0002): a route whose parent or backend Service
// does not exist; requests matching it fail (500) or it attaches nowhere.
func routesToMissing(s Snapshot) []Finding {
	exists := map[string]bool{}
	for _, svc := range s.Services {
		exists[svc.Namespace+"/"+svc.Name] = true
	}
	var out []Finding
	for _, r := range s.Routes {
		obj := fmt.Sprintf("%s %s/%s", r.Kind, r.Namespace, r.Name)
		for _, set := range []struct {
			refs []Ref
			role string
		}{{r.Parents, "parentRef"}, {r.Backends, "backendRef"}} {
			for _, ref := range set.refs {
				if ref.Group != "" && ref.Group != "core" || ref.Kind != "" && ref.Kind != "Service" {
					continue
				}
				ns := ref.Namespace
				if ns == "" {
					ns = r.Namespace
				}
				if exists[ns+"/"+ref.Name] {
					continue
				}
				effect := "requests it matches fail with 500"
				if set.role == "parentRef" {
					effect = "the route attaches to nothing and routes no traffic"
				}
				out = append(out, Finding{Code: CodeRouteToMissing, Level: Error, Object: obj,
					Message: fmt.Sprintf("%s Service %s/%s does not exist: %s", set.role, ns, ref.Name, effect),
					Fix:     fmt.Sprintf("create Service %s/%s or correct the %s's name and namespace", ns, ref.Name, set.role)})
			}
		}
	}
	return out
}

// selectsNone reports whether a selector matches no live pod of ns (all
// namespaces when ns is empty).
func (s Snapshot) selectsNone(sel *metav1.LabelSelector, ns string) (bool, error) {
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false, err
	}
	for _, p := range s.Pods {
		if live(p) && (ns == "" || p.Namespace == ns) && selector.Matches(labels.Set(p.Labels)) {
			return false, nil
		}
	}
	return true, nil
}

// meshTLSSelectsNone (WEFT-A0003): a workload MeshTLS that selects no pod
// has no effect, often a typo in its labels.
func meshTLSSelectsNone(s Snapshot) []Finding {
	var out []Finding
	for _, m := range s.MeshTLS {
		if m.Spec.Selector == nil {
			continue
		}
		none, err := s.selectsNone(m.Spec.Selector, m.Namespace)
		if err != nil || !none {
			continue
		}
		out = append(out, Finding{Code: CodeMeshTLSSelectsNone, Level: Warning, Object: fmt.Sprintf("MeshTLS %s/%s", m.Namespace, m.Name),
			Message: fmt.Sprintf("selector %s matches no pod in namespace %s: the policy has no effect", metav1.FormatLabelSelector(m.Spec.Selector), m.Namespace),
			Fix:     "correct the selector's labels (kubectl get pods -n " + m.Namespace + " --show-labels), or delete the policy"})
	}
	return out
}

// authzSelectsNone (WEFT-A0004): an AuthorizationPolicy whose selector
// matches no pod protects nothing.
func authzSelectsNone(s Snapshot) []Finding {
	var out []Finding
	for _, p := range s.Authz {
		if p.Spec.Selector == nil {
			continue
		}
		ns := p.Metadata.Namespace
		scope := ns
		if ns == s.RootNamespace {
			scope = "" // mesh-wide policies select in every namespace
		}
		none, err := s.selectsNone(p.Spec.Selector, scope)
		if err != nil || !none {
			continue
		}
		where := "namespace " + ns
		if scope == "" {
			where = "the mesh"
		}
		out = append(out, Finding{Code: CodeAuthzSelectsNone, Level: Warning, Object: fmt.Sprintf("AuthorizationPolicy %s/%s", ns, p.Metadata.Name),
			Message: fmt.Sprintf("selector %s matches no pod in %s: the policy protects nothing", metav1.FormatLabelSelector(p.Spec.Selector), where),
			Fix:     "correct the selector's labels, or delete the policy"})
	}
	return out
}

// meshedNamespace: labelled for injection or holding meshed pods.
func (s Snapshot) meshedNamespace(ns string) bool {
	if n := s.namespace(ns); n != nil && n.Labels[annotation.InjectionLabel] == annotation.InjectionEnabled {
		return true
	}
	for _, p := range s.Pods {
		if p.Namespace == ns && meshed(p) && live(p) {
			return true
		}
	}
	return false
}

// knownTCPPrefixes are port names that declare an opaque protocol on
// purpose.
var knownTCPPrefixes = []string{"tcp", "tls", "https", "mongo", "mysql", "redis", "postgres", "amqp", "kafka", "zookeeper", "dns"}

// portsWithoutProtocol (WEFT-A0005): a Service port in a meshed namespace
// with neither appProtocol nor a protocol-prefixed name is proxied as
// opaque TCP: no HTTP routing, retries or per-request policy.
func portsWithoutProtocol(s Snapshot) []Finding {
	var out []Finding
	for _, svc := range s.Services {
		if slices.Contains(systemNamespaces, svc.Namespace) || !s.meshedNamespace(svc.Namespace) {
			continue
		}
		for _, p := range svc.Spec.Ports {
			if p.AppProtocol != nil || p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
				continue
			}
			mp := model.ServicePort{Name: p.Name, Protocol: string(p.Protocol)}
			if mp.Classify() != model.ProtocolTCP {
				continue
			}
			prefix := strings.ToLower(p.Name)
			if i := strings.IndexByte(prefix, '-'); i >= 0 {
				prefix = prefix[:i]
			}
			if slices.ContainsFunc(knownTCPPrefixes, func(k string) bool { return strings.HasPrefix(prefix, k) }) {
				continue
			}
			name := p.Name
			if name == "" {
				name = "(unnamed)"
			}
			out = append(out, Finding{Code: CodePortWithoutProtocol, Level: Warning, Object: fmt.Sprintf("Service %s/%s", svc.Namespace, svc.Name),
				Message: fmt.Sprintf("port %s %d declares no protocol: the mesh proxies it as opaque TCP (no HTTP routes, retries or path policies)", name, p.Port),
				Fix:     fmt.Sprintf("set appProtocol (http, http2, grpc, tcp…) on port %d, or name it http-…, grpc-… or tcp-…", p.Port)})
		}
	}
	return out
}

// strictWithUnmeshed (WEFT-A0006): STRICT mTLS refuses plaintext, so pods
// without a sidecar in the namespaces it concerns cannot call the
// workloads it covers.
func strictWithUnmeshed(s Snapshot) []Finding {
	var out []Finding
	for _, m := range s.MeshTLS {
		if m.Spec.Mode != v1alpha1.MTLSStrict {
			continue
		}
		scope := m.Namespace
		if m.Namespace == s.RootNamespace && m.Spec.Selector == nil {
			scope = ""
		}
		var clients []corev1.Pod
		nss := map[string]bool{}
		for _, p := range s.Pods {
			if !live(p) || meshed(p) || slices.Contains(systemNamespaces, p.Namespace) || scope != "" && p.Namespace != scope {
				continue
			}
			clients = append(clients, p)
			nss[p.Namespace] = true
		}
		if len(clients) == 0 {
			continue
		}
		where := "namespace " + m.Namespace
		if scope == "" {
			where = "the mesh"
		}
		out = append(out, Finding{Code: CodeStrictUnmeshed, Level: Warning, Object: fmt.Sprintf("MeshTLS %s/%s", m.Namespace, m.Name),
			Message: fmt.Sprintf("STRICT mTLS in %s, but %d pod(s) without a sidecar (%s) can only send plaintext, which it refuses", where, len(clients), names(clients, 3)),
			Fix:     "mesh those clients (label their namespace weft-injection=enabled and restart them) or use PERMISSIVE until they are"})
	}
	return out
}

// policiesNotAccepted (WEFT-A0007): pilot reports a policy it does not
// apply (status condition Accepted=False), e.g. a newer policy of the
// same scope loses to an older one.
func policiesNotAccepted(s Snapshot) []Finding {
	var out []Finding
	notAccepted := func(kind, resource, namespace, name string, conds []metav1.Condition) {
		for _, c := range conds {
			if c.Type == "Accepted" && c.Status == metav1.ConditionFalse {
				out = append(out, Finding{Code: CodePolicyNotAccepted, Level: Error, Object: fmt.Sprintf("%s %s/%s", kind, namespace, name),
					Message: fmt.Sprintf("not applied (%s): %s", c.Reason, c.Message),
					Fix:     fmt.Sprintf("remove the conflict the message names (one policy per scope), then check kubectl get %s -A", resource)})
			}
		}
	}
	for _, m := range s.MeshTLS {
		notAccepted("MeshTLS", "meshtls", m.Namespace, m.Name, m.Status.Conditions)
	}
	for _, t := range s.Telemetry {
		notAccepted("Telemetry", "telemetries.mesh.weft.dev", t.Namespace, t.Name, t.Status.Conditions)
	}
	return out
}

// targetPortsUnresolved (WEFT-A0008): a Service's named targetPort that a
// meshed pod behind it does not declare: the pod's sidecar gets no inbound
// config for that port.
func targetPortsUnresolved(s Snapshot) []Finding {
	var out []Finding
	for _, svc := range s.Services {
		if len(svc.Spec.Selector) == 0 {
			continue
		}
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		for _, sp := range svc.Spec.Ports {
			if sp.TargetPort.StrVal == "" {
				continue
			}
			var missing []corev1.Pod
			for _, p := range s.Pods {
				if p.Namespace != svc.Namespace || !live(p) || !meshed(p) || !sel.Matches(labels.Set(p.Labels)) {
					continue
				}
				mp, ok := model.PodFromK8s(&p)
				if !ok {
					continue
				}
				if _, ok := mp.ContainerPorts[sp.TargetPort.StrVal]; !ok {
					missing = append(missing, p)
				}
			}
			if len(missing) == 0 {
				continue
			}
			out = append(out, Finding{Code: CodeTargetPortUnresolved, Level: Warning, Object: fmt.Sprintf("Service %s/%s", svc.Namespace, svc.Name),
				Message: fmt.Sprintf("targetPort %q of port %d is not a named container port of %s: their sidecars get no inbound config for it", sp.TargetPort.StrVal, sp.Port, names(missing, 3)),
				Fix:     fmt.Sprintf("name the container port %q in the pod template, or use a port number as targetPort", sp.TargetPort.StrVal)})
		}
	}
	return out
}
