package proxier

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/weftmesh/weft/proxy/model"
)

// Labels that take a Service or slice out of weft-proxy's hands, filtered
// on the server like kube-proxy does.
const (
	headlessLabel    = "service.kubernetes.io/headless"
	serviceSelector  = "!" + model.ProxyNameLabel
	endpointSelector = "!" + model.ProxyNameLabel + ",!" + headlessLabel
)

// Services and EndpointSlices of every namespace, and this node (field selector).
// +kubebuilder:rbac:groups="",resources=services;nodes,verbs=list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=list;watch

// Watch starts informers for Services, EndpointSlices and this node, feeds
// them into the tracker and, once their initial lists are in, tells the
// proxier it may sync. It returns after the caches synced (or ctx ended).
func Watch(ctx context.Context, client kubernetes.Interface, p *Proxier, nodeName string) error {
	t := p.cfg.Tracker
	resync := 0 * time.Second // the runner's periodic full sync covers drift
	svcFactory := informers.NewSharedInformerFactoryWithOptions(client, resync,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = serviceSelector }))
	epFactory := informers.NewSharedInformerFactoryWithOptions(client, resync,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = endpointSelector }))
	nodeFactory := informers.NewSharedInformerFactoryWithOptions(client, resync,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", nodeName).String()
		}))

	svcs := svcFactory.Core().V1().Services().Informer()
	if _, err := svcs.AddEventHandler(handler(p,
		func(o *v1.Service) { t.SetService(o) },
		func(o *v1.Service) { t.DeleteService(o.Namespace, o.Name) })); err != nil {
		return fmt.Errorf("watch services: %w", err)
	}
	slices := epFactory.Discovery().V1().EndpointSlices().Informer()
	// The registration's HasSynced (not the informer's) says our handler
	// has seen the initial list, after which slice events are changes
	// worth tracing (Proxier.Synced).
	slicesReg, err := slices.AddEventHandler(handler(p, t.SetSlice, t.DeleteSlice))
	if err != nil {
		return fmt.Errorf("watch endpoint slices: %w", err)
	}
	nodes := nodeFactory.Core().V1().Nodes().Informer()
	if _, err := nodes.AddEventHandler(handler(p, t.SetNode, func(*v1.Node) {})); err != nil {
		return fmt.Errorf("watch node %s: %w", nodeName, err)
	}
	for _, f := range []informers.SharedInformerFactory{svcFactory, epFactory, nodeFactory} {
		f.Start(ctx.Done())
	}
	if !cache.WaitForCacheSync(ctx.Done(), svcs.HasSynced, slicesReg.HasSynced, nodes.HasSynced) {
		return fmt.Errorf("wait for informer caches: %w", ctx.Err())
	}
	p.Synced()
	return nil
}

// handler adapts typed set/delete functions to informer callbacks; every
// event only records the object and pokes the runner.
func handler[T any](p *Proxier, set, del func(T)) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if o, ok := obj.(T); ok {
				set(o)
				p.Changed()
			}
		},
		UpdateFunc: func(_, obj any) {
			if o, ok := obj.(T); ok {
				set(o)
				p.Changed()
			}
		},
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if o, ok := obj.(T); ok {
				del(o)
				p.Changed()
			}
		},
	}
}
