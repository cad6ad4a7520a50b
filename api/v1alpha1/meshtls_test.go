package v1alpha1_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/weftmesh/weft/api/v1alpha1"
)

func TestDeepCopyAndScheme(t *testing.T) {
	m := &v1alpha1.MeshTLS{Spec: v1alpha1.MeshTLSSpec{
		Selector:      &metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}},
		PortLevelMTLS: map[string]v1alpha1.MTLSMode{"80": v1alpha1.MTLSDisable},
	}}
	c := m.DeepCopy()
	c.Spec.Selector.MatchLabels["app"] = "b"
	c.Spec.PortLevelMTLS["80"] = v1alpha1.MTLSStrict
	if m.Spec.Selector.MatchLabels["app"] != "a" || m.Spec.PortLevelMTLS["80"] != v1alpha1.MTLSDisable {
		t.Fatal("DeepCopy shares memory")
	}
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if !s.Recognizes(v1alpha1.GroupVersion.WithKind("MeshTLS")) {
		t.Fatal("MeshTLS not registered")
	}
}

// binDir finds kube-apiserver and etcd: $KUBEBUILDER_ASSETS, or
// .cache/bin at the module root (make cluster-bins).
func binDir() (string, bool) {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d, true
	}
	d, err := filepath.Abs(filepath.Join("..", "..", ".cache", "bin"))
	if err != nil {
		return "", false
	}
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(d, b)); err != nil {
			return "", false
		}
	}
	return d, true
}

// TestCRDValidation installs the generated CRD into a real API server and
// checks that its schema and CEL rules reject bad policies on write.
func TestCRDValidation(t *testing.T) {
	dir, ok := binDir()
	if !ok {
		t.Skip("no kube-apiserver/etcd (make cluster-bins or set KUBEBUILDER_ASSETS)")
	}
	if testing.Short() {
		t.Skip("starts an API server")
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{"crds"},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: dir,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start api server: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop api server: %v", err)
		}
	})
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "reviews"}}
	for _, tc := range []struct {
		name    string
		spec    v1alpha1.MeshTLSSpec
		wantErr string
	}{
		{name: "mesh-strict", spec: v1alpha1.MeshTLSSpec{Mode: v1alpha1.MTLSStrict}},
		{name: "inherit", spec: v1alpha1.MeshTLSSpec{}},
		{name: "workload-ports", spec: v1alpha1.MeshTLSSpec{Selector: sel, Mode: v1alpha1.MTLSPermissive,
			PortLevelMTLS: map[string]v1alpha1.MTLSMode{"8080": v1alpha1.MTLSDisable, "65535": v1alpha1.MTLSStrict}}},
		{name: "bad-mode", spec: v1alpha1.MeshTLSSpec{Mode: "SOMETIMES"}, wantErr: `Unsupported value: "SOMETIMES"`},
		{name: "bad-port-mode", spec: v1alpha1.MeshTLSSpec{Selector: sel, PortLevelMTLS: map[string]v1alpha1.MTLSMode{"80": "OFF"}},
			wantErr: `Unsupported value: "OFF"`},
		{name: "ports-without-selector", spec: v1alpha1.MeshTLSSpec{PortLevelMTLS: map[string]v1alpha1.MTLSMode{"80": v1alpha1.MTLSStrict}},
			wantErr: "portLevelMTLS requires a selector"},
		{name: "named-port", spec: v1alpha1.MeshTLSSpec{Selector: sel, PortLevelMTLS: map[string]v1alpha1.MTLSMode{"http": v1alpha1.MTLSStrict}},
			wantErr: "portLevelMTLS keys must be port numbers"},
		{name: "port-zero", spec: v1alpha1.MeshTLSSpec{Selector: sel, PortLevelMTLS: map[string]v1alpha1.MTLSMode{"0": v1alpha1.MTLSStrict}},
			wantErr: "portLevelMTLS keys must be port numbers"},
		{name: "port-too-big", spec: v1alpha1.MeshTLSSpec{Selector: sel, PortLevelMTLS: map[string]v1alpha1.MTLSMode{"65536": v1alpha1.MTLSStrict}},
			wantErr: "portLevelMTLS keys must be port numbers"},
		{name: "empty-selector", spec: v1alpha1.MeshTLSSpec{Selector: &metav1.LabelSelector{}, Mode: v1alpha1.MTLSStrict},
			wantErr: "selector must not be empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := &v1alpha1.MeshTLS{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: tc.name}, Spec: tc.spec}
			err := c.Create(context.Background(), obj)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("valid policy rejected: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("invalid policy accepted")
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("error %q does not mention %q", err, tc.wantErr)
			}
		})
	}
	// Status is a subresource: conditions can be written by pilot.
	var got v1alpha1.MeshTLS
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "mesh-strict"}, &got); err != nil {
		t.Fatal(err)
	}
	got.Status.Conditions = []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Resolved",
		LastTransitionTime: metav1.Now()}}
	if err := c.Status().Update(context.Background(), &got); err != nil {
		t.Fatalf("status update: %v", err)
	}
}
