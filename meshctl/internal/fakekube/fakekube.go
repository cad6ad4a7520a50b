// Package fakekube is a fake cluster for meshctl's unit tests: client-go's
// fake clientset and dynamic client behind a kube.Client, with canned
// answers for what meshctl reads through the API server's pod proxy
// (pilot's /debug/syncz, weft-cni-node's metrics) and port-forward (Envoy's
// admin API). Mesh builds a healthy Weft installation that tests then
// break one fact at a time.
package fakekube

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/weftmesh/weft/meshctl/kube"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// Resources served by the fake dynamic client, with their list kinds.
var (
	CRDs                  = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	MeshTLSes             = schema.GroupVersionResource{Group: "mesh.weft.dev", Version: "v1alpha1", Resource: "meshtlses"}
	AuthorizationPolicies = schema.GroupVersionResource{Group: "mesh.weft.dev", Version: "v1alpha1", Resource: "authorizationpolicies"}
	TrafficPolicies       = schema.GroupVersionResource{Group: "mesh.weft.dev", Version: "v1alpha1", Resource: "trafficpolicies"}
	Telemetries           = schema.GroupVersionResource{Group: "mesh.weft.dev", Version: "v1alpha1", Resource: "telemetries"}
	HTTPRoutes            = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}
	GRPCRoutes            = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "grpcroutes"}
)

var listKinds = map[schema.GroupVersionResource]string{
	CRDs:                  "CustomResourceDefinitionList",
	MeshTLSes:             "MeshTLSList",
	AuthorizationPolicies: "AuthorizationPolicyList",
	TrafficPolicies:       "TrafficPolicyList",
	Telemetries:           "TelemetryList",
	HTTPRoutes:            "HTTPRouteList",
	GRPCRoutes:            "GRPCRouteList",
}

// Cluster is a fake cluster.
type Cluster struct {
	Kube    *fake.Clientset
	Dynamic *dynamicfake.FakeDynamicClient
	// HTTP answers pod-proxy GETs; Envoy answers admin API GETs.
	HTTP  *Responses
	Envoy *Responses
	// Forwards answers port-forwards (the trace store).
	Forwards *Forwards
	// Namespace is the kubeconfig's namespace ("" means default).
	Namespace string
}

// New returns a cluster holding objs: typed objects go to the clientset,
// unstructured ones to the dynamic client. The API server reports v1.33.
func New(objs ...runtime.Object) *Cluster {
	var typed, dyn []runtime.Object
	for _, o := range objs {
		if _, ok := o.(*unstructured.Unstructured); ok {
			dyn = append(dyn, o)
		} else {
			typed = append(typed, o)
		}
	}
	c := &Cluster{
		Kube:    fake.NewClientset(typed...),
		Dynamic: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds, dyn...),
		HTTP:    &Responses{},
		Envoy:   &Responses{},
	}
	c.Forwards = &Forwards{}
	c.SetServerVersion("1", "33", "v1.33.2")
	return c
}

// SetServerVersion sets what discovery reports.
func (c *Cluster) SetServerVersion(major, minor, git string) {
	c.Kube.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &version.Info{Major: major, Minor: minor, GitVersion: git}
}

// Client is the kube.Client meshctl's commands use.
func (c *Cluster) Client() *kube.Client {
	ns := c.Namespace
	if ns == "" {
		ns = "default"
	}
	return &kube.Client{Kube: c.Kube, Dynamic: c.Dynamic, Namespace: ns, Envoy: c.Envoy, PodHTTP: (*podHTTP)(c.HTTP), Forward: c.Forwards, Host: "https://fake-apiserver:6443"}
}

// Forbid makes every request with verb ("*" for all) on resource ("*" for
// all) fail as RBAC refuses it, on both clients.
func (c *Cluster) Forbid(verb, resource string) {
	react := func(a k8stesting.Action) (bool, runtime.Object, error) {
		gr := a.GetResource().GroupResource()
		return true, nil, apierrors.NewForbidden(gr, "", fmt.Errorf("User \"alice\" cannot %s resource %q in API group %q", a.GetVerb(), gr.Resource, gr.Group))
	}
	c.Kube.PrependReactor(verb, resource, react)
	c.Dynamic.PrependReactor(verb, resource, react)
}

// Responses are canned HTTP bodies by "namespace/pod:port/path" (pod
// proxy) or "namespace/pod/path" (Envoy admin); Gets records requests.
type Responses struct {
	mu     sync.Mutex
	bodies map[string][]byte
	errs   map[string]error
	Gets   []string
}

// Set answers key with body.
func (r *Responses) Set(key string, body []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bodies == nil {
		r.bodies = map[string][]byte{}
	}
	r.bodies[key] = body
}

// Fail answers key with err.
func (r *Responses) Fail(key string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.errs == nil {
		r.errs = map[string]error{}
	}
	r.errs[key] = err
}

func (r *Responses) get(key string) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Gets = append(r.Gets, key)
	if err, ok := r.errs[key]; ok {
		return nil, err
	}
	if b, ok := r.bodies[key]; ok {
		return b, nil
	}
	keys := make([]string, 0, len(r.bodies))
	for k := range r.bodies {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return nil, fmt.Errorf("fake: no answer for %s (have %s)", key, strings.Join(keys, ", "))
}

// Get implements kube.EnvoyAdmin: the key is "namespace/pod/path" with the
// query string dropped.
func (r *Responses) Get(_ context.Context, namespace, pod, path string) ([]byte, error) {
	path, _, _ = strings.Cut(path, "?")
	return r.get(namespace + "/" + pod + path)
}

type podHTTP Responses

// Get implements kube.PodHTTP: the key is "namespace/pod:port/path".
func (p *podHTTP) Get(_ context.Context, namespace, pod string, port int, path string) ([]byte, error) {
	return (*Responses)(p).get(fmt.Sprintf("%s/%s:%d%s", namespace, pod, port, path))
}
