package model

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/weftmesh/weft/api/v1alpha1"
)

// Gateway API resources pilot watches (GAMMA routes).
var (
	HTTPRouteResource = gatewayv1.SchemeGroupVersion.WithResource("httproutes")
	GRPCRouteResource = gatewayv1.SchemeGroupVersion.WithResource("grpcroutes")
)

// Weft's policy CRDs and the Gateway API routes of the mesh (GAMMA).
// +kubebuilder:rbac:groups=mesh.weft.dev,resources=meshtlses;trafficpolicies;authorizationpolicies;telemetries,verbs=list;watch
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes;grpcroutes,verbs=list;watch

// startDynamic starts the informers of CRD-backed kinds. Each decodes the
// unstructured object into its Go type and converts it; an object that does
// not convert is logged and removed from the model (invalid routes are
// kept, with Route.Err, so the status writer can say why).
func startDynamic(ctx context.Context, log logr.Logger, cfg InformerConfig,
	add func(cache.SharedIndexInformer, cache.ResourceEventHandler) error,
) error {
	st := cfg.Store
	dyn := dynamicinformer.NewDynamicSharedInformerFactory(cfg.Dynamic, cfg.Resync)
	watch := func(gvr schema.GroupVersionResource, upsert func(*unstructured.Unstructured) error, del func(Key)) error {
		h := handler(log, func(u *unstructured.Unstructured) {
			if err := upsert(u); err != nil {
				log.Error(err, "ignoring invalid object", "resource", gvr.Resource, "object", Key{u.GetNamespace(), u.GetName()})
				del(Key{u.GetNamespace(), u.GetName()})
			}
		}, del)
		if err := add(dyn.ForResource(gvr).Informer(), h); err != nil {
			return fmt.Errorf("%s: %w", gvr.Resource, err)
		}
		return nil
	}
	if err := watch(v1alpha1.MeshTLSResource, func(u *unstructured.Unstructured) error {
		var m v1alpha1.MeshTLS
		if err := decode(u, &m); err != nil {
			return err
		}
		p, err := TLSPolicyFromMeshTLS(&m)
		if err != nil {
			return err
		}
		st.UpsertTLSPolicy(p)
		return nil
	}, st.DeleteTLSPolicy); err != nil {
		return err
	}
	if err := watch(v1alpha1.TrafficPolicyResource, func(u *unstructured.Unstructured) error {
		var tp v1alpha1.TrafficPolicy
		if err := decode(u, &tp); err != nil {
			return err
		}
		p, err := TrafficPolicyFromK8s(&tp)
		if err != nil {
			return err
		}
		st.UpsertTrafficPolicy(p)
		return nil
	}, st.DeleteTrafficPolicy); err != nil {
		return err
	}
	if err := watch(v1alpha1.AuthorizationPolicyResource, func(u *unstructured.Unstructured) error {
		var ap v1alpha1.AuthorizationPolicy
		if err := decode(u, &ap); err != nil {
			return err
		}
		p, err := AuthzPolicyFromK8s(&ap)
		if err != nil {
			return err
		}
		st.UpsertAuthzPolicy(p)
		return nil
	}, st.DeleteAuthzPolicy); err != nil {
		return err
	}
	if err := watch(v1alpha1.TelemetryResource, func(u *unstructured.Unstructured) error {
		var t v1alpha1.Telemetry
		if err := decode(u, &t); err != nil {
			return err
		}
		p, err := TelemetryFromK8s(&t)
		if err != nil {
			return err
		}
		st.UpsertTelemetry(p)
		return nil
	}, st.DeleteTelemetry); err != nil {
		return err
	}
	if err := watch(HTTPRouteResource, func(u *unstructured.Unstructured) error {
		var hr gatewayv1.HTTPRoute
		if err := decode(u, &hr); err != nil {
			return err
		}
		st.UpsertRoute(RouteFromHTTPRoute(&hr))
		return nil
	}, func(k Key) { st.DeleteRoute(RouteKey{Kind: KindHTTPRoute, Key: k}) }); err != nil {
		return err
	}
	if err := watch(GRPCRouteResource, func(u *unstructured.Unstructured) error {
		var gr gatewayv1.GRPCRoute
		if err := decode(u, &gr); err != nil {
			return err
		}
		st.UpsertRoute(RouteFromGRPCRoute(&gr))
		return nil
	}, func(k Key) { st.DeleteRoute(RouteKey{Kind: KindGRPCRoute, Key: k}) }); err != nil {
		return err
	}
	dyn.Start(ctx.Done())
	return nil
}

func decode(u *unstructured.Unstructured, into any) error {
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
		return fmt.Errorf("decode %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return nil
}
