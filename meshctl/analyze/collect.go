package analyze

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/weftmesh/weft/api/v1alpha1"
	"github.com/weftmesh/weft/meshctl/explain"
	"github.com/weftmesh/weft/meshctl/kube"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Gateway API route resources (GAMMA: routes attached to Services).
var routeResources = []schema.GroupVersionResource{
	{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"},
	{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "grpcroutes"},
}

// Collect reads the whole cluster's mesh configuration (clients in other
// namespaces matter to the analyzers even when the report is scoped).
func Collect(ctx context.Context, c *kube.Client) (Snapshot, error) {
	s := Snapshot{RootNamespace: explain.RootNamespace}
	nss, err := c.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return s, fmt.Errorf("list namespaces: %w", err)
	}
	s.Namespaces = nss.Items
	pods, err := c.Kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return s, fmt.Errorf("list pods: %w", err)
	}
	s.Pods = pods.Items
	svcs, err := c.Kube.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return s, fmt.Errorf("list services: %w", err)
	}
	s.Services = svcs.Items
	items, err := list(ctx, c, explain.MeshTLSResource)
	if err != nil {
		return s, err
	}
	for _, it := range items {
		var m v1alpha1.MeshTLS
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(it.Object, &m); err == nil {
			s.MeshTLS = append(s.MeshTLS, m)
		}
	}
	if items, err = list(ctx, c, v1alpha1.TelemetryResource); err != nil {
		return s, err
	}
	for _, it := range items {
		var tel v1alpha1.Telemetry
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(it.Object, &tel); err == nil {
			s.Telemetry = append(s.Telemetry, tel)
		}
	}
	if items, err = list(ctx, c, explain.AuthorizationPolicyResource); err != nil {
		return s, err
	}
	for _, it := range items {
		var p explain.AuthzPolicy
		if err := remarshal(it.Object, &p); err == nil {
			s.Authz = append(s.Authz, p)
		}
	}
	for _, gvr := range routeResources {
		if items, err = list(ctx, c, gvr); err != nil {
			return s, err
		}
		for _, it := range items {
			s.Routes = append(s.Routes, route(it))
		}
	}
	return s, nil
}

// list lists a resource everywhere; a resource the cluster does not serve
// (CRD not installed) is empty.
func list(ctx context.Context, c *kube.Client, gvr schema.GroupVersionResource) ([]unstructured.Unstructured, error) {
	l, err := c.Dynamic.Resource(gvr).List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", gvr.Resource, err)
	}
	return l.Items, nil
}

func remarshal(in any, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

func route(u unstructured.Unstructured) Route {
	var r struct {
		Spec struct {
			ParentRefs []Ref `json:"parentRefs"`
			Rules      []struct {
				BackendRefs []Ref `json:"backendRefs"`
			} `json:"rules"`
		} `json:"spec"`
	}
	out := Route{Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
	if err := remarshal(u.Object, &r); err != nil {
		return out
	}
	out.Parents = r.Spec.ParentRefs
	for _, rule := range r.Spec.Rules {
		out.Backends = append(out.Backends, rule.BackendRefs...)
	}
	return out
}
