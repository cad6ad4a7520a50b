package netpol

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/weftmesh/weft/proxy/runner"
)

// Config configures the Controller; each field is one weft-cni-node flag.
type Config struct {
	// NodeName is the node whose pods are enforced.
	NodeName string
	// MinSyncInterval is the sustained minimum time between syncs (two
	// may run back to back): a burst of pod events costs one sync.
	MinSyncInterval time.Duration
	// CheckInterval is the longest time between syncs; a sync with
	// nothing to do checks that the table is intact.
	CheckInterval time.Duration
	// FullSyncPeriod is how often the table is rewritten as a whole.
	FullSyncPeriod time.Duration
}

// Validate reports every invalid field at once.
func (c Config) Validate() error {
	var errs []error
	if c.NodeName == "" {
		errs = append(errs, errors.New("netpol: node name is empty"))
	}
	if c.MinSyncInterval <= 0 || c.CheckInterval < c.MinSyncInterval {
		errs = append(errs, fmt.Errorf("netpol: need 0 < min sync interval (%s) <= check interval (%s)", c.MinSyncInterval, c.CheckInterval))
	}
	if c.FullSyncPeriod < c.MinSyncInterval {
		errs = append(errs, fmt.Errorf("netpol: full sync period %s is shorter than the min sync interval", c.FullSyncPeriod))
	}
	return errors.Join(errs...)
}

// EventReasonInvalid is the reason of the Warning event on a
// NetworkPolicy that has parts weft-cni-node left out.
const EventReasonInvalid = "InvalidNetworkPolicy"

// Controller enforces the NetworkPolicies of one node's pods.
type Controller struct {
	cfg      Config
	client   kubernetes.Interface
	kernel   Kernel
	metrics  *Metrics
	runner   *runner.Runner
	recorder record.EventRecorder

	pods       corelisters.PodLister
	namespaces corelisters.NamespaceLister
	policies   networkinglisters.NetworkPolicyLister
	dirty      atomic.Bool

	// Owned by the sync loop.
	committed *Ruleset // what the kernel holds; nil: unknown, sync fully
	lastFull  time.Time
	reported  map[types.UID]string // policy → problems already reported
}

// New checks cfg and returns a Controller; Run starts it.
func New(cfg Config, client kubernetes.Interface, kernel Kernel, m *Metrics) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Controller{cfg: cfg, client: client, kernel: kernel, metrics: m, reported: map[types.UID]string{}}
	r, err := runner.New(runner.Config{
		Sync: c.sync, MinInterval: cfg.MinSyncInterval, Burst: 2, MaxInterval: cfg.CheckInterval,
		RetryMin: cfg.MinSyncInterval, RetryMax: time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("netpol sync runner: %w", err)
	}
	c.runner = r
	return c, nil
}

// Selectors resolve over every pod and namespace; InvalidNetworkPolicy events.
// +kubebuilder:rbac:groups="",resources=pods;namespaces,verbs=list;watch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// Run watches Pods, Namespaces and NetworkPolicies and keeps the table in
// sync until ctx ends. The table stays when it returns: the node keeps
// enforcing the last policies while weft-cni-node restarts.
func (c *Controller) Run(ctx context.Context) error {
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	c.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "weft-cni-node", Host: c.cfg.NodeName})

	factory := informers.NewSharedInformerFactoryWithOptions(c.client, 0, informers.WithTransform(stripManagedFields))
	pods := factory.Core().V1().Pods()
	namespaces := factory.Core().V1().Namespaces()
	policies := factory.Networking().V1().NetworkPolicies()
	for name, inf := range map[string]cache.SharedIndexInformer{
		"pods": pods.Informer(), "namespaces": namespaces.Informer(), "networkpolicies": policies.Informer(),
	} {
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { c.markDirty() },
			UpdateFunc: func(o, n any) { c.markIfChanged(o, n) },
			DeleteFunc: func(any) { c.markDirty() },
		}); err != nil {
			return fmt.Errorf("watch %s: %w", name, err)
		}
	}
	c.pods, c.namespaces, c.policies = pods.Lister(), namespaces.Lister(), policies.Lister()
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), pods.Informer().HasSynced, namespaces.Informer().HasSynced, policies.Informer().HasSynced) {
		return fmt.Errorf("sync pod, namespace and network policy caches: %w", context.Cause(ctx))
	}
	c.markDirty()
	c.runner.Loop(ctx)
	return nil
}

// stripManagedFields keeps the caches small: every pod of the cluster is
// watched.
func stripManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

// markDirty and markIfChanged are all event handlers do.
func (c *Controller) markDirty() {
	c.dirty.Store(true)
	c.runner.Run()
}

// markIfChanged ignores updates that cannot change the ruleset, such as
// pod status heartbeats.
func (c *Controller) markIfChanged(oldObj, newObj any) {
	switch n := newObj.(type) {
	case *corev1.Pod:
		if o, ok := oldObj.(*corev1.Pod); ok {
			op, ook := PodFrom(o)
			np, nok := PodFrom(n)
			if ook == nok && reflect.DeepEqual(op, np) {
				return
			}
		}
	case *corev1.Namespace:
		if o, ok := oldObj.(*corev1.Namespace); ok && labels.Equals(o.Labels, n.Labels) {
			return
		}
	case *networkingv1.NetworkPolicy:
		if o, ok := oldObj.(*networkingv1.NetworkPolicy); ok && apiequality.Semantic.DeepEqual(o.Spec, n.Spec) {
			return
		}
	}
	c.markDirty()
}

// sync is one reconcile: plan everything, write the difference. After a
// failure, every FullSyncPeriod, and when the table was tampered with, the
// table is rewritten as a whole.
func (c *Controller) sync(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx)
	start := time.Now()
	dirty := c.dirty.Swap(false)
	full := c.committed == nil || time.Since(c.lastFull) >= c.cfg.FullSyncPeriod
	if !dirty && !full {
		intact, err := c.kernel.Intact()
		if err != nil {
			c.metrics.countError(ctx, "check")
			return fmt.Errorf("check nftables table %s: %w", TableName, err)
		}
		if intact {
			return nil
		}
		log.Info("nftables table lost its rules; rewriting it", "table", TableName)
		full = true
	}
	state, invalid, err := c.snapshot(ctx)
	if err != nil {
		c.dirty.Store(true)
		c.metrics.countError(ctx, "list")
		return err
	}
	want := Plan(state)
	var change *Change
	if full {
		have, err := c.kernel.Existing()
		if err != nil {
			c.committed = nil
			c.metrics.countError(ctx, "read")
			return fmt.Errorf("read nftables table %s: %w", TableName, err)
		}
		change = FullChange(want, have)
	} else {
		change = PartialChange(want, c.committed)
	}
	if !change.Empty() {
		if err := c.kernel.Apply(change); err != nil {
			c.committed = nil // the next try (with backoff) is a full sync
			c.metrics.countError(ctx, "apply")
			return fmt.Errorf("write network policies: %w", err)
		}
	}
	c.committed = want
	if full {
		c.lastFull = start
	}
	took := time.Since(start)
	c.metrics.recordSync(ctx, full, took, want, invalid)
	if !change.Empty() {
		log.Info("network policies synced", "full", full, "policies", len(want.Policies), "isolatedPods", want.Isolated,
			"rulesWritten", change.Rules, "elementsWritten", change.Elements, "took", took.Round(time.Microsecond).String())
	}
	return nil
}

// snapshot reads the caches into a State, compiling the policies and
// reporting their problems; invalid counts the policies with problems.
func (c *Controller) snapshot(ctx context.Context) (State, int, error) {
	s := State{Node: c.cfg.NodeName}
	pods, err := c.pods.List(labels.Everything())
	if err != nil {
		return s, 0, fmt.Errorf("list pods: %w", err)
	}
	for _, p := range pods {
		if pod, ok := PodFrom(p); ok {
			s.Pods = append(s.Pods, pod)
		}
	}
	namespaces, err := c.namespaces.List(labels.Everything())
	if err != nil {
		return s, 0, fmt.Errorf("list namespaces: %w", err)
	}
	for _, ns := range namespaces {
		s.Namespaces = append(s.Namespaces, Namespace{Name: ns.Name, Labels: labels.Set(ns.Labels)})
	}
	policies, err := c.policies.List(labels.Everything())
	if err != nil {
		return s, 0, fmt.Errorf("list network policies: %w", err)
	}
	seen := map[types.UID]bool{}
	invalid := 0
	for _, np := range policies {
		seen[np.UID] = true
		p, err := Compile(np)
		var problems []error
		if err != nil {
			problems = []error{fmt.Errorf("%w; the policy is skipped", err)}
		} else {
			problems = p.Problems
			s.Policies = append(s.Policies, p)
		}
		if len(problems) > 0 {
			invalid++
			c.report(ctx, np, problems)
		} else {
			delete(c.reported, np.UID)
		}
	}
	for uid := range c.reported {
		if !seen[uid] {
			delete(c.reported, uid)
		}
	}
	return s, invalid, nil
}

// report logs a policy's problems and records a Warning event on it, once
// per problem set.
func (c *Controller) report(ctx context.Context, np *networkingv1.NetworkPolicy, problems []error) {
	err := errors.Join(problems...)
	if c.reported[np.UID] == err.Error() {
		return
	}
	c.reported[np.UID] = err.Error()
	logr.FromContextOrDiscard(ctx).Error(err, "network policy has parts that cannot be enforced",
		"policy", np.Namespace+"/"+np.Name, "node", c.cfg.NodeName)
	if c.recorder != nil {
		c.recorder.Eventf(np, corev1.EventTypeWarning, EventReasonInvalid,
			"Not enforced as written on node %s: %s", c.cfg.NodeName, joinLines(problems))
	}
}

func joinLines(errs []error) string {
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Cleanup removes the table, for uninstall and for --network-policy=false
// (a table left behind would keep enforcing stale policies).
func Cleanup(ctx context.Context) error {
	k := &NFT{}
	ex, err := k.Existing()
	if err != nil {
		return fmt.Errorf("read network policy table: %w", err)
	}
	if !ex.Table {
		return nil
	}
	if err := k.Delete(); err != nil {
		return fmt.Errorf("remove network policy table: %w", err)
	}
	logr.FromContextOrDiscard(ctx).Info("removed the network policy table", "table", TableName)
	return nil
}
