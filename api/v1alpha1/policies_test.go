package v1alpha1_test

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/weftmesh/weft/api/v1alpha1"
)

// TestPolicyCRDValidation installs the TrafficPolicy, AuthorizationPolicy
// and Telemetry CRDs into a real API server and checks that schema and CEL rules refuse
// policies pilot could not apply.
func TestPolicyCRDValidation(t *testing.T) {
	dir, ok := binDir()
	if !ok {
		t.Skip("no kube-apiserver/etcd (make cluster-bins or set KUBEBUILDER_ASSETS)")
	}
	if testing.Short() {
		t.Skip("starts an API server")
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{"crds"}, ErrorIfCRDPathMissing: true, BinaryAssetsDirectory: dir}
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
	check := func(t *testing.T, obj client.Object, wantErr string) {
		t.Helper()
		err := c.Create(context.Background(), obj)
		switch {
		case wantErr == "" && err != nil:
			t.Fatalf("valid policy rejected: %v", err)
		case wantErr != "" && err == nil:
			t.Fatalf("invalid policy accepted")
		case wantErr != "" && !strings.Contains(err.Error(), wantErr):
			t.Fatalf("error %q does not mention %q", err, wantErr)
		}
	}
	svc := []v1alpha1.PolicyTargetReference{{Kind: "Service", Name: "reviews"}}
	pct := func(s string) *v1alpha1.Percent { p := v1alpha1.Percent(s); return &p }
	for _, tc := range []struct {
		name    string
		spec    v1alpha1.TrafficPolicySpec
		wantErr string
	}{
		{name: "full", spec: v1alpha1.TrafficPolicySpec{TargetRefs: svc,
			LoadBalancer:   &v1alpha1.LoadBalancer{Algorithm: v1alpha1.LoadBalancerRoundRobin},
			ConnectionPool: &v1alpha1.ConnectionPool{MaxConnections: ptr.To[int32](1)},
			Retry:          &v1alpha1.RetryPolicy{Attempts: 3, RetryOn: []string{"5xx", "retriable-status-codes"}, Codes: []int32{503}},
			Fault:          &v1alpha1.FaultInjection{Abort: &v1alpha1.FaultAbort{HTTPStatus: 503, Percentage: pct("0.5")}}}},
		{name: "no-targets", spec: v1alpha1.TrafficPolicySpec{}, wantErr: "targetRefs"},
		{name: "deployment", spec: v1alpha1.TrafficPolicySpec{TargetRefs: []v1alpha1.PolicyTargetReference{{Group: "apps", Kind: "Deployment", Name: "x"}}},
			wantErr: "only Services"},
		{name: "bad-lb", spec: v1alpha1.TrafficPolicySpec{TargetRefs: svc, LoadBalancer: &v1alpha1.LoadBalancer{Algorithm: "Fastest"}},
			wantErr: `Unsupported value: "Fastest"`},
		{name: "empty-fault", spec: v1alpha1.TrafficPolicySpec{TargetRefs: svc, Fault: &v1alpha1.FaultInjection{}}, wantErr: "a fault needs a delay or an abort"},
		{name: "bad-percent", spec: v1alpha1.TrafficPolicySpec{TargetRefs: svc,
			Fault: &v1alpha1.FaultInjection{Abort: &v1alpha1.FaultAbort{HTTPStatus: 503, Percentage: pct("150")}}}, wantErr: "percentage"},
		{name: "codes-missing", spec: v1alpha1.TrafficPolicySpec{TargetRefs: svc,
			Retry: &v1alpha1.RetryPolicy{Attempts: 1, RetryOn: []string{"retriable-status-codes"}}}, wantErr: "retriable-status-codes needs codes"},
		{name: "bad-retry-on", spec: v1alpha1.TrafficPolicySpec{TargetRefs: svc,
			Retry: &v1alpha1.RetryPolicy{Attempts: 1, RetryOn: []string{"sometimes"}}}, wantErr: `Unsupported value: "sometimes"`},
	} {
		t.Run("traffic/"+tc.name, func(t *testing.T) {
			check(t, &v1alpha1.TrafficPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: tc.name}, Spec: tc.spec}, tc.wantErr)
		})
	}
	for _, tc := range []struct {
		name    string
		spec    v1alpha1.AuthorizationPolicySpec
		wantErr string
	}{
		{name: "deny-all", spec: v1alpha1.AuthorizationPolicySpec{}},
		{name: "allow", spec: v1alpha1.AuthorizationPolicySpec{Action: v1alpha1.ActionAllow, Rules: []v1alpha1.AuthorizationRule{{
			From: []v1alpha1.Source{{Principals: []string{"cluster.local/ns/shop/sa/productpage"}}},
			To:   []v1alpha1.Operation{{Methods: []string{"GET"}, Paths: []string{"/reviews/*"}, Ports: []int32{9080}}},
		}}}},
		{name: "bad-action", spec: v1alpha1.AuthorizationPolicySpec{Action: "LOG"}, wantErr: `Unsupported value: "LOG"`},
		{name: "empty-source", spec: v1alpha1.AuthorizationPolicySpec{Rules: []v1alpha1.AuthorizationRule{{From: []v1alpha1.Source{{}}}}},
			wantErr: "a source needs"},
		{name: "bad-method", spec: v1alpha1.AuthorizationPolicySpec{Rules: []v1alpha1.AuthorizationRule{{To: []v1alpha1.Operation{{Methods: []string{"get"}}}}}},
			wantErr: "methods"},
		{name: "bad-port", spec: v1alpha1.AuthorizationPolicySpec{Rules: []v1alpha1.AuthorizationRule{{To: []v1alpha1.Operation{{Ports: []int32{0}}}}}},
			wantErr: "ports"},
		{name: "empty-selector", spec: v1alpha1.AuthorizationPolicySpec{Selector: &metav1.LabelSelector{}}, wantErr: "selector must not be empty"},
	} {
		t.Run("authz/"+tc.name, func(t *testing.T) {
			check(t, &v1alpha1.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: tc.name}, Spec: tc.spec}, tc.wantErr)
		})
	}
	for _, tc := range []struct {
		name    string
		spec    v1alpha1.TelemetrySpec
		wantErr string
	}{
		{name: "inherit", spec: v1alpha1.TelemetrySpec{}},
		{name: "tracing-off", spec: v1alpha1.TelemetrySpec{Tracing: &v1alpha1.TracingSpec{Disabled: ptr.To(true)}}},
		{name: "sampling-half", spec: v1alpha1.TelemetrySpec{Tracing: &v1alpha1.TracingSpec{RandomSamplingPercentage: ptr.To(0.5)}}},
		{name: "sampling-bounds", spec: v1alpha1.TelemetrySpec{Tracing: &v1alpha1.TracingSpec{Disabled: ptr.To(false), RandomSamplingPercentage: ptr.To(100.0)},
			AccessLogging: &v1alpha1.AccessLoggingSpec{Disabled: ptr.To(false)}}},
		{name: "sampling-zero", spec: v1alpha1.TelemetrySpec{Tracing: &v1alpha1.TracingSpec{RandomSamplingPercentage: ptr.To(0.0)}}},
		{name: "sampling-above-100", spec: v1alpha1.TelemetrySpec{Tracing: &v1alpha1.TracingSpec{RandomSamplingPercentage: ptr.To(100.5)}},
			wantErr: "should be less than or equal to 100"},
		{name: "sampling-negative", spec: v1alpha1.TelemetrySpec{Tracing: &v1alpha1.TracingSpec{RandomSamplingPercentage: ptr.To(-1.0)}},
			wantErr: "should be greater than or equal to 0"},
		{name: "empty-tracing", spec: v1alpha1.TelemetrySpec{Tracing: &v1alpha1.TracingSpec{}}, wantErr: "tracing needs disabled or randomSamplingPercentage"},
		{name: "empty-access-logging", spec: v1alpha1.TelemetrySpec{AccessLogging: &v1alpha1.AccessLoggingSpec{}}, wantErr: "spec.accessLogging.disabled: Required value"},
		{name: "metrics-off", spec: v1alpha1.TelemetrySpec{Metrics: &v1alpha1.MetricsSpec{Disabled: ptr.To(true)}}},
		{name: "metrics-on", spec: v1alpha1.TelemetrySpec{Metrics: &v1alpha1.MetricsSpec{Disabled: ptr.To(false)},
			Tracing: &v1alpha1.TracingSpec{Disabled: ptr.To(true)}}},
		{name: "empty-metrics", spec: v1alpha1.TelemetrySpec{Metrics: &v1alpha1.MetricsSpec{}}, wantErr: "spec.metrics.disabled: Required value"},
	} {
		t.Run("telemetry/"+tc.name, func(t *testing.T) {
			check(t, &v1alpha1.Telemetry{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: tc.name}, Spec: tc.spec}, tc.wantErr)
		})
	}
	// Sampling written as a YAML/JSON integer (randomSamplingPercentage: 1)
	// is a number too, and reads back as float64.
	tel := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(), "kind": "Telemetry",
		"metadata": map[string]any{"namespace": "default", "name": "integer-sampling"},
		"spec":     map[string]any{"tracing": map[string]any{"randomSamplingPercentage": int64(1)}},
	}}
	check(t, tel, "")
	var gotTel v1alpha1.Telemetry
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "integer-sampling"}, &gotTel); err != nil {
		t.Fatal(err)
	}
	if p := gotTel.Spec.Tracing.RandomSamplingPercentage; p == nil || *p != 1 {
		t.Errorf("integer sampling reads back as %v, want 1", p)
	}
	var got v1alpha1.AuthorizationPolicy
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "deny-all"}, &got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.Action != v1alpha1.ActionAllow {
		t.Errorf("action defaults to %q, want ALLOW", got.Spec.Action)
	}
}

func TestTelemetryDeepCopyAndScheme(t *testing.T) {
	tel := &v1alpha1.Telemetry{Spec: v1alpha1.TelemetrySpec{
		Tracing:       &v1alpha1.TracingSpec{Disabled: ptr.To(true), RandomSamplingPercentage: ptr.To(2.5)},
		AccessLogging: &v1alpha1.AccessLoggingSpec{Disabled: ptr.To(false)},
		Metrics:       &v1alpha1.MetricsSpec{Disabled: ptr.To(false)},
	}}
	c := tel.DeepCopy()
	*c.Spec.Tracing.Disabled, *c.Spec.Tracing.RandomSamplingPercentage, *c.Spec.AccessLogging.Disabled = false, 50, true
	*c.Spec.Metrics.Disabled = true
	if !*tel.Spec.Tracing.Disabled || *tel.Spec.Tracing.RandomSamplingPercentage != 2.5 || *tel.Spec.AccessLogging.Disabled || *tel.Spec.Metrics.Disabled {
		t.Fatal("DeepCopy shares memory")
	}
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"Telemetry", "TelemetryList"} {
		if !s.Recognizes(v1alpha1.GroupVersion.WithKind(kind)) {
			t.Errorf("%s not registered", kind)
		}
	}
}
