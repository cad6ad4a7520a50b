package model_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/weftmesh/weft/api/v1alpha1"
	"github.com/weftmesh/weft/pilot/model"
)

func k8sObjects() (*corev1.Service, *discoveryv1.EndpointSlice, *corev1.Pod) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "reviews", Annotations: map[string]string{model.AnnotationExportTo: ". , mesh"}},
		Spec: corev1.ServiceSpec{
			ClusterIP: "10.96.0.20", ClusterIPs: []string{"10.96.0.20"},
			Selector: map[string]string{"app": "reviews"},
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 9080, TargetPort: intstr.FromString("web"), Protocol: corev1.ProtocolTCP},
				{Name: "grpc", Port: 9090, AppProtocol: ptr.To("kubernetes.io/h2c"), Protocol: corev1.ProtocolTCP},
			},
		},
	}
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "shop", Name: "reviews-x1", Labels: map[string]string{discoveryv1.LabelServiceName: "reviews"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.0.2.10"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "reviews-1"}, Zone: ptr.To("z1"), NodeName: ptr.To("n1")},
			{Addresses: []string{"10.0.2.11"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false), Terminating: ptr.To(true)}},
		},
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "reviews-1", Labels: map[string]string{"app": "reviews"},
			Annotations: map[string]string{model.AnnotationSidecarStatus: "{}"}},
		Spec: corev1.PodSpec{ServiceAccountName: "reviews", NodeName: "n1",
			Containers: []corev1.Container{{Name: "app", Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 8080}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.2.10", PodIPs: []corev1.PodIP{{IP: "10.0.2.10"}}},
	}
	return svc, es, pod
}

func TestConvert(t *testing.T) {
	svc, es, pod := k8sObjects()
	s, ok := model.ServiceFromK8s(svc)
	if !ok || s.Headless || s.ClusterIPs[0] != netip.MustParseAddr("10.96.0.20") ||
		s.Ports[0].TargetPortName != "web" || s.Ports[1].TargetPort != 9090 || s.Ports[1].Classify() != model.ProtocolHTTP2 ||
		len(s.ExportTo) != 2 || s.ExportTo[1] != "mesh" {
		t.Errorf("service = %+v", s)
	}
	e, ok := model.EndpointSliceFromK8s(es)
	if !ok || e.Service != "reviews" || !e.Endpoints[0].Ready || e.Endpoints[1].Ready || !e.Endpoints[1].Terminating ||
		e.Endpoints[0].Pod != "reviews-1" || e.Endpoints[0].Zone != "z1" {
		t.Errorf("slice = %+v", e)
	}
	p, ok := model.PodFromK8s(pod)
	if !ok || !p.HasSidecar || p.ServiceAccount != "reviews" || p.ContainerPorts["web"] != 8080 || len(p.IPs) != 1 {
		t.Errorf("pod = %+v", p)
	}

	headless := svc.DeepCopy()
	headless.Spec.ClusterIP, headless.Spec.ClusterIPs = corev1.ClusterIPNone, []string{corev1.ClusterIPNone}
	if s, _ := model.ServiceFromK8s(headless); !s.Headless || len(s.ClusterIPs) != 0 {
		t.Errorf("headless = %+v", s)
	}
	ext := svc.DeepCopy()
	ext.Spec.Type = corev1.ServiceTypeExternalName
	if _, ok := model.ServiceFromK8s(ext); ok {
		t.Error("ExternalName service converted")
	}
	done := pod.DeepCopy()
	done.Status.Phase = corev1.PodSucceeded
	if _, ok := model.PodFromK8s(done); ok {
		t.Error("finished pod converted")
	}
	hostNet := pod.DeepCopy()
	hostNet.Spec.HostNetwork = true
	if p, _ := model.PodFromK8s(hostNet); len(p.IPs) != 0 {
		t.Error("host-network pod indexed by the node IP")
	}
	orphan := es.DeepCopy()
	orphan.Labels = nil
	if _, ok := model.EndpointSliceFromK8s(orphan); ok {
		t.Error("slice without service converted")
	}
	noSA := pod.DeepCopy()
	noSA.Spec.ServiceAccountName = ""
	if p, _ := model.PodFromK8s(noSA); p.ServiceAccount != "default" {
		t.Errorf("empty service account = %q, want default", p.ServiceAccount)
	}
}

func TestTLSPolicyFromMeshTLS(t *testing.T) {
	m := &v1alpha1.MeshTLS{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "p"},
		Spec: v1alpha1.MeshTLSSpec{
			Selector:      &metav1.LabelSelector{MatchLabels: map[string]string{"app": "reviews"}},
			Mode:          v1alpha1.MTLSStrict,
			PortLevelMTLS: map[string]v1alpha1.MTLSMode{"8080": v1alpha1.MTLSDisable},
		},
	}
	p, err := model.TLSPolicyFromMeshTLS(m)
	if err != nil || p.Mode != model.MTLSStrict || p.PortModes[8080] != model.MTLSDisable || !p.Selector.Matches(labels.Set{"app": "reviews"}) {
		t.Fatalf("policy = %+v, %v", p, err)
	}
	for _, bad := range []v1alpha1.MeshTLSSpec{
		{Mode: "SOMETIMES"},
		{PortLevelMTLS: map[string]v1alpha1.MTLSMode{"http": v1alpha1.MTLSStrict}},
		{PortLevelMTLS: map[string]v1alpha1.MTLSMode{"70000": v1alpha1.MTLSStrict}},
		{PortLevelMTLS: map[string]v1alpha1.MTLSMode{"80": "NO"}},
		{Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Bogus"}}}},
	} {
		if _, err := model.TLSPolicyFromMeshTLS(&v1alpha1.MeshTLS{Spec: bad}); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

func TestInformersFeedTheStore(t *testing.T) {
	svc, es, pod := k8sObjects()
	client := fake.NewClientset(svc, es, pod)
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	policy := &v1alpha1.MeshTLS{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "MeshTLS"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "strict"},
		Spec:       v1alpha1.MeshTLSSpec{Mode: v1alpha1.MTLSStrict},
	}
	if err := gatewayv1.Install(scheme); err != nil {
		t.Fatal(err)
	}
	route := &gatewayv1.HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: "HTTPRoute"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "reviews"},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
				Group: ptr.To(gatewayv1.Group("")), Kind: ptr.To(gatewayv1.Kind("Service")), Name: "reviews"}}},
			Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
				BackendObjectReference: gatewayv1.BackendObjectReference{Name: "reviews", Port: ptr.To[int32](9080)}}}}}},
		},
	}
	tp := &v1alpha1.TrafficPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "TrafficPolicy"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "lb"},
		Spec: v1alpha1.TrafficPolicySpec{TargetRefs: []v1alpha1.PolicyTargetReference{{Kind: "Service", Name: "reviews"}},
			LoadBalancer: &v1alpha1.LoadBalancer{Algorithm: v1alpha1.LoadBalancerRoundRobin}},
	}
	ap := &v1alpha1.AuthorizationPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "AuthorizationPolicy"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "deny-all"},
	}
	tel := &v1alpha1.Telemetry{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Telemetry"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "default"},
		Spec:       v1alpha1.TelemetrySpec{Tracing: &v1alpha1.TracingSpec{Disabled: ptr.To(true)}},
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme,
		map[schema.GroupVersionResource]string{
			v1alpha1.MeshTLSResource:             "MeshTLSList",
			v1alpha1.TrafficPolicyResource:       "TrafficPolicyList",
			v1alpha1.AuthorizationPolicyResource: "AuthorizationPolicyList",
			v1alpha1.TelemetryResource:           "TelemetryList",
			model.HTTPRouteResource:              "HTTPRouteList",
			model.GRPCRouteResource:              "GRPCRouteList",
		}, policy, route, tp, ap, tel)

	st := model.NewStore(model.StoreConfig{RootNamespace: "weft-system"})
	ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), testr.New(t)))
	defer cancel()
	if err := model.StartInformers(ctx, model.InformerConfig{Client: client, Dynamic: dyn, Store: st}); err != nil {
		t.Fatal(err)
	}
	v := st.View()
	if len(v.Services()) != 1 || len(v.EndpointSlices(model.Key{Namespace: "shop", Name: "reviews"})) != 1 {
		t.Fatalf("services/slices not loaded")
	}
	p, ok := v.Pod(model.Key{Namespace: "shop", Name: "reviews-1"})
	if !ok {
		t.Fatal("pod not loaded")
	}
	if got := v.MTLS(p).Mode; got != model.MTLSStrict {
		t.Errorf("policy not loaded: mode %s", got)
	}
	reviews := model.Key{Namespace: "shop", Name: "reviews"}
	if len(v.RouteTable().For(reviews)) != 1 || v.TrafficTable().For(reviews) == nil || len(v.Authz(p)) != 1 {
		t.Errorf("routes/policies not loaded: %d rules, traffic %v, authz %d",
			len(v.RouteTable().For(reviews)), v.TrafficTable().For(reviews), len(v.Authz(p)))
	}

	if got := v.Telemetry("shop"); got != (model.TelemetrySettings{TracingDisabled: model.Some(true)}) {
		t.Errorf("telemetry not loaded: %+v", got)
	}

	// A Telemetry change is a model event (so the xDS server pushes) and
	// reaches the next View.
	events := make(chan model.Event, 16)
	st.Subscribe(func(e model.Event) { events <- e })
	tel.Spec.Tracing = &v1alpha1.TracingSpec{RandomSamplingPercentage: ptr.To(0.5)}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(tel)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(v1alpha1.TelemetryResource).Namespace("shop").Update(ctx, &unstructured.Unstructured{Object: u}, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return st.View().Telemetry("shop").SamplingPercent == model.Some(0.5) })
	if e := <-events; e.Kind != model.KindTelemetry || e.Key != (model.Key{Namespace: "shop", Name: "default"}) {
		t.Errorf("event = %+v, want the Telemetry's", e)
	}
	if err := dyn.Resource(v1alpha1.TelemetryResource).Namespace("shop").Delete(ctx, "default", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return len(st.View().Telemetries()) == 0 })

	// Updates and deletes flow through.
	if err := client.CoreV1().Pods("shop").Delete(ctx, "reviews-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { _, ok := st.Pod(model.Key{Namespace: "shop", Name: "reviews-1"}); return !ok })
	svc.Spec.Type = corev1.ServiceTypeExternalName
	if _, err := client.CoreV1().Services("shop").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return len(st.View().Services()) == 0 })
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
