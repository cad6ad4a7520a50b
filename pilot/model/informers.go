package model

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// InformerConfig wires the Store to the API server.
type InformerConfig struct {
	// Client watches Services, EndpointSlices and Pods.
	Client kubernetes.Interface
	// Dynamic watches the mesh.weft.dev CRDs (MeshTLS, TrafficPolicy,
	// AuthorizationPolicy, Telemetry) and the Gateway API routes
	// (HTTPRoute, GRPCRoute); nil leaves them out (every workload is
	// PERMISSIVE, no routing or access policy, telemetry from pilot's
	// flags only), for clusters without the CRDs.
	Dynamic dynamic.Interface
	// Store receives the objects.
	Store *Store
	// Resync is the informers' resync period; zero disables it.
	Resync time.Duration
}

// The mesh model: Services, EndpointSlices and Pods of every namespace.
// +kubebuilder:rbac:groups="",resources=services;pods,verbs=list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=list;watch

// StartInformers starts client-go shared informers that keep cfg.Store up
// to date, and returns once their caches have synced, so pilot never serves
// config built from a partial model. The informers stop with ctx. Event
// handlers only convert and record objects; pushing is the xDS server's
// debounced job (it subscribes to the Store).
func StartInformers(ctx context.Context, cfg InformerConfig) error {
	if cfg.Client == nil || cfg.Store == nil {
		return errors.New("informers need a client and a store")
	}
	log := logr.FromContextOrDiscard(ctx).WithName("model")
	st := cfg.Store
	factory := informers.NewSharedInformerFactoryWithOptions(cfg.Client, cfg.Resync,
		informers.WithTransform(stripManagedFields))

	synced := []cache.InformerSynced{}
	add := func(inf cache.SharedIndexInformer, h cache.ResourceEventHandler) error {
		reg, err := inf.AddEventHandler(h)
		if err != nil {
			return fmt.Errorf("add event handler: %w", err)
		}
		synced = append(synced, reg.HasSynced)
		return nil
	}
	if err := add(factory.Core().V1().Services().Informer(), handler(log, func(s *corev1.Service) {
		if svc, ok := ServiceFromK8s(s); ok {
			st.UpsertService(svc)
		} else {
			st.DeleteService(Key{s.Namespace, s.Name})
		}
	}, func(k Key) { st.DeleteService(k) })); err != nil {
		return fmt.Errorf("services: %w", err)
	}
	if err := add(factory.Discovery().V1().EndpointSlices().Informer(), handler(log, func(es *discoveryv1.EndpointSlice) {
		if s, ok := EndpointSliceFromK8s(es); ok {
			st.UpsertEndpointSlice(s)
		} else {
			st.DeleteEndpointSlice(Key{es.Namespace, es.Name})
		}
	}, func(k Key) { st.DeleteEndpointSlice(k) })); err != nil {
		return fmt.Errorf("endpointslices: %w", err)
	}
	if err := add(factory.Core().V1().Pods().Informer(), handler(log, func(p *corev1.Pod) {
		if pod, ok := PodFromK8s(p); ok {
			st.UpsertPod(pod)
		} else {
			st.DeletePod(Key{p.Namespace, p.Name})
		}
	}, func(k Key) { st.DeletePod(k) })); err != nil {
		return fmt.Errorf("pods: %w", err)
	}
	factory.Start(ctx.Done())

	if cfg.Dynamic != nil {
		if err := startDynamic(ctx, log, cfg, add); err != nil {
			return err
		}
	}

	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("wait for informer caches: %w", context.Cause(ctx))
	}
	log.Info("model synced", "services", len(st.View().Services()))
	return nil
}

// handler adapts typed upsert/delete callbacks to client-go's event
// handler, unwrapping tombstones so a missed delete still removes the object.
func handler[T interface {
	GetNamespace() string
	GetName() string
}](log logr.Logger, upsert func(T), del func(Key)) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if o, ok := obj.(T); ok {
				upsert(o)
			}
		},
		UpdateFunc: func(_, obj any) {
			if o, ok := obj.(T); ok {
				upsert(o)
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			o, ok := obj.(T)
			if !ok {
				log.V(1).Info("ignoring delete of unexpected object", "type", fmt.Sprintf("%T", obj))
				return
			}
			del(Key{o.GetNamespace(), o.GetName()})
		},
	}
}

// stripManagedFields drops server-side-apply bookkeeping from cached
// objects; pilot never reads it and it is often the largest part of a Pod.
func stripManagedFields(obj any) (any, error) {
	if o, err := meta.Accessor(obj); err == nil {
		o.SetManagedFields(nil)
	}
	return obj, nil
}
