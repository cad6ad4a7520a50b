//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/install"
	"github.com/weftmesh/weft/install/nodecleanup"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// TestUninstallHookProgram runs the chart's pre-delete hook program
// (nodecleanup.Run, what Job weft-uninstall runs) against the cluster
// without uninstalling anything: in a scratch namespace, with the hook's
// own generated Role (copied there) as the only permissions, over
// stand-ins named like the real objects — a Deployment "weft-pilot" and
// node agents "weft-cni-node" and "weft-proxy" whose container is
// `weft-cni-node --help`, which exits at once, so the appended --cleanup
// is never parsed (and the stand-ins have no privileges, mounts or API
// token either). It checks the whole sequence: the Deployment's pods gone,
// the agents stopped, the cleanup DaemonSet Ready on every node, then
// removed. The hook's rendered objects are also validated by a server-side
// dry run. The real webhook is never touched (no --webhook here).
func TestUninstallHookProgram(t *testing.T) {
	ctx := context.Background()
	v := install.Defaults()
	if p := installValuesPath(t); p != "" {
		v = readInstallValues(t, p)
	}
	v.Components.CNI, v.Components.Proxy = true, true
	stream, err := install.RenderHooks(v)
	require.NoError(t, err)
	hooks, err := install.Decode(stream)
	require.NoError(t, err)
	require.NotEmpty(t, hooks)

	t.Run("the hook's objects validate", func(t *testing.T) {
		dyn, err := dynamic.NewForConfig(cluster.Config)
		require.NoError(t, err)
		dc, err := discovery.NewDiscoveryClientForConfig(cluster.Config)
		require.NoError(t, err)
		mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
		for _, o := range hooks {
			assert.NoError(t, dryRunApply(ctx, dyn, mapper, o), "%s %s/%s", o.GetKind(), o.GetNamespace(), o.GetName())
		}
	})

	job := hookObject[batchv1.Job](t, hooks, "Job", "weft-system", "weft-uninstall")
	role := hookObject[rbacv1.Role](t, hooks, "Role", "weft-system", "weft-uninstall")
	c := job.Spec.Template.Spec.Containers[0]
	pause := argValue(t, c.Args, "--pause-image")
	pull := corev1.PullPolicy(argValue(t, c.Args, "--pull-policy"))

	ns := newNamespace(t, "e2e-uninstall-hook", nil)
	cs := clients(t)
	// The hook's ServiceAccount and Role, moved to the scratch namespace.
	_, err = cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "weft-uninstall"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "weft-uninstall"}, Rules: role.Rules}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "weft-uninstall"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "weft-uninstall"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "weft-uninstall", Namespace: ns}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	// Stand-ins, named as the Role's resourceNames expect.
	noop := corev1.Container{
		Name: "agent", Image: v.Image("cni-node"), ImagePullPolicy: pull,
		Command: []string{"/usr/local/bin/weft-cni-node"}, Args: []string{"--help"},
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot: hookRef(true), RunAsUser: hookRef(int64(65532)), AllowPrivilegeEscalation: hookRef(false),
			ReadOnlyRootFilesystem: hookRef(true), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
	for _, name := range []string{"weft-cni-node", "weft-proxy"} {
		ds := standIn(name)
		ds.Spec.Template.Spec.Containers = []corev1.Container{noop}
		_, err := cs.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	pilot := deployment("weft-pilot", 1, podSpec(corev1.Container{Name: "pause", Image: pause, ImagePullPolicy: pull}))
	pilot.Spec.Selector.MatchLabels = map[string]string{"app.kubernetes.io/name": "weft-pilot"}
	pilot.Spec.Template.Labels = pilot.Spec.Selector.MatchLabels
	_, err = cs.AppsV1().Deployments(ns).Create(ctx, pilot, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cluster.WaitPodsReady(ctx, ns, "app.kubernetes.io/name=weft-pilot", 1, 2*time.Minute)
	require.NoError(t, err)

	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	asHook := rest.CopyConfig(cluster.Config)
	asHook.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":weft-uninstall"}
	hookClient, err := kubernetes.NewForConfig(asHook)
	require.NoError(t, err)

	start := time.Now()
	rep, err := nodecleanup.Run(ctx, nodecleanup.Config{
		Client: hookClient, Namespace: ns, PauseImage: pause, PullPolicy: pull, Timeout: 2 * time.Minute,
		Deployments: []types.NamespacedName{{Namespace: ns, Name: "weft-pilot"}},
	})
	require.NoError(t, err, "with only the hook's permissions")
	t.Logf("cleanup DaemonSet ran on %d nodes; the whole sequence took %v", rep.Nodes, time.Since(start).Round(time.Millisecond))
	assert.EqualValues(t, len(nodes.Items), rep.Nodes, "every node ran the cleanup")

	for _, name := range []string{"weft-cni-node", "weft-proxy", nodecleanup.DaemonSetName} {
		_, err := cs.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "DaemonSet %s: %v", name, err)
	}
	_, err = cs.AppsV1().Deployments(ns).Get(ctx, "weft-pilot", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "Deployment weft-pilot: %v", err)
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, pods.Items, "no pod of the namespace is left")

	// Nothing left to clean: a second run (a retried Job) is a no-op.
	rep, err = nodecleanup.Run(ctx, nodecleanup.Config{Client: hookClient, Namespace: ns, PauseImage: pause, PullPolicy: pull, Timeout: time.Minute})
	require.NoError(t, err)
	assert.Zero(t, rep.Nodes)
}

func hookObject[T any](t *testing.T, objs []*unstructured.Unstructured, kind, ns, name string) *T {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetNamespace() == ns && o.GetName() == name {
			out := new(T)
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, out))
			return out
		}
	}
	require.Failf(t, "hook not rendered", "%s %s/%s", kind, ns, name)
	return nil
}

// argValue is the value of --name=value in args.
func argValue(t *testing.T, args []string, name string) string {
	t.Helper()
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	require.Failf(t, "flag not rendered", "%s in %q", name, args)
	return ""
}

// standIn is a DaemonSet selecting app.kubernetes.io/name=name, as the
// chart's agents do.
func standIn(name string) *appsv1.DaemonSet {
	l := map[string]string{"app.kubernetes.io/name": name}
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: l},
				Spec: corev1.PodSpec{TerminationGracePeriodSeconds: new(int64), Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}}}},
		},
	}
}

func hookRef[T any](v T) *T { return &v }
