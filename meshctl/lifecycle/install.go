package lifecycle

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// Applier applies and deletes objects (install.Applier: server-side apply
// under FieldManager).
type Applier interface {
	Apply(ctx context.Context, objs []*unstructured.Unstructured) error
	Delete(ctx context.Context, objs []*unstructured.Unstructured) error
}

// Config configures an Installer.
type Config struct {
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
	Applier Applier
	// Out receives the progress display; Terminal redraws it in place.
	Out      io.Writer
	Terminal bool
	// Timeout bounds each wait (components ready, objects gone); Poll is
	// the interval between checks.
	Timeout, Poll time.Duration
}

// Installer installs and removes a Plan.
type Installer struct {
	cfg      Config
	progress *Progress
}

// New returns an Installer; zero durations get defaults (5m, 1s).
func New(cfg Config) *Installer {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Minute
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	return &Installer{cfg: cfg, progress: NewProgress(cfg.Out, cfg.Terminal)}
}

// CRDResource is the CustomResourceDefinition API.
var CRDResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// WebhookName is the injector's MutatingWebhookConfiguration.
const WebhookName = "weft-sidecar-injector"

// Install applies the plan in phases, each waited for before the next:
// the CRDs (established), then the node agents (DaemonSets) with every
// object that is not a Deployment or a webhook, then the Deployments
// (control plane, CoreDNS, collector) and the webhook. A fresh cluster gets
// its pod network before any pod needs it; an upgrade never restarts a
// node's Service proxy while CoreDNS's pods are replaced, which would leave
// that node's DNS rules pointing at a pod that is gone until the new proxy
// synced.
func (in *Installer) Install(ctx context.Context, p Plan) error {
	if len(p.CRDs) > 0 {
		if err := in.step(fmt.Sprintf("%d CRDs applied and established", len(p.CRDs)), func() error {
			if err := in.cfg.Applier.Apply(ctx, p.CRDs); err != nil {
				return err
			}
			return in.waitEstablished(ctx, p.CRDs)
		}); err != nil {
			return err
		}
	}
	nodes, control := phases(p.Objects)
	for _, phase := range []struct {
		what string
		objs []*unstructured.Unstructured
	}{{"node agents and shared objects", nodes}, {"control plane", control}} {
		if len(phase.objs) == 0 {
			continue
		}
		if err := in.step(fmt.Sprintf("%d objects applied: %s (server-side, field manager %s)", len(phase.objs), phase.what, FieldManager), func() error {
			return in.cfg.Applier.Apply(ctx, phase.objs)
		}); err != nil {
			return err
		}
		if ws := (Plan{Objects: phase.objs}).Workloads(); len(ws) > 0 {
			if err := in.WaitReady(ctx, ws); err != nil {
				return err
			}
		}
	}
	if p.Values.Components.Mesh {
		return in.step("injection webhook has its CA bundle", func() error { return in.waitCABundle(ctx) })
	}
	return nil
}

// phases splits objects (in apply order) into what goes before the
// Deployments — DaemonSets and everything else — and the Deployments and
// webhook configurations.
func phases(objs []*unstructured.Unstructured) (nodes, control []*unstructured.Unstructured) {
	for _, o := range objs {
		switch o.GetKind() {
		case "Deployment", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration":
			control = append(control, o)
		default:
			nodes = append(nodes, o)
		}
	}
	return nodes, control
}

// step runs fn and prints a done or failed line with its duration.
func (in *Installer) step(what string, fn func() error) error {
	start := time.Now()
	err := fn()
	it := Item{Name: what, State: Done, Took: time.Since(start)}
	if err != nil {
		it.State, it.Text = Failed, oneLine(err.Error())
	}
	in.progress.Step(it)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func (in *Installer) poll(ctx context.Context, fn func(context.Context) (bool, error)) error {
	err := wait.PollUntilContextTimeout(ctx, in.cfg.Poll, in.cfg.Timeout, true, fn)
	if wait.Interrupted(err) && ctx.Err() == nil {
		return fmt.Errorf("timed out after %v", in.cfg.Timeout)
	}
	return err
}

func (in *Installer) waitEstablished(ctx context.Context, crds []*unstructured.Unstructured) error {
	var pending []string
	err := in.poll(ctx, func(ctx context.Context) (bool, error) {
		pending = nil
		for _, c := range crds {
			obj, err := in.cfg.Dynamic.Resource(CRDResource).Get(ctx, c.GetName(), metav1.GetOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return false, err
			}
			if err != nil || !crdEstablished(obj) {
				pending = append(pending, c.GetName())
			}
		}
		return len(pending) == 0, nil
	})
	if err != nil && len(pending) > 0 {
		return fmt.Errorf("%w: not established: %s", err, strings.Join(pending, ", "))
	}
	return err
}

func crdEstablished(obj *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

func (in *Installer) waitCABundle(ctx context.Context) error {
	return in.poll(ctx, func(ctx context.Context) (bool, error) {
		mwc, err := in.cfg.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, WebhookName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		for _, w := range mwc.Webhooks {
			if len(w.ClientConfig.CABundle) == 0 {
				return false, nil
			}
		}
		return len(mwc.Webhooks) > 0, nil
	})
}

// WaitReady waits until every workload is ready, showing their progress.
// When the timeout passes, the error names each workload that is not
// ready and why (DiagnosePods).
func (in *Installer) WaitReady(ctx context.Context, ws []Workload) error {
	start := time.Now()
	items := make([]Item, len(ws))
	for i, w := range ws {
		items[i] = Item{Name: w.Kind + " " + w.Name, Text: "waiting"}
	}
	in.progress.Reset()
	err := in.poll(ctx, func(ctx context.Context) (bool, error) {
		all := true
		for i, w := range ws {
			if items[i].State == Done {
				continue
			}
			ready, text, err := in.workloadReady(ctx, w)
			if err != nil {
				return false, err
			}
			items[i].Text = text
			if ready {
				items[i].State, items[i].Took = Done, time.Since(start)
			}
			all = all && ready
		}
		in.progress.Update(items)
		return all, nil
	})
	if err == nil {
		in.progress.Reset()
		return nil
	}
	var notReady []string
	for i, w := range ws {
		if items[i].State == Done {
			continue
		}
		items[i].State = Failed
		why := in.diagnose(ctx, w)
		notReady = append(notReady, fmt.Sprintf("%s (%s)%s", w, items[i].Text, prefixed(": ", strings.Join(why, "; "))))
	}
	in.progress.Update(items)
	in.progress.Reset()
	return fmt.Errorf("not ready: %s: %w", strings.Join(notReady, "; "), err)
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

func (in *Installer) workloadReady(ctx context.Context, w Workload) (bool, string, error) {
	apps := in.cfg.Kube.AppsV1()
	switch w.Kind {
	case "Deployment":
		d, err := apps.Deployments(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, "not created yet", nil
		}
		if err != nil {
			return false, "", err
		}
		ok, text := DeploymentReady(d)
		return ok, text, nil
	case "DaemonSet":
		ds, err := apps.DaemonSets(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, "not created yet", nil
		}
		if err != nil {
			return false, "", err
		}
		ok, text := DaemonSetReady(ds)
		return ok, text, nil
	}
	return true, "", nil
}

// diagnose explains a workload that is not ready from its pods and their
// warning events. It works with a fresh context: the wait's has expired.
func (in *Installer) diagnose(parent context.Context, w Workload) []string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), 20*time.Second)
	defer cancel()
	var selector *metav1.LabelSelector
	apps := in.cfg.Kube.AppsV1()
	switch w.Kind {
	case "Deployment":
		if d, err := apps.Deployments(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{}); err == nil {
			selector = d.Spec.Selector
		}
	case "DaemonSet":
		if ds, err := apps.DaemonSets(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{}); err == nil {
			selector = ds.Spec.Selector
		}
	}
	if selector == nil {
		return []string{"not found"}
	}
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return nil
	}
	pods, err := in.cfg.Kube.CoreV1().Pods(w.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return []string{"list pods: " + err.Error()}
	}
	if len(pods.Items) == 0 {
		return in.controllerEvents(ctx, w)
	}
	var events []corev1.Event
	for _, p := range pods.Items {
		evs, err := in.cfg.Kube.CoreV1().Events(w.Namespace).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("involvedObject.name", p.Name).String()})
		if err == nil {
			events = append(events, evs.Items...)
		}
	}
	return DiagnosePods(pods.Items, events)
}

// controllerEvents explains a workload without pods (quota, admission
// webhooks, pod security) from the warnings on it and its ReplicaSets.
func (in *Installer) controllerEvents(ctx context.Context, w Workload) []string {
	evs, err := in.cfg.Kube.CoreV1().Events(w.Namespace).List(ctx, metav1.ListOptions{FieldSelector: "type=Warning"})
	if err != nil {
		return []string{"no pods"}
	}
	var out []string
	for _, e := range evs.Items {
		if strings.HasPrefix(e.InvolvedObject.Name, w.Name) {
			out = append(out, fmt.Sprintf("%s %s: %s", e.InvolvedObject.Kind, e.Reason, oneLine(e.Message)))
		}
	}
	if len(out) == 0 {
		return []string{"no pods created"}
	}
	return out
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}
