// Package rootpublisher writes the CA trust bundle into the ConfigMap
// weft-root-cert (key root-cert.pem) of every namespace that has meshed
// pods, so weft-agent can verify pilot's CA endpoint (mounted at
// /var/run/weft/root-cert/root-cert.pem) and so applications can read the
// trust bundle of the trust domain
// (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE_Trust_Domain_and_Bundle.md).
// During a root rotation the bundle carries the old and the new root.
//
// It reconciles like kube-proxy: informer events only mark the state dirty,
// one loop lists, diffs and fixes, with a periodic full resync.
package rootpublisher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// Names fixed by the design.
const (
	ConfigMapName = "weft-root-cert"
	DataKey       = "root-cert.pem"
	// StatusAnnotation is set by the injector on every meshed pod.
	StatusAnnotation = "sidecar.weft.dev/status"
	// InjectionLabel on a namespace means pods there will be meshed: the
	// ConfigMap is published before the first pod needs to mount it.
	InjectionLabel = "weft-injection"
)

// Config configures a Publisher.
type Config struct {
	Client kubernetes.Interface
	// Bundle returns the current trust bundle in PEM (nil: not ready yet).
	Bundle func() []byte
	// Changed receives when the bundle changed.
	Changed <-chan struct{}
	// Namespaces that always get the ConfigMap (the control plane's).
	Namespaces []string
	// MinInterval bounds sync frequency (1s); Resync forces a full pass (5m).
	MinInterval, Resync time.Duration
}

// Publisher keeps weft-root-cert ConfigMaps in sync with the bundle.
type Publisher struct {
	cfg     Config
	factory informers.SharedInformerFactory
	cmFact  informers.SharedInformerFactory
	pods    corelisters.PodLister
	nss     corelisters.NamespaceLister
	cms     corelisters.ConfigMapLister
	dirty   chan struct{}
}

// Which namespaces are meshed (their pods and labels), and the trust bundle
// ConfigMaps, watched by name (field selector) so RBAC can pin them.
// +kubebuilder:rbac:groups="",resources=pods;namespaces,verbs=list;watch
// +kubebuilder:rbac:groups="",resources=configmaps,resourceNames=weft-root-cert,verbs=list;watch

// New builds the informers; Run starts them.
func New(cfg Config) (*Publisher, error) {
	if cfg.Client == nil || cfg.Bundle == nil {
		return nil, fmt.Errorf("rootpublisher: client and bundle are required")
	}
	if cfg.MinInterval <= 0 {
		cfg.MinInterval = time.Second
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 5 * time.Minute
	}
	p := &Publisher{cfg: cfg, dirty: make(chan struct{}, 1)}
	p.factory = informers.NewSharedInformerFactory(cfg.Client, 0)
	p.cmFact = informers.NewSharedInformerFactoryWithOptions(cfg.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", ConfigMapName).String()
		}))
	mark := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { p.markDirty() },
		UpdateFunc: func(any, any) { p.markDirty() },
		DeleteFunc: func(any) { p.markDirty() },
	}
	podInf := p.factory.Core().V1().Pods()
	nsInf := p.factory.Core().V1().Namespaces()
	cmInf := p.cmFact.Core().V1().ConfigMaps()
	for _, inf := range []cache.SharedIndexInformer{podInf.Informer(), nsInf.Informer(), cmInf.Informer()} {
		if _, err := inf.AddEventHandler(mark); err != nil {
			return nil, fmt.Errorf("rootpublisher: add event handler: %w", err)
		}
	}
	p.pods, p.nss, p.cms = podInf.Lister(), nsInf.Lister(), cmInf.Lister()
	return p, nil
}

func (p *Publisher) markDirty() {
	select {
	case p.dirty <- struct{}{}:
	default:
	}
}

// Run starts the informers and the sync loop until ctx is done.
func (p *Publisher) Run(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx).WithName("rootpublisher")
	p.factory.Start(ctx.Done())
	p.cmFact.Start(ctx.Done())
	defer p.factory.Shutdown()
	defer p.cmFact.Shutdown()
	for typ, ok := range p.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("rootpublisher: sync %v informer: %w", typ, context.Cause(ctx))
		}
	}
	for typ, ok := range p.cmFact.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("rootpublisher: sync %v informer: %w", typ, context.Cause(ctx))
		}
	}
	resync := time.NewTicker(p.cfg.Resync)
	defer resync.Stop()
	p.markDirty()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.dirty:
		case <-p.cfg.Changed:
		case <-resync.C:
		}
		if err := p.Sync(ctx); err != nil {
			log.Error(err, "publish root certificates")
			p.markDirty()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(p.cfg.MinInterval):
		}
	}
}

// Sync makes the ConfigMap of every wanted namespace hold the bundle. It
// never deletes: a namespace that loses its last meshed pod keeps a
// harmless, still-correct bundle.
func (p *Publisher) Sync(ctx context.Context) error {
	bundle := p.cfg.Bundle()
	if len(bundle) == 0 {
		return nil
	}
	want, err := p.namespaces()
	if err != nil {
		return err
	}
	log := logr.FromContextOrDiscard(ctx).WithName("rootpublisher")
	var errs []error
	for _, ns := range want {
		changed, err := p.publish(ctx, ns, bundle)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if changed {
			log.Info("published root certificates", "namespace", ns)
		}
	}
	return errors.Join(errs...)
}

// namespaces lists namespaces with meshed pods or the injection label, plus
// the configured ones, skipping namespaces being deleted.
func (p *Publisher) namespaces() ([]string, error) {
	set := map[string]bool{}
	for _, ns := range p.cfg.Namespaces {
		set[ns] = true
	}
	pods, err := p.pods.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	for _, pod := range pods {
		if _, ok := pod.Annotations[StatusAnnotation]; ok {
			set[pod.Namespace] = true
		}
	}
	nss, err := p.nss.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	terminating := map[string]bool{}
	for _, ns := range nss {
		if ns.Labels[InjectionLabel] == "enabled" {
			set[ns.Name] = true
		}
		if ns.Status.Phase == corev1.NamespaceTerminating || ns.DeletionTimestamp != nil {
			terminating[ns.Name] = true
		}
	}
	var out []string
	for ns := range set {
		if !terminating[ns] {
			out = append(out, ns)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Creation cannot be limited by name; updates can.
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=create
// +kubebuilder:rbac:groups="",resources=configmaps,resourceNames=weft-root-cert,verbs=update

func (p *Publisher) publish(ctx context.Context, ns string, bundle []byte) (bool, error) {
	cms := p.cfg.Client.CoreV1().ConfigMaps(ns)
	cur, err := p.cms.ConfigMaps(ns).Get(ConfigMapName)
	if apierrors.IsNotFound(err) {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName, Namespace: ns,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "weft-pilot"}},
			Data: map[string]string{DataKey: string(bundle)},
		}
		if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return false, fmt.Errorf("create configmap %s/%s: %w", ns, ConfigMapName, err)
		}
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("get configmap %s/%s: %w", ns, ConfigMapName, err)
	}
	if bytes.Equal([]byte(cur.Data[DataKey]), bundle) {
		return false, nil
	}
	cm := cur.DeepCopy()
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[DataKey] = string(bundle)
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		return false, fmt.Errorf("update configmap %s/%s: %w", ns, ConfigMapName, err)
	}
	return true, nil
}
