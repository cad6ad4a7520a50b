package analyze

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/api/annotation"
	"github.com/weftmesh/weft/meshctl/internal/fakekube"
	"github.com/weftmesh/weft/meshctl/internal/golden"
	"github.com/weftmesh/weft/meshctl/output"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8stesting "k8s.io/client-go/testing"
)

func ns(name string, meshed bool) *corev1.Namespace {
	n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if meshed {
		n.Labels = map[string]string{annotation.InjectionLabel: annotation.InjectionEnabled}
	}
	return n
}

func svc(namespace, name, app string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": app}, Ports: ports}}
}

func port(name string, p int32, target intstr.IntOrString) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: p, TargetPort: target, Protocol: corev1.ProtocolTCP}
}

func custom(apiVersion, kind, namespace, name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": apiVersion, "kind": kind,
		"metadata": map[string]any{"namespace": namespace, "name": name},
		"spec":     spec,
	}}
}

func meshTLS(namespace, name string, spec map[string]any) *unstructured.Unstructured {
	return custom("mesh.weft.dev/v1alpha1", "MeshTLS", namespace, name, spec)
}

func authz(namespace, name string, spec map[string]any) *unstructured.Unstructured {
	return custom("mesh.weft.dev/v1alpha1", "AuthorizationPolicy", namespace, name, spec)
}

func httpRoute(namespace, name, parent, backend string) *unstructured.Unstructured {
	return custom("gateway.networking.k8s.io/v1", "HTTPRoute", namespace, name, map[string]any{
		"parentRefs": []any{map[string]any{"group": "", "kind": "Service", "name": parent, "port": int64(80)}},
		"rules":      []any{map[string]any{"backendRefs": []any{map[string]any{"name": backend, "port": int64(80)}}}},
	})
}

func selectApp(app string) map[string]any {
	return map[string]any{"matchLabels": map[string]any{"app": app}}
}

// clean is a meshed namespace configured right: every analyzer stays
// quiet on it.
func clean() []runtime.Object {
	return []runtime.Object{
		ns("shop", true), ns("weft-system", false), ns("legacy", false),
		fakekube.MeshedPod("shop", "web-1", "node-1", fakekube.SidecarImage, map[string]string{"app": "web"}),
		fakekube.MeshedPod("shop", "curl-1", "node-1", fakekube.SidecarImage, map[string]string{"app": "curl"}),
		fakekube.PlainPod("legacy", "cron-1", map[string]string{"app": "cron"}), // unmeshed, alone in its namespace
		fakekube.PlainPod("kube-system", "coredns-1", map[string]string{"k8s-app": "kube-dns"}),
		svc("shop", "web", "web", port("http", 80, intstr.FromString("http"))),
		svc("shop", "web-v2", "web", port("http", 80, intstr.FromInt32(8080))),
		svc("shop", "db", "db", func() corev1.ServicePort {
			p := port("db", 5432, intstr.FromInt32(5432))
			tcp := "tcp"
			p.AppProtocol = &tcp
			return p
		}()),
		svc("legacy", "cron", "cron", port("metrics", 9090, intstr.FromInt32(9090))), // unmeshed namespace
		meshTLS("shop", "strict", map[string]any{"mode": "STRICT"}),
		meshTLS("shop", "web-permissive", map[string]any{"selector": selectApp("web"), "mode": "PERMISSIVE"}),
		authz("shop", "web-from-curl", map[string]any{"selector": selectApp("web"), "action": "ALLOW"}),
		authz("weft-system", "mesh-deny-debug", map[string]any{"selector": selectApp("curl"), "action": "DENY"}),
		httpRoute("shop", "web-split", "web", "web-v2"),
	}
}

// seeded adds one misconfiguration per analyzer to clean.
func seeded() []runtime.Object {
	rejected := meshTLS("shop", "second-strict", map[string]any{"mode": "STRICT"})
	rejected.Object["status"] = map[string]any{"conditions": []any{map[string]any{
		"type": "Accepted", "status": "False", "reason": "Conflicted",
		"message": "namespace shop already has MeshTLS strict (older)", "lastTransitionTime": "2026-11-01T00:00:00Z",
	}}}
	return append(clean(),
		// WEFT-A0001: mixed namespace.
		ns("mixed", true),
		fakekube.MeshedPod("mixed", "api-1", "node-1", fakekube.SidecarImage, map[string]string{"app": "api"}),
		fakekube.PlainPod("mixed", "api-old", map[string]string{"app": "api"}),
		// WEFT-A0002: a route to a Service that does not exist.
		httpRoute("shop", "to-nowhere", "web", "web-v3"),
		// WEFT-A0003: a MeshTLS selector with a typo.
		meshTLS("shop", "typo", map[string]any{"selector": selectApp("wbe"), "mode": "STRICT"}),
		// WEFT-A0004: an AuthorizationPolicy that selects nothing.
		authz("shop", "ghost", map[string]any{"selector": selectApp("ghost"), "action": "DENY"}),
		// WEFT-A0005: a port without protocol in a meshed namespace.
		svc("shop", "cache", "cache", port("cache", 6380, intstr.FromInt32(6380))),
		// WEFT-A0006: STRICT with a client that has no sidecar.
		meshTLS("legacy", "strict", map[string]any{"mode": "STRICT"}),
		// WEFT-A0007: a policy pilot did not accept.
		rejected,
		// WEFT-A0008: a named targetPort the meshed pods do not declare.
		svc("shop", "web-admin", "web", port("http-admin", 81, intstr.FromString("admin"))),
	)
}

func collect(t *testing.T, objs []runtime.Object) Snapshot {
	t.Helper()
	s, err := Collect(context.Background(), fakekube.New(objs...).Client())
	require.NoError(t, err)
	return s
}

func TestCleanFixtureIsQuiet(t *testing.T) {
	s := collect(t, clean())
	require.Len(t, s.MeshTLS, 2, "collected from the dynamic client")
	require.Len(t, s.Authz, 2)
	require.Len(t, s.Routes, 1)
	rep := Analyze(s, "")
	assert.Empty(t, rep.Findings)
	assert.Zero(t, rep.Problems())
	var b bytes.Buffer
	require.NoError(t, rep.WriteTable(&b))
	assert.Equal(t, "✓ no problems found in all namespaces\n", b.String())
}

func TestEveryCodeFires(t *testing.T) {
	rep := Analyze(collect(t, seeded()), "")
	want := map[string]string{
		CodeMixedInjection:       "Namespace mixed",
		CodeRouteToMissing:       "HTTPRoute shop/to-nowhere",
		CodeMeshTLSSelectsNone:   "MeshTLS shop/typo",
		CodeAuthzSelectsNone:     "AuthorizationPolicy shop/ghost",
		CodePortWithoutProtocol:  "Service shop/cache",
		CodeStrictUnmeshed:       "MeshTLS legacy/strict",
		CodePolicyNotAccepted:    "MeshTLS shop/second-strict",
		CodeTargetPortUnresolved: "Service shop/web-admin",
	}
	got := map[string]string{}
	for _, f := range rep.Findings {
		assert.NotContains(t, got, f.Code, "%s fired twice", f.Code)
		got[f.Code] = f.Object
		assert.NotEmpty(t, f.Fix, f.Code)
		assert.NotContains(t, f.Message, "\n")
	}
	assert.Equal(t, want, got)
	assert.Equal(t, 8, rep.Problems())

	for f, ext := range map[output.Format]string{output.Table: ".txt", output.JSON: ".json"} {
		var b bytes.Buffer
		require.NoError(t, output.Print(&b, f, rep))
		golden.Check(t, "seeded"+ext, b.Bytes())
	}
}

func TestFindingDetails(t *testing.T) {
	rep := Analyze(collect(t, seeded()), "")
	by := map[string]Finding{}
	for _, f := range rep.Findings {
		by[f.Code] = f
	}
	assert.Equal(t, "1 pod(s) run the sidecar and 1 do not (api-old): the latter send and accept plaintext", by[CodeMixedInjection].Message)
	assert.Equal(t, "backendRef Service shop/web-v3 does not exist: requests it matches fail with 500", by[CodeRouteToMissing].Message)
	assert.Equal(t, Error, by[CodeRouteToMissing].Level)
	assert.Equal(t, "selector app=ghost matches no pod in namespace shop: the policy protects nothing", by[CodeAuthzSelectsNone].Message)
	assert.Contains(t, by[CodeStrictUnmeshed].Message, "cron-1")
	assert.Contains(t, by[CodePolicyNotAccepted].Message, "Conflicted")
	assert.Contains(t, by[CodeTargetPortUnresolved].Message, `targetPort "admin" of port 81`)
}

func TestScopeToNamespace(t *testing.T) {
	rep := Analyze(collect(t, seeded()), "legacy")
	require.Len(t, rep.Findings, 1)
	assert.Equal(t, CodeStrictUnmeshed, rep.Findings[0].Code)
	assert.Equal(t, "namespace legacy", rep.Scope)

	rep = Analyze(collect(t, seeded()), "kube-system")
	assert.Empty(t, rep.Findings)
}

func TestMeshWideStrictCountsEveryNamespace(t *testing.T) {
	objs := append(clean(), meshTLS("weft-system", "mesh", map[string]any{"mode": "STRICT"}))
	rep := Analyze(collect(t, objs), "")
	require.Len(t, rep.Findings, 1)
	f := rep.Findings[0]
	assert.Equal(t, CodeStrictUnmeshed, f.Code)
	assert.True(t, strings.HasPrefix(f.Message, "STRICT mTLS in the mesh, but 1 pod(s) without a sidecar (cron-1)"), f.Message)
}

// A Telemetry that loses to an older one in its namespace is reported
// like any policy pilot does not apply.
func TestTelemetryNotAccepted(t *testing.T) {
	rejected := custom("mesh.weft.dev/v1alpha1", "Telemetry", "shop", "second", map[string]any{
		"tracing": map[string]any{"randomSamplingPercentage": int64(5)}})
	rejected.Object["status"] = map[string]any{"conditions": []any{map[string]any{
		"type": "Accepted", "status": "False", "reason": "Conflicted",
		"message": "Telemetry shop/default is in force: one Telemetry per namespace, the oldest wins", "lastTransitionTime": "2026-11-01T00:00:00Z",
	}}}
	accepted := custom("mesh.weft.dev/v1alpha1", "Telemetry", "shop", "default", map[string]any{
		"accessLogging": map[string]any{"disabled": false}})
	s := collect(t, append(clean(), rejected, accepted))
	require.Len(t, s.Telemetry, 2, "collected from the dynamic client")
	rep := Analyze(s, "")
	require.Len(t, rep.Findings, 1)
	f := rep.Findings[0]
	assert.Equal(t, CodePolicyNotAccepted, f.Code)
	assert.Equal(t, "Telemetry shop/second", f.Object)
	assert.Contains(t, f.Message, "Conflicted")
	assert.Contains(t, f.Fix, "kubectl get telemetries.mesh.weft.dev -A")
}

func TestMissingCRDsAreEmpty(t *testing.T) {
	c := fakekube.New(ns("shop", true))
	c.Dynamic.PrependReactor("list", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewNotFound(a.GetResource().GroupResource(), "")
	})
	s, err := Collect(context.Background(), c.Client())
	require.NoError(t, err, "a cluster without the mesh or Gateway API CRDs has no policies and routes")
	assert.Empty(t, s.Routes)
	assert.Empty(t, s.MeshTLS)
}

func TestForbiddenFailsCollect(t *testing.T) {
	c := fakekube.New(ns("shop", true))
	c.Forbid("list", "pods")
	_, err := Collect(context.Background(), c.Client())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "list pods: ")
	assert.Contains(t, err.Error(), "forbidden")
}
