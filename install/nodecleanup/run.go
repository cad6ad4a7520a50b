package nodecleanup

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// Config configures Run.
type Config struct {
	Client kubernetes.Interface
	// Namespace holds the agents and gets the cleanup DaemonSet.
	Namespace string
	// Webhook is the MutatingWebhookConfiguration removed first, so pod
	// creation never waits on a stopping injector; "" keeps it.
	Webhook string
	// Deployments run on the pod network (pilot, injector, CoreDNS): they
	// must be gone before the CNI config is, or the runtime cannot tear
	// their sandboxes down and their pods never go.
	Deployments []types.NamespacedName
	// Agents to stop and clean up after (default Agents); missing ones are
	// skipped.
	Agents     []Agent
	PauseImage string
	PullPolicy corev1.PullPolicy
	// Timeout bounds each wait (default 2m); Poll is the interval between
	// checks (default 1s).
	Timeout, Poll time.Duration
}

// Report says what Run did.
type Report struct {
	// Nodes ran the cleanup; 0 when there was no agent to clean up after.
	Nodes int32
}

// Run removes the webhook and the Deployments, then builds the cleanup
// DaemonSet from the live agents, paused, stops the agents (running, they
// would restore what the cleanup removes), resumes the DaemonSet, waits
// until it is Ready on every node and deletes it again. Every step is
// idempotent and the paused DaemonSet carries the agents' specs, so a
// retry after a failure anywhere (the Job's next pod) finishes the work.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if cfg.Client == nil || cfg.Namespace == "" || cfg.PauseImage == "" {
		return Report{}, errors.New("node cleanup needs a client, a namespace and the pause image")
	}
	if cfg.Agents == nil {
		cfg.Agents = Agents
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	r := runner{cfg: cfg, log: logr.FromContextOrDiscard(ctx)}
	if err := r.deleteWebhook(ctx); err != nil {
		return Report{}, err
	}
	for _, d := range cfg.Deployments {
		if err := r.deleteDeployment(ctx, d); err != nil {
			return Report{}, err
		}
	}
	ds, err := r.pausedDaemonSet(ctx)
	if err != nil || ds == nil {
		return Report{}, err
	}
	for _, a := range cfg.Agents {
		if err := r.stopAgent(ctx, a); err != nil {
			return Report{}, err
		}
	}
	nodes, runErr := r.runCleanup(ctx)
	if err := r.deleteDaemonSet(ctx); err != nil {
		return Report{}, errors.Join(runErr, err)
	}
	return Report{Nodes: nodes}, runErr
}

type runner struct {
	cfg Config
	log logr.Logger
}

// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations,resourceNames=weft-sidecar-injector,verbs=delete

func (r runner) deleteWebhook(ctx context.Context) error {
	if r.cfg.Webhook == "" {
		return nil
	}
	err := r.cfg.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, r.cfg.Webhook, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete mutatingwebhookconfiguration %s: %w", r.cfg.Webhook, err)
	}
	r.log.Info("injection webhook removed", "name", r.cfg.Webhook)
	return nil
}

// The control plane's Deployments, and CoreDNS when the chart installs it
// (a role of its own, rendered only then). Pods are listed to wait for
// them to go.
// +kubebuilder:rbac:groups=apps,namespace=weft-system,resources=deployments,resourceNames=weft-pilot;weft-injector,verbs=get;delete
// +kubebuilder:rbac:groups="",namespace=weft-system,resources=pods,verbs=list
// +kubebuilder:rbac:groups=apps,namespace=kube-system,resources=deployments,resourceNames=coredns,verbs=get;delete,roleName=weft-uninstall-dns
// +kubebuilder:rbac:groups="",namespace=kube-system,resources=pods,verbs=list,roleName=weft-uninstall-dns

func (r runner) deleteDeployment(ctx context.Context, key types.NamespacedName) error {
	deps := r.cfg.Client.AppsV1().Deployments(key.Namespace)
	d, err := deps.Get(ctx, key.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get deployment %s: %w", key, err)
	}
	if err := deps.Delete(ctx, key.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete deployment %s: %w", key, err)
	}
	if err := r.waitPodsGone(ctx, key.Namespace, d.Spec.Selector); err != nil {
		return fmt.Errorf("pods of deployment %s: %w", key, err)
	}
	r.log.Info("deployment removed", "deployment", key.String())
	return nil
}

// The agents' DaemonSets are read and deleted by name; the cleanup
// DaemonSet is created (not limitable by name), resumed and deleted.
// +kubebuilder:rbac:groups=apps,namespace=weft-system,resources=daemonsets,resourceNames=weft-cni-node;weft-proxy;weft-node-cleanup,verbs=get;delete
// +kubebuilder:rbac:groups=apps,namespace=weft-system,resources=daemonsets,resourceNames=weft-node-cleanup,verbs=update
// +kubebuilder:rbac:groups=apps,namespace=weft-system,resources=daemonsets,verbs=create

// pausedDaemonSet returns the cleanup DaemonSet, creating it paused from
// the live agents unless an earlier attempt left one; nil when there is
// neither (nothing was installed on the nodes, or it is cleaned already).
func (r runner) pausedDaemonSet(ctx context.Context) (*appsv1.DaemonSet, error) {
	dss := r.cfg.Client.AppsV1().DaemonSets(r.cfg.Namespace)
	ds, err := dss.Get(ctx, DaemonSetName, metav1.GetOptions{})
	if err == nil {
		r.log.Info("reusing the cleanup DaemonSet of an earlier attempt", "daemonSet", DaemonSetName)
		return ds, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("get daemonset %s: %w", DaemonSetName, err)
	}
	var found []Found
	for _, a := range r.cfg.Agents {
		live, err := dss.Get(ctx, a.DaemonSet, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get daemonset %s: %w", a.DaemonSet, err)
		}
		found = append(found, Found{Agent: a, DaemonSet: live})
	}
	want, ok := DaemonSet(DaemonSetConfig{Namespace: r.cfg.Namespace, Agents: found,
		PauseImage: r.cfg.PauseImage, PullPolicy: r.cfg.PullPolicy})
	if !ok {
		r.log.Info("no node agent installed: nothing to clean up on the nodes")
		return nil, nil
	}
	Pause(want)
	ds, err = dss.Create(ctx, want, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create daemonset %s: %w", DaemonSetName, err)
	}
	r.log.Info("cleanup DaemonSet created, paused", "daemonSet", DaemonSetName, "agents", len(found))
	return ds, nil
}

func (r runner) stopAgent(ctx context.Context, a Agent) error {
	dss := r.cfg.Client.AppsV1().DaemonSets(r.cfg.Namespace)
	live, err := dss.Get(ctx, a.DaemonSet, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get daemonset %s: %w", a.DaemonSet, err)
	}
	if err := dss.Delete(ctx, a.DaemonSet, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete daemonset %s: %w", a.DaemonSet, err)
	}
	if err := r.waitPodsGone(ctx, r.cfg.Namespace, live.Spec.Selector); err != nil {
		return fmt.Errorf("pods of daemonset %s: %w", a.DaemonSet, err)
	}
	r.log.Info("node agent stopped", "daemonSet", a.DaemonSet)
	return nil
}

// runCleanup resumes the cleanup DaemonSet and waits until it is Ready on
// every node.
func (r runner) runCleanup(ctx context.Context) (int32, error) {
	dss := r.cfg.Client.AppsV1().DaemonSets(r.cfg.Namespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ds, err := dss.Get(ctx, DaemonSetName, metav1.GetOptions{})
		if err != nil || !Paused(ds) {
			return err
		}
		Resume(ds)
		_, err = dss.Update(ctx, ds, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("resume daemonset %s: %w", DaemonSetName, err)
	}
	var nodes int32
	err = r.poll(ctx, func(ctx context.Context) (bool, error) {
		ds, err := dss.Get(ctx, DaemonSetName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		var ok bool
		ok, nodes = Ready(ds)
		return ok, nil
	})
	if err != nil {
		return 0, fmt.Errorf("node cleanup DaemonSet %s Ready on every node: %w", DaemonSetName, err)
	}
	r.log.Info("nodes cleaned up", "nodes", nodes)
	return nodes, nil
}

func (r runner) deleteDaemonSet(ctx context.Context) error {
	dss := r.cfg.Client.AppsV1().DaemonSets(r.cfg.Namespace)
	ds, err := dss.Get(ctx, DaemonSetName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get daemonset %s: %w", DaemonSetName, err)
	}
	if err := dss.Delete(ctx, DaemonSetName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete daemonset %s: %w", DaemonSetName, err)
	}
	return r.waitPodsGone(ctx, r.cfg.Namespace, ds.Spec.Selector)
}

func (r runner) waitPodsGone(ctx context.Context, ns string, sel *metav1.LabelSelector) error {
	if sel == nil {
		return nil
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return fmt.Errorf("selector: %w", err)
	}
	if s.Empty() {
		return nil // never wait on every pod of the namespace
	}
	return r.poll(ctx, func(ctx context.Context) (bool, error) {
		pods, err := r.cfg.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: s.String()})
		if err != nil {
			return false, fmt.Errorf("list pods: %w", err)
		}
		return len(pods.Items) == 0, nil
	})
}

func (r runner) poll(ctx context.Context, fn func(context.Context) (bool, error)) error {
	err := wait.PollUntilContextTimeout(ctx, r.cfg.Poll, r.cfg.Timeout, true, fn)
	if wait.Interrupted(err) && ctx.Err() == nil {
		return fmt.Errorf("timed out after %v", r.cfg.Timeout)
	}
	return err
}
