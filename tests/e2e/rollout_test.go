//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/install"
	"github.com/weftmesh/weft/meshctl/lifecycle"
	"github.com/weftmesh/weft/tests/e2e/framework"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// Helpers of the upgrade test: which images an install runs, whether its
// components have rolled out to a version, and restarting workloads.

// chartImages are the images an install with v runs: every container of
// the rendered workloads and the injected sidecar.
func chartImages(t *testing.T, v install.Values) []string {
	t.Helper()
	plan, err := lifecycle.NewPlan(v)
	require.NoError(t, err)
	images := []string{}
	if v.Components.Mesh {
		images = append(images, v.Image("sidecar"))
	}
	for _, o := range plan.Objects {
		for _, field := range []string{"containers", "initContainers"} {
			cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", field)
			for _, c := range cs {
				if img, _ := c.(map[string]any)["image"].(string); img != "" && !slices.Contains(images, img) {
					images = append(images, img)
				}
			}
		}
	}
	slices.Sort(images)
	return images
}

// requireImagesOnNodes fails early, with the fix, when a node lacks one of
// the images an install with v needs (the kubelet lists a node's images in
// its status).
func requireImagesOnNodes(t *testing.T, v install.Values) {
	t.Helper()
	nodes, err := clients(t).CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	var missing []string
	for _, n := range nodes.Items {
		have := map[string]bool{}
		for _, img := range n.Status.Images {
			for _, name := range img.Names {
				have[name] = true
			}
		}
		for _, img := range chartImages(t, v) {
			if !have[img] {
				missing = append(missing, img+" on "+n.Name)
			}
		}
	}
	require.Empty(t, missing, "images of the upgrade are missing: `make images` writes the chart's images tagged %s, and the cluster loads every tarball of .cache/images (tests/cluster load-images, or kind load image-archive)", v.Tag)
}

// waitRollout waits until every Deployment and DaemonSet of an install
// with v is ready with all its pods running v's images (no pod of another
// version left, terminating or not).
func waitRollout(ctx context.Context, v install.Values, timeout time.Duration) error {
	plan, err := lifecycle.NewPlan(v)
	if err != nil {
		return err
	}
	var pending []string
	_, err = eventually(timeout, func() error {
		pending = pending[:0]
		for _, w := range plan.Workloads() {
			if why := rolloutProblem(ctx, w, v); why != "" {
				pending = append(pending, w.String()+": "+why)
			}
		}
		if len(pending) > 0 {
			return errors.New(strings.Join(pending, "; "))
		}
		return nil
	})
	return err
}

// rolloutProblem says why workload w is not rolled out to v, or "".
func rolloutProblem(ctx context.Context, w lifecycle.Workload, v install.Values) string {
	apps := cluster.Client.AppsV1()
	var sel *metav1.LabelSelector
	var want int
	var template corev1.PodSpec
	switch w.Kind {
	case "Deployment":
		d, err := apps.Deployments(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if ok, text := lifecycle.DeploymentReady(d); !ok {
			return text
		}
		sel, want, template = d.Spec.Selector, int(*d.Spec.Replicas), d.Spec.Template.Spec
	case "DaemonSet":
		ds, err := apps.DaemonSets(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if ok, text := lifecycle.DaemonSetReady(ds); !ok {
			return text
		}
		sel, want, template = ds.Spec.Selector, int(ds.Status.DesiredNumberScheduled), ds.Spec.Template.Spec
	default:
		return ""
	}
	wantImages := podImages(template)
	for _, img := range wantImages {
		if strings.HasPrefix(img, v.Registry+"/") && !strings.HasSuffix(img, ":"+v.Tag) {
			return fmt.Sprintf("template runs %s", img)
		}
	}
	pods, err := cluster.Client.CoreV1().Pods(w.Namespace).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(sel)})
	if err != nil {
		return err.Error()
	}
	if len(pods.Items) != want {
		return fmt.Sprintf("%d pods, want %d", len(pods.Items), want)
	}
	for _, p := range pods.Items {
		if got := podImages(p.Spec); !slices.Equal(got, wantImages) {
			return fmt.Sprintf("pod %s runs %v", p.Name, got)
		}
		if p.DeletionTimestamp != nil {
			return "pod " + p.Name + " terminating"
		}
	}
	return ""
}

// podImages lists the images of a pod spec's containers and init
// containers, sorted.
func podImages(spec corev1.PodSpec) []string {
	var out []string
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		out = append(out, c.Image)
	}
	slices.Sort(out)
	return out
}

// sidecarImage is the image of p's injected sidecar, or "".
func sidecarImage(p corev1.Pod) string {
	for _, c := range p.Spec.InitContainers {
		if c.Name == sidecarName {
			return c.Image
		}
	}
	return ""
}

// restartDeployment restarts a Deployment's pods as `kubectl rollout
// restart` does: a new template annotation.
func restartDeployment(t *testing.T, ns, name string) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, time.Now().Format(time.RFC3339))
	_, err := clients(t).AppsV1().Deployments(ns).Patch(context.Background(), name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	require.NoError(t, err, "restart %s/%s", ns, name)
}

// waitRestarted waits until the only pod matching selector is a new one
// (not old), Ready, with the sidecar image want, and returns it.
func waitRestarted(t *testing.T, ns, selector, old, want string) corev1.Pod {
	t.Helper()
	var pod corev1.Pod
	_, err := eventually(3*time.Minute, func() error {
		list, err := clients(t).CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return err
		}
		if len(list.Items) != 1 {
			return fmt.Errorf("%d pods", len(list.Items))
		}
		pod = list.Items[0]
		switch {
		case pod.Name == old:
			return errors.New("not restarted yet")
		case pod.DeletionTimestamp != nil || !framework.PodReady(pod):
			return fmt.Errorf("pod %s not ready", pod.Name)
		case sidecarImage(pod) != want:
			return fmt.Errorf("pod %s has sidecar %q", pod.Name, sidecarImage(pod))
		}
		return nil
	})
	require.NoError(t, err, "restart of %s in %s with sidecar %s", selector, ns, want)
	return pod
}

// serviceVersion matches the service.version resource attribute in a
// component's Prometheus target_info (pilot/telemetry.Version).
var serviceVersion = regexp.MustCompile(`target_info\{[^}]*service_version="([^"]*)"`)

// pilotVersions are the build versions the ready pilot replicas report on
// their metrics port (15014), read through the API server's pod proxy.
func pilotVersions(ctx context.Context, t *testing.T) []string {
	t.Helper()
	var out []string
	for _, p := range pilotPods(t) {
		raw, err := cluster.Client.CoreV1().Pods(p.Namespace).ProxyGet("http", p.Name, "15014", "/metrics", nil).DoRaw(ctx)
		require.NoError(t, err, "metrics of %s", p.Name)
		m := serviceVersion.FindSubmatch(raw)
		require.NotNil(t, m, "%s reports no service_version in target_info", p.Name)
		out = append(out, string(m[1]))
	}
	return out
}
