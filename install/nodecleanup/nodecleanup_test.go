package nodecleanup

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const ns = "weft-system"

func agentDaemonSet(name string, args ...string) *appsv1.DaemonSet {
	l := map[string]string{"app.kubernetes.io/name": name}
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: l},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name: "agent", Image: "weft.local/" + name + ":dev", Args: args,
						Ports:          []corev1.ContainerPort{{ContainerPort: 9657}},
						ReadinessProbe: &corev1.Probe{},
						VolumeMounts:   []corev1.VolumeMount{{Name: "cni-bin", MountPath: "/host/opt/cni/bin"}},
					}},
					Volumes: []corev1.Volume{{Name: "cni-bin", VolumeSource: corev1.VolumeSource{
						HostPath: &corev1.HostPathVolumeSource{Path: "/opt/cni/bin"}}}},
				},
			},
		},
	}
}

func deployment(namespace, name string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": name}}},
	}
}

func pod(namespace, name, app string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace,
		Labels: map[string]string{"app.kubernetes.io/name": app}}}
}

func TestDaemonSetRunsEachAgentInCleanupMode(t *testing.T) {
	cni := agentDaemonSet("weft-cni-node", "--cni-bin-dir=/host/opt/cni/bin")
	proxy := agentDaemonSet("weft-proxy", "--hostname-override=$(NODE_NAME)")
	ds, ok := DaemonSet(DaemonSetConfig{Namespace: ns, PauseImage: "weft.local/pause:dev", PullPolicy: corev1.PullNever,
		Agents: []Found{{Agents[0], cni}, {Agents[1], proxy}}})
	require.True(t, ok)
	spec := ds.Spec.Template.Spec
	require.Len(t, spec.InitContainers, 2)
	assert.Equal(t, "weft-cni-node", spec.InitContainers[0].Name)
	assert.Equal(t, []string{"--cni-bin-dir=/host/opt/cni/bin", "--cleanup"}, spec.InitContainers[0].Args)
	assert.Equal(t, []string{"--hostname-override=$(NODE_NAME)", "--cleanup"}, spec.InitContainers[1].Args)
	assert.Equal(t, "weft.local/weft-proxy:dev", spec.InitContainers[1].Image)
	assert.Nil(t, spec.InitContainers[0].ReadinessProbe)
	assert.Empty(t, spec.InitContainers[0].Ports)
	assert.Len(t, spec.Volumes, 1, "a volume both agents mount is there once")
	assert.Equal(t, []string{"--cni-bin-dir=/host/opt/cni/bin"}, cni.Spec.Template.Spec.Containers[0].Args, "the agent is not changed")
	assert.True(t, spec.HostNetwork)
	assert.False(t, *spec.AutomountServiceAccountToken, "cleanup mode needs no API access")
	assert.Equal(t, corev1.Container{Name: "done", Image: "weft.local/pause:dev", ImagePullPolicy: corev1.PullNever}, spec.Containers[0])
	assert.Equal(t, ns, ds.Namespace)

	assert.False(t, Paused(ds))
	Pause(ds)
	assert.True(t, Paused(ds))
	Resume(ds)
	assert.False(t, Paused(ds))
	assert.Empty(t, ds.Spec.Template.Spec.NodeSelector)

	_, ok = DaemonSet(DaemonSetConfig{Namespace: ns, PauseImage: "p"})
	assert.False(t, ok)
}

func TestReady(t *testing.T) {
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Generation: 2}}
	ds.Status = appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberReady: 3}
	ok, _ := Ready(ds)
	assert.False(t, ok, "status of an older generation")
	ds.Status.ObservedGeneration = 2
	ok, n := Ready(ds)
	assert.True(t, ok)
	assert.EqualValues(t, 3, n)
	ds.Status.NumberReady = 2
	ok, _ = Ready(ds)
	assert.False(t, ok)
	ds.Status = appsv1.DaemonSetStatus{ObservedGeneration: 2}
	ok, _ = Ready(ds)
	assert.False(t, ok, "no node to run on")
}

// cluster is a fake clientset playing the controllers Run relies on: pods
// of a deleted Deployment or DaemonSet go, and a resumed cleanup DaemonSet
// becomes Ready on nodes nodes (never, with nodes 0).
type cluster struct {
	*fake.Clientset
	nodes   int32
	actions []string
}

func newCluster(t *testing.T, nodes int32, objs ...runtime.Object) *cluster {
	t.Helper()
	c := &cluster{Clientset: fake.NewClientset(objs...), nodes: nodes}
	c.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		switch a.GetVerb() {
		case "create", "update", "delete":
			name := ""
			switch a := a.(type) {
			case k8stesting.DeleteAction:
				name = a.GetName()
			case k8stesting.CreateAction:
				name = a.GetObject().(metav1.Object).GetName()
			case k8stesting.UpdateAction:
				name = a.GetObject().(metav1.Object).GetName()
			}
			c.actions = append(c.actions, a.GetVerb()+" "+a.GetResource().Resource+" "+name)
		}
		return false, nil, nil
	})
	gone := func(a k8stesting.Action) (bool, runtime.Object, error) {
		d := a.(k8stesting.DeleteAction)
		obj, err := c.Tracker().Get(a.GetResource(), d.GetNamespace(), d.GetName())
		if err != nil {
			return false, nil, nil
		}
		var sel *metav1.LabelSelector
		switch o := obj.(type) {
		case *appsv1.Deployment:
			sel = o.Spec.Selector
		case *appsv1.DaemonSet:
			sel = o.Spec.Selector
		}
		s, err := metav1.LabelSelectorAsSelector(sel)
		require.NoError(t, err)
		pods, err := c.Tracker().List(corev1.SchemeGroupVersion.WithResource("pods"), corev1.SchemeGroupVersion.WithKind("Pod"), d.GetNamespace())
		require.NoError(t, err)
		for _, p := range pods.(*corev1.PodList).Items {
			if s.Matches(labels.Set(p.Labels)) {
				require.NoError(t, c.Tracker().Delete(corev1.SchemeGroupVersion.WithResource("pods"), p.Namespace, p.Name))
			}
		}
		return false, nil, nil
	}
	c.PrependReactor("delete", "deployments", gone)
	c.PrependReactor("delete", "daemonsets", gone)
	c.PrependReactor("update", "daemonsets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ds := a.(k8stesting.UpdateAction).GetObject().(*appsv1.DaemonSet)
		if ds.Name == DaemonSetName && !Paused(ds) && c.nodes > 0 {
			ds.Status = appsv1.DaemonSetStatus{DesiredNumberScheduled: c.nodes, UpdatedNumberScheduled: c.nodes, NumberReady: c.nodes}
		}
		return false, nil, nil
	})
	return c
}

func config(c *cluster) Config {
	return Config{Client: c, Namespace: ns, Webhook: "weft-sidecar-injector", PauseImage: "weft.local/pause:dev",
		Deployments: []types.NamespacedName{{Namespace: ns, Name: "weft-pilot"}, {Namespace: ns, Name: "weft-injector"}},
		Timeout:     time.Second, Poll: 10 * time.Millisecond}
}

func TestRunCleansNodesAfterStoppingWhatRunsThere(t *testing.T) {
	c := newCluster(t, 3,
		&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "weft-sidecar-injector"}},
		deployment(ns, "weft-pilot"), pod(ns, "pilot-1", "weft-pilot"),
		agentDaemonSet("weft-cni-node"), pod(ns, "cni-a", "weft-cni-node"), pod(ns, "cni-b", "weft-cni-node"),
		agentDaemonSet("weft-proxy"), pod(ns, "proxy-a", "weft-proxy"),
		pod(ns, "unrelated", "something-else"))
	rep, err := Run(context.Background(), config(c))
	require.NoError(t, err)
	assert.EqualValues(t, 3, rep.Nodes)
	assert.Equal(t, []string{
		"delete mutatingwebhookconfigurations weft-sidecar-injector",
		"delete deployments weft-pilot", // weft-injector is not installed: skipped
		"create daemonsets " + DaemonSetName,
		"delete daemonsets weft-cni-node",
		"delete daemonsets weft-proxy",
		"update daemonsets " + DaemonSetName,
		"delete daemonsets " + DaemonSetName,
	}, c.actions, "agents stop only once their specs are saved in the paused DaemonSet, and before it runs")

	ctx := context.Background()
	_, err = c.AppsV1().DaemonSets(ns).Get(ctx, DaemonSetName, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the cleanup DaemonSet is removed again")
	pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, pods.Items, 1)
	assert.Equal(t, "unrelated", pods.Items[0].Name)
}

func TestRunFinishesWhatAnEarlierAttemptStarted(t *testing.T) {
	saved, ok := DaemonSet(DaemonSetConfig{Namespace: ns, PauseImage: "weft.local/pause:dev",
		Agents: []Found{{Agents[0], agentDaemonSet("weft-cni-node", "--from-the-first-attempt")}}})
	require.True(t, ok)
	Pause(saved)
	c := newCluster(t, 2, saved) // the agents are gone already
	rep, err := Run(context.Background(), config(c))
	require.NoError(t, err)
	assert.EqualValues(t, 2, rep.Nodes)
	assert.Equal(t, []string{
		"delete mutatingwebhookconfigurations weft-sidecar-injector", // gone already: not an error
		"update daemonsets " + DaemonSetName, "delete daemonsets " + DaemonSetName,
	}, c.actions)
	var updated *appsv1.DaemonSet
	for _, a := range c.Actions() {
		if u, ok := a.(k8stesting.UpdateAction); ok {
			updated = u.GetObject().(*appsv1.DaemonSet)
		}
	}
	require.NotNil(t, updated)
	assert.Contains(t, updated.Spec.Template.Spec.InitContainers[0].Args, "--from-the-first-attempt", "the saved spec is what runs")
}

func TestRunWithoutNodeAgentsTouchesNoNode(t *testing.T) {
	c := newCluster(t, 3, deployment(ns, "weft-pilot"))
	rep, err := Run(context.Background(), config(c))
	require.NoError(t, err)
	assert.Zero(t, rep.Nodes)
	assert.Equal(t, []string{"delete mutatingwebhookconfigurations weft-sidecar-injector", "delete deployments weft-pilot"}, c.actions)
}

func TestRunThatTimesOutRemovesTheCleanupDaemonSet(t *testing.T) {
	c := newCluster(t, 0, agentDaemonSet("weft-proxy"))
	cfg := config(c)
	cfg.Timeout = 100 * time.Millisecond
	_, err := Run(context.Background(), cfg)
	require.Error(t, err)
	assert.ErrorContains(t, err, "Ready on every node: timed out after 100ms")
	_, err = c.AppsV1().DaemonSets(ns).Get(context.Background(), DaemonSetName, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err))
}

func TestRunNeedsItsInputs(t *testing.T) {
	_, err := Run(context.Background(), Config{Namespace: ns, PauseImage: "p"})
	assert.ErrorContains(t, err, "needs a client")
	c := newCluster(t, 1)
	_, err = Run(context.Background(), Config{Client: c, Namespace: ns})
	assert.ErrorContains(t, err, "pause image")
	assert.Empty(t, c.actions, fmt.Sprint(c.actions))
}
