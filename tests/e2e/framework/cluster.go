// Package framework is the small toolkit of Weft's cluster-agnostic e2e
// suite and demo: clients from a kubeconfig, apply, wait, and exec into pods.
// It works against any cluster (the local one or kind).
package framework

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/weftmesh/weft/install"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/remotecommand"
)

// Cluster holds the clients of the cluster under test.
type Cluster struct {
	Config *rest.Config
	Client *kubernetes.Clientset
}

// Load builds clients from a kubeconfig file.
func Load(kubeconfig string) (*Cluster, error) {
	if kubeconfig == "" {
		return nil, fmt.Errorf("no kubeconfig given (-kubeconfig)")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return &Cluster{Config: cfg, Client: cs}, nil
}

// Apply server-side-applies a YAML stream (field manager weft-e2e).
func (c *Cluster) Apply(ctx context.Context, yaml []byte) error {
	objs, err := install.Decode(yaml)
	if err != nil {
		return err
	}
	a, err := install.NewApplier(c.Config, "weft-e2e")
	if err != nil {
		return err
	}
	return a.Apply(ctx, objs)
}

// CreateNamespace creates a namespace with labels.
func (c *Cluster) CreateNamespace(ctx context.Context, name string, labels map[string]string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

// DeleteNamespace deletes a namespace and waits until it is gone, so its
// pods' CNI DEL has run before the caller moves on.
func (c *Cluster) DeleteNamespace(ctx context.Context, name string, timeout time.Duration) error {
	err := c.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete namespace %s: %w", name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := c.Client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// WaitPodsReady waits until want pods match selector in ns and all are
// Ready, and returns them. On timeout the error says what each pod is doing.
func (c *Cluster) WaitPodsReady(ctx context.Context, ns, selector string, want int, timeout time.Duration) ([]corev1.Pod, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var pods []corev1.Pod
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		list, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, nil
		}
		pods = list.Items
		if len(pods) != want {
			return false, nil
		}
		for _, p := range pods {
			if p.DeletionTimestamp != nil || !PodReady(p) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("pods %q in %s: want %d ready, have %s: %w", selector, ns, want, describePods(pods), err)
	}
	return pods, nil
}

// PodReady reports the pod's Ready condition.
func PodReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func describePods(pods []corev1.Pod) string {
	if len(pods) == 0 {
		return "none"
	}
	var parts []string
	for _, p := range pods {
		state := string(p.Status.Phase)
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil {
				state += "/" + w.Reason
			}
		}
		parts = append(parts, fmt.Sprintf("%s on %s: %s", p.Name, p.Spec.NodeName, state))
	}
	return strings.Join(parts, "; ")
}

// Exec runs cmd in a pod's container and returns stdout and stderr. A
// non-zero exit is an error that carries stderr.
func (c *Cluster) Exec(ctx context.Context, ns, pod, container string, cmd ...string) (string, string, error) {
	req := c.Client.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: cmd, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	exec, err := remotecommand.NewSPDYExecutor(c.Config, "POST", req.URL())
	if err != nil {
		return "", "", fmt.Errorf("exec in %s/%s: %w", ns, pod, err)
	}
	var stdout, stderr bytes.Buffer
	if err := exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr}); err != nil {
		return stdout.String(), stderr.String(), fmt.Errorf("exec %v in %s/%s: %w: %s", cmd, ns, pod, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), stderr.String(), nil
}

// ApplyIn applies a YAML stream with every object placed in namespace ns.
func (c *Cluster) ApplyIn(ctx context.Context, ns string, yaml []byte) error {
	objs, err := install.Decode(yaml)
	if err != nil {
		return err
	}
	for _, o := range objs {
		o.SetNamespace(ns)
	}
	a, err := install.NewApplier(c.Config, "weft-e2e")
	if err != nil {
		return err
	}
	return a.Apply(ctx, objs)
}

// Delete deletes the objects of a YAML stream; missing ones are fine.
func (c *Cluster) Delete(ctx context.Context, yaml []byte) error {
	objs, err := install.Decode(yaml)
	if err != nil {
		return err
	}
	a, err := install.NewApplier(c.Config, "weft-e2e")
	if err != nil {
		return err
	}
	return a.Delete(ctx, objs)
}
