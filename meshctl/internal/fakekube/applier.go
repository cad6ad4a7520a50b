package fakekube

import (
	"context"
	"fmt"
	"sync"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
)

// Applier stands in for server-side apply (lifecycle.Applier): it stores
// what it applies in the cluster as a running cluster would make it —
// CRDs Established, Deployments and DaemonSets ready, the webhook with its
// CA bundle — and deletes from it. Applied and Deleted record every
// object as "Kind namespace/name" in order.
type Applier struct {
	C *Cluster
	// NotReady names workloads ("Kind namespace/name") that never become
	// ready.
	NotReady map[string]bool

	mu               sync.Mutex
	Applied, Deleted []string
}

func describe(o *unstructured.Unstructured) string {
	if ns := o.GetNamespace(); ns != "" {
		return o.GetKind() + " " + ns + "/" + o.GetName()
	}
	return o.GetKind() + " " + o.GetName()
}

// Apply stores objs.
func (a *Applier) Apply(ctx context.Context, objs []*unstructured.Unstructured) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, o := range objs {
		a.Applied = append(a.Applied, describe(o))
		if err := a.store(o.DeepCopy()); err != nil {
			return fmt.Errorf("apply %s: %w", describe(o), err)
		}
	}
	return nil
}

func (a *Applier) store(o *unstructured.Unstructured) error {
	gvk := o.GroupVersionKind()
	if gvk.Kind == "CustomResourceDefinition" {
		_ = unstructured.SetNestedSlice(o.Object, []any{map[string]any{"type": "Established", "status": "True"}}, "status", "conditions")
		_, err := a.C.Dynamic.Resource(CRDs).Create(context.Background(), o, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			_, err = a.C.Dynamic.Resource(CRDs).Update(context.Background(), o, metav1.UpdateOptions{})
		}
		return err
	}
	obj, err := scheme.Scheme.New(gvk)
	if err != nil {
		return nil // a kind the typed clientset does not serve: recorded only
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, obj); err != nil {
		return err
	}
	ready := !a.NotReady[describe(o)]
	switch x := obj.(type) {
	case *appsv1.Deployment:
		want := int32(1)
		if x.Spec.Replicas != nil {
			want = *x.Spec.Replicas
		}
		x.Status = appsv1.DeploymentStatus{Replicas: want, UpdatedReplicas: want}
		if ready {
			x.Status.ReadyReplicas, x.Status.AvailableReplicas = want, want
		}
	case *appsv1.DaemonSet:
		x.Status = appsv1.DaemonSetStatus{DesiredNumberScheduled: 2, UpdatedNumberScheduled: 2}
		if ready {
			x.Status.NumberReady, x.Status.NumberAvailable = 2, 2
		}
	case *admissionv1.MutatingWebhookConfiguration:
		for i := range x.Webhooks {
			x.Webhooks[i].ClientConfig.CABundle = []byte("injector CA")
		}
	}
	gvr, _ := meta.UnsafeGuessKindToResource(gvk)
	tr := a.C.Kube.Tracker()
	err = tr.Create(gvr, obj, o.GetNamespace())
	if apierrors.IsAlreadyExists(err) {
		err = tr.Update(gvr, obj, o.GetNamespace())
	}
	return err
}

// Delete removes objs in reverse order, as install.Applier does.
func (a *Applier) Delete(ctx context.Context, objs []*unstructured.Unstructured) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := len(objs) - 1; i >= 0; i-- {
		o := objs[i]
		a.Deleted = append(a.Deleted, describe(o))
		var err error
		if o.GetKind() == "CustomResourceDefinition" {
			err = a.C.Dynamic.Resource(CRDs).Delete(ctx, o.GetName(), metav1.DeleteOptions{})
		} else {
			gvr, _ := meta.UnsafeGuessKindToResource(o.GroupVersionKind())
			err = a.C.Kube.Tracker().Delete(gvr, o.GetNamespace(), o.GetName())
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete %s: %w", describe(o), err)
		}
	}
	return nil
}
