package check

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/weftmesh/weft/install"
	"github.com/weftmesh/weft/meshctl/kube"
	"github.com/weftmesh/weft/meshctl/lifecycle"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
)

// Options select what Collect gathers.
type Options struct {
	Pre        bool
	Components install.Components
	FailWithin time.Duration
	Now        time.Time
}

// Namespace is the control plane's namespace.
const Namespace = "weft-system"

// Collect gathers the facts of the pre- or post-install checks. It never
// fails as a whole: what it cannot read is recorded in the facts and
// reported by the check that needs it.
func Collect(ctx context.Context, c *kube.Client, o Options) Facts {
	f := Facts{Now: o.Now, FailWithin: o.FailWithin, Pre: o.Pre, Components: o.Components}
	f.Server = serverVersion(c)
	f.Nodes = nodes(ctx, c)
	if o.Pre {
		f.Conflicts = conflicts(ctx, c)
		f.Access = access(ctx, c)
		_, err := c.Kube.AppsV1().Deployments(Namespace).Get(ctx, "weft-pilot", metav1.GetOptions{})
		f.Installed = err == nil
		return f
	}
	f.Workloads = workloads(ctx, c)
	f.CRDs = crds(ctx, c)
	f.Webhook = webhook(ctx, c)
	f.CA = authority(ctx, c)
	f.Sidecars, f.Proxies = dataPlane(ctx, c, o.Now)
	f.Redirect = redirect(ctx, c)
	return f
}

func errText(err error) string { return kube.Message(err) }

func serverVersion(c *kube.Client) Server {
	v, err := c.Kube.Discovery().ServerVersion()
	if err != nil {
		return Server{Err: errText(err)}
	}
	major, _ := strconv.Atoi(strings.TrimRight(v.Major, "+"))
	minor, _ := strconv.Atoi(strings.TrimRight(v.Minor, "+"))
	return Server{GitVersion: v.GitVersion, Major: major, Minor: minor}
}

func nodes(ctx context.Context, c *kube.Client) Nodes {
	list, err := c.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return Nodes{Err: errText(err)}
	}
	var out Nodes
	for _, n := range list.Items {
		node := Node{Name: n.Name, PodCIDR: n.Spec.PodCIDR}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				node.Ready = cond.Status == corev1.ConditionTrue
			}
		}
		out.Items = append(out.Items, node)
	}
	return out
}

// Known DaemonSets of other CNIs and of kube-proxy, by name prefix, and
// other meshes' injection webhooks.
var (
	otherCNIs = []string{"kindnet", "kube-flannel", "calico-node", "cilium", "weave-net", "aws-node", "canal", "antrea-agent", "kube-router", "kube-ovn"}
	otherMesh = []string{"istio-sidecar-injector", "istio-revision-tag", "linkerd-proxy-injector", "kuma-admission-mutating"}
)

func conflicts(ctx context.Context, c *kube.Client) []Conflict {
	var out []Conflict
	dss, err := c.Kube.AppsV1().DaemonSets("").List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, ds := range dss.Items {
			what := fmt.Sprintf("DaemonSet %s/%s", ds.Namespace, ds.Name)
			switch {
			case ds.Name == "kube-proxy" || strings.HasPrefix(ds.Name, "kube-proxy-"):
				out = append(out, Conflict{Component: "proxy", What: what})
			case hasPrefix(ds.Name, otherCNIs):
				out = append(out, Conflict{Component: "cni", What: what})
			}
		}
	}
	mwcs, err := c.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, m := range mwcs.Items {
			if hasPrefix(m.Name, otherMesh) {
				out = append(out, Conflict{Component: "mesh", What: "MutatingWebhookConfiguration " + m.Name})
			}
		}
	}
	return out
}

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// installPermissions are what meshctl install does.
var installPermissions = []authzv1.ResourceAttributes{
	{Verb: "create", Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions"},
	{Verb: "create", Resource: "namespaces"},
	{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "clusterroles"},
	{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"},
	{Verb: "create", Group: "admissionregistration.k8s.io", Resource: "mutatingwebhookconfigurations"},
	{Verb: "create", Group: "apps", Resource: "deployments", Namespace: Namespace},
	{Verb: "create", Group: "apps", Resource: "daemonsets", Namespace: Namespace},
	{Verb: "create", Resource: "serviceaccounts", Namespace: Namespace},
	{Verb: "create", Resource: "services", Namespace: Namespace},
	{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "roles", Namespace: Namespace},
	{Verb: "create", Resource: "secrets", Namespace: Namespace},
}

func access(ctx context.Context, c *kube.Client) []Access {
	var out []Access
	for _, ra := range installPermissions {
		a := Access{Verb: ra.Verb, Group: ra.Group, Resource: ra.Resource, Namespace: ra.Namespace}
		ra := ra
		r, err := c.Kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authzv1.SelfSubjectAccessReview{
			Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &ra}}, metav1.CreateOptions{})
		if err != nil {
			a.Err = errText(err)
		} else {
			a.Allowed = r.Status.Allowed
		}
		out = append(out, a)
	}
	return out
}

// components' workloads, in the order checked.
var componentWorkloads = []struct {
	component, kind, namespace, name string
}{
	{"mesh", "Deployment", Namespace, "weft-pilot"},
	{"mesh", "Deployment", Namespace, "weft-injector"},
	{"cni", "DaemonSet", Namespace, "weft-cni-node"},
	{"proxy", "DaemonSet", Namespace, "weft-proxy"},
	{"dns", "Deployment", "kube-system", "coredns"},
}

func workloads(ctx context.Context, c *kube.Client) []Workload {
	var out []Workload
	for _, cw := range componentWorkloads {
		w := Workload{Component: cw.component, Kind: cw.kind, Name: cw.name}
		var sel *metav1.LabelSelector
		var objLabels map[string]string
		switch cw.kind {
		case "Deployment":
			d, err := c.Kube.AppsV1().Deployments(cw.namespace).Get(ctx, cw.name, metav1.GetOptions{})
			if err == nil {
				w.Found = true
				w.Ready, w.Status = lifecycle.DeploymentReady(d)
				sel, objLabels = d.Spec.Selector, d.Labels
				w.Image = firstImage(d.Spec.Template.Spec)
			} else if !apierrors.IsNotFound(err) {
				w.Err = errText(err)
			}
		case "DaemonSet":
			ds, err := c.Kube.AppsV1().DaemonSets(cw.namespace).Get(ctx, cw.name, metav1.GetOptions{})
			if err == nil {
				w.Found = true
				w.Ready, w.Status = lifecycle.DaemonSetReady(ds)
				sel, objLabels = ds.Spec.Selector, ds.Labels
				w.Image = firstImage(ds.Spec.Template.Spec)
			} else if !apierrors.IsNotFound(err) {
				w.Err = errText(err)
			}
		}
		if cw.component == "dns" && objLabels["app.kubernetes.io/part-of"] != "weft" {
			continue // the cluster's own DNS is not Weft's to check
		}
		if w.Found && !w.Ready && sel != nil {
			w.Problems = diagnose(ctx, c, cw.namespace, sel)
		}
		out = append(out, w)
	}
	return out
}

func firstImage(spec corev1.PodSpec) string {
	if len(spec.Containers) == 0 {
		return ""
	}
	return spec.Containers[0].Image
}

func diagnose(ctx context.Context, c *kube.Client, ns string, sel *metav1.LabelSelector) []string {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil
	}
	pods, err := c.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: s.String()})
	if err != nil {
		return []string{errText(err)}
	}
	var events []corev1.Event
	for _, p := range pods.Items {
		evs, err := c.Kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("involvedObject.name", p.Name).String()})
		if err == nil {
			events = append(events, evs.Items...)
		}
	}
	return lifecycle.DiagnosePods(pods.Items, events)
}

func crds(ctx context.Context, c *kube.Client) CRDs {
	list, err := c.Dynamic.Resource(lifecycle.CRDResource).List(ctx, metav1.ListOptions{})
	if err != nil {
		return CRDs{Err: errText(err)}
	}
	var out CRDs
	for _, item := range list.Items {
		if !strings.HasSuffix(item.GetName(), ".mesh.weft.dev") {
			continue
		}
		out.Items = append(out.Items, CRD{Name: item.GetName(), Established: established(item.Object)})
	}
	return out
}

func established(obj map[string]any) bool {
	status, _ := obj["status"].(map[string]any)
	conds, _ := status["conditions"].([]any)
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// RedirectMissingReason is the reason of weft-cni-node's warning event on a
// meshed pod whose traffic redirect rules are missing.
const RedirectMissingReason = "RedirectRulesMissing"

func redirect(ctx context.Context, c *kube.Client) Redirect {
	var r Redirect
	pods, err := c.Kube.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.Set{"app.kubernetes.io/name": "weft-cni-node"}.String()})
	if err != nil || len(pods.Items) == 0 {
		return r
	}
	for _, p := range pods.Items {
		rc := RedirectChecker{Node: p.Spec.NodeName, Pod: p.Name}
		if p.Status.Phase != corev1.PodRunning {
			rc.Err = "pod " + p.Name + " is " + string(p.Status.Phase)
		} else if body, err := c.PodHTTP.Get(ctx, Namespace, p.Name, 9657, "/metrics"); err != nil {
			rc.Err = errText(err)
		} else {
			rc.Missing = int(gauge(string(body), "weft_cni_node_redirect_missing_pods"))
		}
		r.Checkers = append(r.Checkers, rc)
	}
	evs, err := c.Kube.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "reason=" + RedirectMissingReason})
	if err != nil {
		return r
	}
	for _, e := range evs.Items {
		if e.Reason != RedirectMissingReason {
			continue
		}
		p, err := c.Kube.CoreV1().Pods(e.InvolvedObject.Namespace).Get(ctx, e.InvolvedObject.Name, metav1.GetOptions{})
		if err != nil || p.UID != e.InvolvedObject.UID {
			continue
		}
		r.Events = append(r.Events, RedirectEvent{Namespace: p.Namespace, Pod: p.Name, Node: p.Spec.NodeName, Message: e.Message})
	}
	return r
}

// gauge sums the samples of a Prometheus metric in a text exposition.
func gauge(text, name string) float64 {
	sum := 0.0
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest != "" && rest[0] != ' ' && rest[0] != '{' {
			continue // a longer metric name
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}
