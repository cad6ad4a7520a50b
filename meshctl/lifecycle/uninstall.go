package lifecycle

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/weftmesh/weft/api/annotation"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
)

// Objects the mesh creates at runtime, not rendered in the manifests.
const (
	CASecret       = "weft-ca"           // pilot's self-signed root (pilot/ca/rootstore)
	InjectorSecret = "weft-injector-tls" // the webhook's CA and serving cert (injector/certsync.go)
	RootCertMap    = "weft-root-cert"    // trust bundle in every meshed namespace (pilot/ca/rootpublisher)
	RootCertMapKey = "root-cert.pem"     // its data key
	// PluggedCASecret is an operator's CA (Istio's cacerts layout). It is
	// the operator's, so uninstall keeps it.
	PluggedCASecret = "cacerts"
)

// sharedCRDGroup holds CRDs Weft installs but other projects may own too.
const sharedCRDGroup = "gateway.networking.k8s.io"

// UninstallOptions says what to remove besides the plan's objects.
type UninstallOptions struct {
	// KeepNamespace keeps weft-system because components outside the plan
	// still run there.
	KeepNamespace bool
	// NoNodeCleanup skips the cleanup DaemonSet (the namespace it would
	// run in is already gone).
	NoNodeCleanup bool
}

// Leftovers is what uninstall deliberately did not touch, for the user.
type Leftovers struct {
	// SidecarPods counts, per namespace, pods that still run the sidecar
	// (they lose it when restarted).
	SidecarPods map[string]int
	// LabelledNamespaces still carry weft-injection=enabled (the user's
	// label; harmless without the webhook).
	LabelledNamespaces []string
	// KeptCRDs are shared CRDs that another manager also owns.
	KeptCRDs []string
	// PluggedCA is true when the operator's cacerts Secret was kept.
	PluggedCA bool
}

// Uninstall removes the plan: the webhook first (so pod creation never
// waits on a stopping injector), then node agents and their node state via
// the cleanup DaemonSet, then every other object in reverse order, the
// runtime objects of the mesh, and the CRDs, waiting until the components'
// pods are gone.
func (in *Installer) Uninstall(ctx context.Context, p Plan, opts UninstallOptions) (Leftovers, error) {
	var left Leftovers
	if p.Values.Components.Mesh {
		if err := in.step("injection webhook removed", func() error {
			return in.deleteObjects(ctx, p.Objects, func(o *unstructured.Unstructured) bool {
				return o.GetKind() == "MutatingWebhookConfiguration"
			})
		}); err != nil {
			return left, err
		}
	}
	if !opts.NoNodeCleanup {
		// Pods on the pod network (pilot, injector, CoreDNS) must be gone
		// before the node cleanup removes the CNI config: without it the
		// runtime cannot tear their sandboxes down and they never go.
		if err := in.step("Deployments removed before the pod network", func() error {
			return in.deleteDeployments(ctx, p)
		}); err != nil {
			return left, err
		}
		if err := in.cleanupNodes(ctx, p); err != nil {
			return left, err
		}
	}
	rest := func(o *unstructured.Unstructured) bool {
		return !(opts.KeepNamespace && o.GetKind() == "Namespace")
	}
	if err := in.step(fmt.Sprintf("%s objects deleted", countOf(p.Objects, rest)), func() error {
		return in.deleteObjects(ctx, p.Objects, rest)
	}); err != nil {
		return left, err
	}
	if p.Values.Components.Mesh {
		if err := in.step("runtime objects deleted (Secrets "+CASecret+", "+InjectorSecret+"; ConfigMaps "+RootCertMap+")", func() error {
			var err error
			left.PluggedCA, err = in.deleteRuntime(ctx)
			return err
		}); err != nil {
			return left, err
		}
	}
	if len(p.CRDs) > 0 {
		if err := in.step("CRDs deleted", func() error {
			var err error
			left.KeptCRDs, err = in.deleteCRDs(ctx, p.CRDs)
			return err
		}); err != nil {
			return left, err
		}
	}
	if err := in.step("components' pods gone", func() error { return in.waitPodsGone(ctx, p, opts) }); err != nil {
		return left, err
	}
	if p.Values.Components.Mesh {
		var err error
		if left.SidecarPods, left.LabelledNamespaces, err = in.meshLeftovers(ctx); err != nil {
			return left, err
		}
	}
	return left, nil
}

func countOf(objs []*unstructured.Unstructured, keep func(*unstructured.Unstructured) bool) string {
	n := 0
	for _, o := range objs {
		if keep(o) {
			n++
		}
	}
	return fmt.Sprint(n)
}

func (in *Installer) deleteObjects(ctx context.Context, objs []*unstructured.Unstructured, keep func(*unstructured.Unstructured) bool) error {
	var sel []*unstructured.Unstructured
	for _, o := range objs {
		if keep(o) {
			sel = append(sel, o)
		}
	}
	return in.cfg.Applier.Delete(ctx, sel)
}

// deleteDeployments deletes the plan's Deployments and waits until their
// pods are gone.
func (in *Installer) deleteDeployments(ctx context.Context, p Plan) error {
	isDeployment := func(o *unstructured.Unstructured) bool { return o.GetKind() == "Deployment" }
	if err := in.deleteObjects(ctx, p.Objects, isDeployment); err != nil {
		return err
	}
	return in.poll(ctx, func(ctx context.Context) (bool, error) {
		for _, o := range p.Objects {
			if !isDeployment(o) {
				continue
			}
			if n, err := in.podsOf(ctx, o); err != nil || n > 0 {
				return false, err
			}
		}
		return true, nil
	})
}

// cleanupNodes stops the node agents, then runs their cleanup on every
// node and removes the cleanup DaemonSet again. The agents go first:
// running, they would restore what the cleanup removes.
func (in *Installer) cleanupNodes(ctx context.Context, p Plan) error {
	ds, ok, err := NodeCleanupDaemonSet(p)
	if err != nil || !ok {
		return err
	}
	var agents []*unstructured.Unstructured
	for _, a := range nodeAgents {
		if o, found := p.Find("DaemonSet", a.DaemonSet); found {
			agents = append(agents, o)
		}
	}
	if err := in.step("node agents stopped", func() error {
		if err := in.cfg.Applier.Delete(ctx, agents); err != nil {
			return err
		}
		return in.poll(ctx, func(ctx context.Context) (bool, error) {
			for _, a := range agents {
				n, err := in.podsOf(ctx, a)
				if err != nil || n > 0 {
					return false, err
				}
			}
			return true, nil
		})
	}); err != nil {
		return err
	}
	u, err := toUnstructured(ds)
	if err != nil {
		return err
	}
	cleanup := []*unstructured.Unstructured{u}
	if err := in.step("node cleanup DaemonSet "+CleanupDaemonSetName+" started", func() error {
		return in.cfg.Applier.Apply(ctx, cleanup)
	}); err != nil {
		return err
	}
	waitErr := in.WaitReady(ctx, []Workload{{Kind: "DaemonSet", Namespace: Namespace, Name: CleanupDaemonSetName}})
	delErr := in.step("node cleanup DaemonSet removed", func() error {
		if err := in.cfg.Applier.Delete(ctx, cleanup); err != nil {
			return err
		}
		return in.poll(ctx, func(ctx context.Context) (bool, error) {
			n, err := in.podsOf(ctx, u)
			return n == 0, err
		})
	})
	if waitErr != nil {
		return fmt.Errorf("node cleanup: %w", waitErr)
	}
	return delErr
}

// podsOf counts the pods selected by a rendered workload.
func (in *Installer) podsOf(ctx context.Context, w *unstructured.Unstructured) (int, error) {
	ml, _, _ := unstructured.NestedStringMap(w.Object, "spec", "selector", "matchLabels")
	if len(ml) == 0 {
		return 0, nil
	}
	pods, err := in.cfg.Kube.CoreV1().Pods(w.GetNamespace()).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(ml).String()})
	if err != nil {
		return 0, err
	}
	return len(pods.Items), nil
}

func (in *Installer) deleteRuntime(ctx context.Context) (plugged bool, err error) {
	secrets := in.cfg.Kube.CoreV1().Secrets(Namespace)
	for _, name := range []string{CASecret, InjectorSecret} {
		if err := secrets.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("delete secret %s/%s: %w", Namespace, name, err)
		}
	}
	_, err = secrets.Get(ctx, PluggedCASecret, metav1.GetOptions{})
	plugged = err == nil
	cms, err := in.cfg.Kube.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", RootCertMap).String()})
	if err != nil {
		return plugged, fmt.Errorf("list %s config maps: %w", RootCertMap, err)
	}
	for _, cm := range cms.Items {
		if cm.Name != RootCertMap {
			continue // never delete what the field selector should have left out
		}
		err := in.cfg.Kube.CoreV1().ConfigMaps(cm.Namespace).Delete(ctx, cm.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return plugged, fmt.Errorf("delete config map %s/%s: %w", cm.Namespace, cm.Name, err)
		}
	}
	return plugged, nil
}

// deleteCRDs deletes Weft's CRDs (and with them every custom resource)
// and the shared ones nobody but a Weft installer manages, then waits
// until they are gone.
func (in *Installer) deleteCRDs(ctx context.Context, crds []*unstructured.Unstructured) ([]string, error) {
	var del []*unstructured.Unstructured
	var kept []string
	for _, c := range crds {
		if strings.HasSuffix(c.GetName(), "."+sharedCRDGroup) {
			live, err := in.cfg.Dynamic.Resource(CRDResource).Get(ctx, c.GetName(), metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if others := otherManagers(live); len(others) > 0 {
				kept = append(kept, fmt.Sprintf("%s (also managed by %s)", c.GetName(), strings.Join(others, ", ")))
				continue
			}
		}
		del = append(del, c)
	}
	if err := in.cfg.Applier.Delete(ctx, del); err != nil {
		return kept, err
	}
	return kept, in.poll(ctx, func(ctx context.Context) (bool, error) {
		for _, c := range del {
			_, err := in.cfg.Dynamic.Resource(CRDResource).Get(ctx, c.GetName(), metav1.GetOptions{})
			if err == nil {
				return false, nil
			}
			if !apierrors.IsNotFound(err) {
				return false, err
			}
		}
		return true, nil
	})
}

// otherManagers are the field managers of obj's spec that are not Weft
// installers (status writers such as the API server do not count).
func otherManagers(obj *unstructured.Unstructured) []string {
	var out []string
	for _, mf := range obj.GetManagedFields() {
		if mf.Subresource != "" || slices.Contains(installers, mf.Manager) || slices.Contains(out, mf.Manager) {
			continue
		}
		out = append(out, mf.Manager)
	}
	sort.Strings(out)
	return out
}

func (in *Installer) waitPodsGone(ctx context.Context, p Plan, opts UninstallOptions) error {
	var workloads []*unstructured.Unstructured
	for _, w := range p.Workloads() {
		if o, ok := p.Find(w.Kind, w.Name); ok {
			workloads = append(workloads, o)
		}
	}
	return in.poll(ctx, func(ctx context.Context) (bool, error) {
		for _, w := range workloads {
			n, err := in.podsOf(ctx, w)
			if err != nil || n > 0 {
				return false, err
			}
		}
		if opts.KeepNamespace {
			return true, nil
		}
		_, err := in.cfg.Kube.CoreV1().Namespaces().Get(ctx, Namespace, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

func (in *Installer) meshLeftovers(ctx context.Context) (map[string]int, []string, error) {
	pods, err := in.cfg.Kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("list pods: %w", err)
	}
	counts := map[string]int{}
	for _, p := range pods.Items {
		if _, ok := p.Annotations[annotation.StatusAnnotation]; ok && p.DeletionTimestamp == nil {
			counts[p.Namespace]++
		}
	}
	nss, err := in.cfg.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: annotation.InjectionLabel + "=" + annotation.InjectionEnabled})
	if err != nil {
		return nil, nil, fmt.Errorf("list namespaces: %w", err)
	}
	var labelled []string
	for _, ns := range nss.Items {
		labelled = append(labelled, ns.Name)
	}
	return counts, labelled, nil
}
