package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/weftmesh/weft/api/annotation"
)

// RepairMode says what weft-cni-node does about a meshed pod whose network
// namespace lacks the redirect rules (the pod started while weft-redirect
// was not in the conflist, e.g. right after a node reboot or an upgrade:
// the race Istio's CNI repair controller exists for).
type RepairMode string

const (
	// RepairReport emits a Warning event on the pod and counts it.
	RepairReport RepairMode = "report"
	// RepairRestart also deletes the pod, so its owner recreates it and
	// the new sandbox gets the rules. Rules are never added to a running
	// pod from outside: its connections already bypass the sidecar, and
	// restarting is the safe fix, as with Istio.
	RepairRestart RepairMode = "restart"
)

// EventReasonRedirectMissing is the reason of the Warning event on a
// meshed pod without redirect rules.
const EventReasonRedirectMissing = "RedirectRulesMissing"

// RedirectConfig is the redirect part of weft-cni-node's flags.
type RedirectConfig struct {
	// Enabled adds weft-redirect to the conflist, writes its kubeconfig and
	// runs the checker.
	Enabled bool
	// HostCNIConfDir is the host path of Config.CNIConfDir: weft-redirect
	// runs on the host and finds KubeconfigName there.
	HostCNIConfDir string
	// Repair is what to do about a meshed pod without rules.
	Repair RepairMode
	// CheckPeriod is the interval of full checks; pods are also checked
	// as soon as they have an address.
	CheckPeriod time.Duration
}

// Validate reports every invalid field at once.
func (c RedirectConfig) Validate() error {
	if !c.Enabled {
		return nil
	}
	var errs []error
	if !filepath.IsAbs(c.HostCNIConfDir) {
		errs = append(errs, fmt.Errorf("--host-cni-conf-dir %q is not an absolute path", c.HostCNIConfDir))
	}
	if c.Repair != RepairReport && c.Repair != RepairRestart {
		errs = append(errs, fmt.Errorf("--repair %q: want %s or %s", c.Repair, RepairReport, RepairRestart))
	}
	if c.CheckPeriod < time.Second {
		errs = append(errs, fmt.Errorf("--redirect-check-period %s is shorter than 1s", c.CheckPeriod))
	}
	return errors.Join(errs...)
}

// RedirectPluginEntry is weft-redirect's plugin configuration object for
// Config.ChainedPlugins (CNI SPEC, section 1): the runtime adds name and
// cniVersion from the list and prevResult from weft-bridge.
func RedirectPluginEntry(c RedirectConfig) (json.RawMessage, error) {
	entry, err := json.Marshal(struct {
		Type       string `json:"type"`
		Kubeconfig string `json:"kubeconfig"`
	}{"weft-redirect", filepath.Join(c.HostCNIConfDir, KubeconfigName)})
	if err != nil {
		return nil, fmt.Errorf("encode weft-redirect entry: %w", err)
	}
	return entry, nil
}

// RedirectChecker finds meshed pods of this node whose network namespace
// lacks Weft's redirect chains or jumps. It finds a pod's netns from the
// IPAM allocation holding the pod's IP (weft-bridge records the netns
// path), so it needs no CRI access.
type RedirectChecker struct {
	cfg      RedirectConfig
	node     string
	ipamDir  string
	client   kubernetes.Interface
	metrics  *Metrics
	recorder record.EventRecorder
	// inspect lists what a netns lacks (redirect.Missing inside it);
	// tests replace it.
	inspect func(netnsPath string) ([]string, error)
	pods    corelisters.PodLister
	dirty   chan struct{}
	// flagged holds the pods reported as missing rules and not yet seen
	// with rules (or gone): each is reported once.
	flagged map[types.UID]bool
}

// NewRedirectChecker checks the pods of cfg.NodeName whose addresses come
// from cfg.IPAMDataDir.
func NewRedirectChecker(cfg Config, rc RedirectConfig, client kubernetes.Interface, m *Metrics) *RedirectChecker {
	return &RedirectChecker{
		cfg: rc, node: cfg.NodeName, ipamDir: cfg.IPAMDataDir, client: client, metrics: m,
		inspect: inspectNetns, dirty: make(chan struct{}, 1), flagged: map[types.UID]bool{},
	}
}

// This node's pods (field selector spec.nodeName), and RedirectRulesMissing
// events on them.
// +kubebuilder:rbac:groups="",resources=pods,verbs=list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// Run watches this node's pods and checks the meshed ones whenever one
// gets an address, and all of them every CheckPeriod, until ctx ends.
func (c *RedirectChecker) Run(ctx context.Context) error {
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	c.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "weft-cni-node", Host: c.node})

	factory := informers.NewSharedInformerFactoryWithOptions(c.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", c.node).String()
		}))
	inf := factory.Core().V1().Pods()
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.markIfCandidate(obj) },
		UpdateFunc: func(oldObj, newObj any) {
			if o, ok := oldObj.(*corev1.Pod); !ok || o.Status.PodIP != podIP(newObj) {
				c.markIfCandidate(newObj)
			}
		},
		// A flagged pod that goes away no longer counts as missing rules.
		DeleteFunc: func(any) { c.markDirty() },
	}); err != nil {
		return fmt.Errorf("watch pods: %w", err)
	}
	c.pods = inf.Lister()
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced) {
		return fmt.Errorf("sync pod cache: %w", context.Cause(ctx))
	}
	c.loop(ctx)
	return nil
}

func podIP(obj any) string {
	if p, ok := obj.(*corev1.Pod); ok {
		return p.Status.PodIP
	}
	return ""
}

// markIfCandidate and markDirty are all event handlers do; the loop does
// the work.
func (c *RedirectChecker) markIfCandidate(obj any) {
	if p, ok := obj.(*corev1.Pod); ok && c.candidate(p) {
		c.markDirty()
	}
}

func (c *RedirectChecker) markDirty() {
	select {
	case c.dirty <- struct{}{}:
	default:
	}
}

// loop checks at most once per minSyncInterval: on a new meshed pod
// address, a deleted pod, or every CheckPeriod.
func (c *RedirectChecker) loop(ctx context.Context) {
	log := logr.FromContextOrDiscard(ctx)
	tick := time.NewTicker(c.cfg.CheckPeriod)
	defer tick.Stop()
	for {
		started := time.Now()
		if err := c.check(ctx); err != nil {
			c.metrics.countError(ctx, "redirect-check")
			log.Error(err, "redirect check failed")
		}
		select {
		case <-ctx.Done():
			return
		case <-c.dirty:
		case <-tick.C:
		}
		if d := time.Until(started.Add(minSyncInterval)); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
	}
}

// candidate: a meshed pod of this node with an address, not on the host
// network (those never reach CNI) and not on its way out. A pod has an
// address only once its whole CNI ADD, weft-redirect included, is done.
func (c *RedirectChecker) candidate(p *corev1.Pod) bool {
	_, meshed := p.Annotations[annotation.StatusAnnotation]
	return meshed && p.Spec.NodeName == c.node && !p.Spec.HostNetwork && p.DeletionTimestamp == nil &&
		p.Status.PodIP != "" && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}
