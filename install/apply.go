package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// Decode splits a multi-document YAML stream into objects, skipping empty documents.
func Decode(stream []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(stream), 4096)
	var objs []*unstructured.Unstructured
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("decode manifest %d: %w", len(objs)+1, err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		if obj.GetKind() == "" || obj.GetAPIVersion() == "" {
			return nil, fmt.Errorf("manifest %d has no kind/apiVersion", len(objs)+1)
		}
		objs = append(objs, obj)
	}
}

// Applier server-side-applies objects under one field manager.
type Applier struct {
	client  dynamic.Interface
	mapper  meta.RESTMapper
	manager string
}

// FieldManager is the server-side-apply field manager of every Weft
// installer (meshctl, the local cluster's bring-up, the e2e). One manager
// owns the fields, so a later apply that drops a field (a component or an
// endpoint turned off) removes it instead of leaving it to another owner.
const FieldManager = "meshctl"

// NewApplier builds an Applier for the cluster behind cfg.
func NewApplier(cfg *rest.Config, fieldManager string) (*Applier, error) {
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	return &Applier{client: client, mapper: mapper, manager: fieldManager}, nil
}

// Apply applies each object in order (force: Weft owns these fields).
func (a *Applier) Apply(ctx context.Context, objs []*unstructured.Unstructured) error {
	for _, obj := range objs {
		res, err := a.resource(obj)
		if err != nil {
			return err
		}
		data, err := obj.MarshalJSON()
		if err != nil {
			return fmt.Errorf("encode %s: %w", describe(obj), err)
		}
		force := true
		if _, err := res.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: a.manager, Force: &force}); err != nil {
			return fmt.Errorf("apply %s: %w", describe(obj), err)
		}
	}
	return nil
}

// resource finds the REST endpoint of obj's kind, refreshing discovery once
// (CRDs applied earlier in the same stream appear late).
func (a *Applier) resource(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := obj.GroupVersionKind()
	mapping, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		if m, ok := a.mapper.(meta.ResettableRESTMapper); ok {
			m.Reset()
		}
		mapping, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("find resource for %s: %w", describe(obj), err)
	}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := obj.GetNamespace()
		if ns == "" {
			ns = metav1.NamespaceDefault
		}
		return a.client.Resource(mapping.Resource).Namespace(ns), nil
	}
	return a.client.Resource(mapping.Resource), nil
}

func describe(obj *unstructured.Unstructured) string {
	if ns := obj.GetNamespace(); ns != "" {
		return fmt.Sprintf("%s %s/%s", obj.GetKind(), ns, obj.GetName())
	}
	return fmt.Sprintf("%s %s", obj.GetKind(), obj.GetName())
}

// Delete deletes each object in reverse order (dependents before what they
// depend on); objects that are already gone are skipped.
func (a *Applier) Delete(ctx context.Context, objs []*unstructured.Unstructured) error {
	for i := len(objs) - 1; i >= 0; i-- {
		obj := objs[i]
		res, err := a.resource(obj)
		if err != nil {
			return err
		}
		if err := res.Delete(ctx, obj.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete %s: %w", describe(obj), err)
		}
	}
	return nil
}
