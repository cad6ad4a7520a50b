package local

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/weftmesh/weft/install"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// InstallMesh installs the mesh (CRDs, pilot, injector) on the running
// local cluster and waits until it serves: both Deployments available and
// the injector's webhook carrying its CA bundle.
func InstallMesh(ctx context.Context, c Config, out io.Writer) error {
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	cfg, err := c.RESTConfig()
	if err != nil {
		return err
	}
	v := c.Values()
	v.Components = install.Components{Mesh: true}
	p := newProgress(out)
	steps := []struct {
		what string
		fn   func() error
	}{
		{"mesh manifests applied (CRDs, weft-pilot, weft-injector)", func() error {
			stream, err := install.Render(v)
			if err != nil {
				return err
			}
			objs, err := install.Decode(stream)
			if err != nil {
				return err
			}
			applier, err := install.NewApplier(cfg, install.FieldManager)
			if err != nil {
				return err
			}
			return applier.Apply(ctx, objs)
		}},
		{"weft-pilot and weft-injector available", func() error {
			return waitDeployments(ctx, cs, "weft-system", "weft-pilot", "weft-injector")
		}},
		{"injection webhook has its CA bundle", func() error { return waitWebhookCABundle(ctx, cs, "weft-sidecar-injector") }},
	}
	for _, st := range steps {
		if err := p.step(st.what, st.fn, nil); err != nil {
			return fmt.Errorf("%s: %w", st.what, err)
		}
	}
	p.done("mesh installed")
	return nil
}

func waitDeployments(ctx context.Context, cs kubernetes.Interface, ns string, names ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var pending []string
	err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		pending = nil
		for _, name := range names {
			d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil || !deploymentAvailable(d) {
				pending = append(pending, name)
			}
		}
		return len(pending) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("deployments not available %v: %w", pending, err)
	}
	return nil
}

func deploymentAvailable(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	return st.ObservedGeneration >= d.Generation && st.UpdatedReplicas == want && st.AvailableReplicas == want
}

func waitWebhookCABundle(ctx context.Context, cs kubernetes.Interface, name string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		mwc, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, w := range mwc.Webhooks {
			if len(w.ClientConfig.CABundle) == 0 {
				return false, nil
			}
		}
		return len(mwc.Webhooks) > 0, nil
	})
}
