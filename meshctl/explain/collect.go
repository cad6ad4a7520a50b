package explain

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/weftmesh/weft/api/annotation"
	"github.com/weftmesh/weft/api/v1alpha1"
	"github.com/weftmesh/weft/meshctl/envoy"
	"github.com/weftmesh/weft/meshctl/kube"
	"github.com/weftmesh/weft/pilot/model"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// RootNamespace is the control plane's namespace: mesh-wide policies
// live there.
const RootNamespace = "weft-system"

// Resources of the mesh API read by explain.
var (
	MeshTLSResource             = schema.GroupVersionResource{Group: "mesh.weft.dev", Version: "v1alpha1", Resource: "meshtlses"}
	AuthorizationPolicyResource = schema.GroupVersionResource{Group: "mesh.weft.dev", Version: "v1alpha1", Resource: "authorizationpolicies"}
)

// Request names the two ends of the request to explain.
type Request struct {
	SourceNamespace, SourcePod string
	// Target is "<service>[.<namespace>][:port]", "service/<name>",
	// "pod/<name>[.<namespace>]", a pod name, or an IP, with an optional
	// ":port" (number or Service port name).
	Target string
	// Namespace is where unqualified targets are looked up.
	Namespace    string
	Path, Method string
}

// Collect gathers the facts for r.
func Collect(ctx context.Context, c *kube.Client, r Request) (Facts, error) {
	f := Facts{Path: r.Path, Method: r.Method, RootNamespace: RootNamespace, TrustDomain: "cluster.local", ClusterDomain: model.DefaultClusterDomain}
	src, err := c.Kube.CoreV1().Pods(r.SourceNamespace).Get(ctx, r.SourcePod, metav1.GetOptions{})
	if err != nil {
		return f, notFound(err, "source pod %s not found in namespace %s", r.SourcePod, r.SourceNamespace)
	}
	f.Source.Pod = src
	if v, ok := src.Annotations[annotation.StatusAnnotation]; ok {
		st, err := annotation.ParseStatus(v)
		if err != nil {
			return f, fmt.Errorf("source pod %s/%s: %w", src.Namespace, src.Name, err)
		}
		f.Source.Sidecar = &st
	}
	readPilotFlags(ctx, c, &f)
	if err := resolveTarget(ctx, c, r, &f); err != nil {
		return f, err
	}
	if err := endpoints(ctx, c, &f); err != nil {
		return f, err
	}
	if f.Policies, err = meshTLS(ctx, c); err != nil {
		return f, err
	}
	if f.Authz, err = authorizer(ctx, c); err != nil {
		return f, err
	}
	if f.Source.Sidecar != nil {
		f.Source.Envoy, f.Source.EnvoyErr = dump(ctx, c, src)
		redirectFindings(ctx, c, &f.Source)
	}
	for _, ep := range f.Endpoints {
		if ep.Ready && ep.Pod != nil && hasSidecar(ep.Pod) {
			f.InboundPod = ep.Pod.Namespace + "/" + ep.Pod.Name
			f.Inbound, f.InboundErr = dump(ctx, c, ep.Pod)
			break
		}
	}
	return f, nil
}

func hasSidecar(p *corev1.Pod) bool {
	_, ok := p.Annotations[annotation.StatusAnnotation]
	return ok
}

func notFound(err error, format string, a ...any) error {
	if apierrors.IsNotFound(err) {
		return kube.Userf(format, a...)
	}
	return err
}

// readPilotFlags takes the trust and cluster domains from pilot's args.
func readPilotFlags(ctx context.Context, c *kube.Client, f *Facts) {
	d, err := c.Kube.AppsV1().Deployments(RootNamespace).Get(ctx, "weft-pilot", metav1.GetOptions{})
	if err != nil || len(d.Spec.Template.Spec.Containers) == 0 {
		return
	}
	for _, a := range d.Spec.Template.Spec.Containers[0].Args {
		if v, ok := strings.CutPrefix(a, "--trust-domain="); ok {
			f.TrustDomain = v
		}
		if v, ok := strings.CutPrefix(a, "--cluster-domain="); ok {
			f.ClusterDomain = v
		}
	}
}

func dump(ctx context.Context, c *kube.Client, p *corev1.Pod) (*envoy.ConfigDump, string) {
	if p.Status.Phase != corev1.PodRunning {
		return nil, "pod is " + string(p.Status.Phase)
	}
	body, err := c.Envoy.Get(ctx, p.Namespace, p.Name, "/config_dump?include_eds")
	if err != nil {
		return nil, kube.Message(err)
	}
	d, err := envoy.Parse(body)
	if err != nil {
		return nil, err.Error()
	}
	return d, ""
}

// targetKinds are the kind prefixes a target may carry.
var targetKinds = map[string]string{"service/": "service", "svc/": "service", "pod/": "pod", "po/": "pod"}

// splitTarget separates kind, host and port of a target.
func splitTarget(t string) (kind, host, port string) {
	for prefix, k := range targetKinds {
		if rest, ok := strings.CutPrefix(t, prefix); ok {
			kind, t = k, rest
			break
		}
	}
	if i := strings.LastIndexByte(t, ':'); i >= 0 && strings.Count(t, ":") == 1 {
		return kind, t[:i], t[i+1:]
	}
	if strings.HasPrefix(t, "[") {
		if i := strings.Index(t, "]:"); i > 0 {
			return kind, t[1:i], t[i+2:]
		}
	}
	return kind, strings.Trim(t, "[]"), ""
}

func resolveTarget(ctx context.Context, c *kube.Client, r Request, f *Facts) error {
	kind, host, port := splitTarget(r.Target)
	if host == "" {
		return kube.Userf("no destination given: want <service>[.<namespace>][:port] or pod/<name>[:port]")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return resolveIP(ctx, c, ip, port, f)
	}
	name, ns := host, r.Namespace
	suffix := ".svc." + f.ClusterDomain
	h := strings.TrimSuffix(strings.TrimSuffix(host, suffix), ".svc")
	if i := strings.IndexByte(h, '.'); i > 0 {
		name, ns = h[:i], h[i+1:]
	}
	if kind != "pod" {
		svc, err := c.Kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			return setService(svc, port, f)
		}
		if !apierrors.IsNotFound(err) {
			return err
		}
		if kind == "service" {
			return kube.Userf("service %s not found in namespace %s", name, ns)
		}
	}
	pod, err := c.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return notFound(err, "no Service or pod %s in namespace %s", name, ns)
	}
	return setPod(pod, port, f)
}

func resolveIP(ctx context.Context, c *kube.Client, ip netip.Addr, port string, f *Facts) error {
	svcs, err := c.Kube.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list services: %w", err)
	}
	for i := range svcs.Items {
		if slices.Contains(svcs.Items[i].Spec.ClusterIPs, ip.String()) {
			return setService(&svcs.Items[i], port, f)
		}
	}
	pods, err := c.Kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("status.podIP", ip.String()).String()})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	for i := range pods.Items {
		if !pods.Items[i].Spec.HostNetwork {
			return setPod(&pods.Items[i], port, f)
		}
	}
	return kube.Userf("no Service or pod has the address %s", ip)
}

func setService(svc *corev1.Service, port string, f *Facts) error {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return kube.Userf("service %s/%s is an ExternalName alias of %s: the mesh does not route it (explain the request to what it names)", svc.Namespace, svc.Name, svc.Spec.ExternalName)
	}
	f.Dest.Service = svc
	var names []string
	for i, p := range svc.Spec.Ports {
		names = append(names, portLabel(p))
		if port == strconv.Itoa(int(p.Port)) || port != "" && port == p.Name || port == "" && len(svc.Spec.Ports) == 1 {
			f.Dest.Port = &svc.Spec.Ports[i]
		}
	}
	if f.Dest.Port == nil {
		if port == "" {
			return kube.Userf("service %s/%s has several ports, name one: %s:<port> (ports: %s)", svc.Namespace, svc.Name, svc.Name, strings.Join(names, ", "))
		}
		return kube.Userf("service %s/%s has no port %s (ports: %s)", svc.Namespace, svc.Name, port, strings.Join(names, ", "))
	}
	f.Dest.PortNumber = f.Dest.Port.Port
	if ip, err := netip.ParseAddr(svc.Spec.ClusterIP); err == nil {
		f.Dest.IP = ip
	}
	return nil
}

func portLabel(p corev1.ServicePort) string {
	if p.Name != "" {
		return fmt.Sprintf("%s %d", p.Name, p.Port)
	}
	return strconv.Itoa(int(p.Port))
}

func setPod(pod *corev1.Pod, port string, f *Facts) error {
	f.Dest.Pod = pod
	ip, err := netip.ParseAddr(pod.Status.PodIP)
	if err != nil {
		return kube.Userf("pod %s/%s has no IP yet (phase %s)", pod.Namespace, pod.Name, pod.Status.Phase)
	}
	f.Dest.IP = ip
	var ports []corev1.ContainerPort
	for _, c := range pod.Spec.Containers {
		ports = append(ports, c.Ports...)
	}
	if n, err := strconv.Atoi(port); err == nil {
		f.Dest.PortNumber = int32(n)
	}
	for _, p := range ports {
		if port != "" && p.Name == port || port == "" && len(ports) == 1 {
			f.Dest.PortNumber = p.ContainerPort
		}
	}
	if f.Dest.PortNumber <= 0 || f.Dest.PortNumber > 65535 {
		return kube.Userf("name the port to explain: pod/%s.%s:<port>", pod.Name, pod.Namespace)
	}
	f.Endpoints = []Endpoint{{IP: ip, Port: f.Dest.PortNumber, Pod: pod, Ready: podReady(pod), Terminating: pod.DeletionTimestamp != nil}}
	return nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// endpoints reads the Service's EndpointSlices and their pods.
func endpoints(ctx context.Context, c *kube.Client, f *Facts) error {
	svc := f.Dest.Service
	if svc == nil {
		return nil
	}
	list, err := c.Kube.DiscoveryV1().EndpointSlices(svc.Namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc.Name})
	if err != nil {
		return fmt.Errorf("list endpoint slices of %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	pods := map[string]*corev1.Pod{}
	seen := map[netip.AddrPort]bool{}
	for _, es := range list.Items {
		port := int32(0)
		for _, p := range es.Ports {
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			if name == f.Dest.Port.Name && p.Port != nil {
				port = *p.Port
			}
		}
		if port == 0 {
			continue
		}
		for _, e := range es.Endpoints {
			ep := Endpoint{Port: port, Ready: e.Conditions.Ready == nil || *e.Conditions.Ready,
				Terminating: e.Conditions.Terminating != nil && *e.Conditions.Terminating}
			if e.TargetRef != nil && e.TargetRef.Kind == "Pod" {
				p, ok := pods[e.TargetRef.Name]
				if !ok {
					got, err := c.Kube.CoreV1().Pods(es.Namespace).Get(ctx, e.TargetRef.Name, metav1.GetOptions{})
					if err == nil {
						p = got
					}
					pods[e.TargetRef.Name] = p
				}
				ep.Pod = p
			}
			for _, a := range e.Addresses {
				ip, err := netip.ParseAddr(a)
				if err != nil || seen[netip.AddrPortFrom(ip, uint16(port))] {
					continue
				}
				seen[netip.AddrPortFrom(ip, uint16(port))] = true
				ep.IP = ip
				f.Endpoints = append(f.Endpoints, ep)
			}
		}
	}
	slices.SortFunc(f.Endpoints, func(a, b Endpoint) int { return a.IP.Compare(b.IP) })
	if !f.Dest.IP.IsValid() {
		for _, ep := range f.Endpoints {
			if ep.Ready {
				f.Dest.IP, f.Dest.PortNumber = ep.IP, ep.Port
				break
			}
		}
	}
	return nil
}

func meshTLS(ctx context.Context, c *kube.Client) ([]*model.TLSPolicy, error) {
	list, err := c.Dynamic.Resource(MeshTLSResource).List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list MeshTLS policies: %w", err)
	}
	var out []*model.TLSPolicy
	for _, item := range list.Items {
		var m v1alpha1.MeshTLS
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(item.Object, &m); err != nil {
			continue
		}
		if p, err := model.TLSPolicyFromMeshTLS(&m); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

func authorizer(ctx context.Context, c *kube.Client) (Authorizer, error) {
	list, err := c.Dynamic.Resource(AuthorizationPolicyResource).List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) {
		return NoPolicies{Why: "the AuthorizationPolicy API is not installed in this cluster"}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list authorization policies: %w", err)
	}
	ps := PolicySet{RootNamespace: RootNamespace}
	for _, item := range list.Items {
		b, err := json.Marshal(item.Object)
		if err != nil {
			continue
		}
		var p AuthzPolicy
		if err := json.Unmarshal(b, &p); err == nil {
			ps.Policies = append(ps.Policies, p)
		}
	}
	return ps, nil
}

// redirectFindings looks for weft-cni-node's report that the source pod
// lacks its redirect rules.
func redirectFindings(ctx context.Context, c *kube.Client, s *Source) {
	p := s.Pod
	if cni, err := c.Kube.CoreV1().Pods(RootNamespace).List(ctx, metav1.ListOptions{
		LabelSelector: "app.kubernetes.io/name=weft-cni-node",
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", p.Spec.NodeName).String()}); err == nil {
		for _, cp := range cni.Items {
			s.CheckerOnNode = s.CheckerOnNode || cp.Spec.NodeName == p.Spec.NodeName && cp.Status.Phase == corev1.PodRunning
		}
	}
	evs, err := c.Kube.CoreV1().Events(p.Namespace).List(ctx, metav1.ListOptions{FieldSelector: fields.AndSelectors(
		fields.OneTermEqualSelector("involvedObject.name", p.Name),
		fields.OneTermEqualSelector("reason", "RedirectRulesMissing")).String()})
	if err != nil {
		return
	}
	for _, e := range evs.Items {
		if e.InvolvedObject.UID == p.UID && e.Reason == "RedirectRulesMissing" {
			s.RedirectMissing = e.Message
		}
	}
}
