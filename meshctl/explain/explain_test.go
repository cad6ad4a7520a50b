package explain

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/api/annotation"
	"github.com/weftmesh/weft/meshctl/envoy"
	"github.com/weftmesh/weft/meshctl/internal/golden"
	"github.com/weftmesh/weft/meshctl/output"
	"github.com/weftmesh/weft/pilot/model"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// world is the sample apps as they ran on the local cluster
// (../testdata/cluster.json): httpbin (3 pods) and curl (3 pods) in the
// meshed namespace explore, curl (3 pods) without sidecars in plain.
type world struct {
	pods    map[string]*corev1.Pod
	svc     *corev1.Service
	slice   *discoveryv1.EndpointSlice
	dumps   map[string]*envoy.ConfigDump
	byLabel func(ns, app string) []*corev1.Pod
}

func loadWorld(t *testing.T) world {
	t.Helper()
	b, err := os.ReadFile("../testdata/cluster.json")
	require.NoError(t, err)
	var list struct{ Items []map[string]any }
	require.NoError(t, json.Unmarshal(b, &list))
	w := world{pods: map[string]*corev1.Pod{}, dumps: map[string]*envoy.ConfigDump{}}
	var pods []*corev1.Pod
	for _, it := range list.Items {
		u := &unstructured.Unstructured{Object: it}
		switch u.GetKind() {
		case "Pod":
			var p corev1.Pod
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(it, &p))
			w.pods[p.Namespace+"/"+p.Name] = &p
			pods = append(pods, &p)
		case "Service":
			var s corev1.Service
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(it, &s))
			w.svc = &s
		case "EndpointSlice":
			var s discoveryv1.EndpointSlice
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(it, &s))
			w.slice = &s
		}
	}
	w.byLabel = func(ns, app string) []*corev1.Pod {
		var out []*corev1.Pod
		for _, p := range pods {
			if p.Namespace == ns && p.Labels["app"] == app {
				out = append(out, p)
			}
		}
		return out
	}
	for _, n := range []string{"curl", "httpbin", "httpbin-strict"} {
		b, err := os.ReadFile("../testdata/" + n + "-config-dump.json")
		require.NoError(t, err)
		d, err := envoy.Parse(b)
		require.NoError(t, err)
		w.dumps[n] = d
	}
	return w
}

// facts builds what Collect would gather for src → httpbin.explore:8000.
func (w world) facts(t *testing.T, src *corev1.Pod, inbound string) Facts {
	t.Helper()
	f := Facts{TrustDomain: "cluster.local", ClusterDomain: "cluster.local", RootNamespace: RootNamespace,
		Path: "/", Method: "GET", Authz: PolicySet{RootNamespace: RootNamespace}}
	f.Source.Pod = src
	if v, ok := src.Annotations[annotation.StatusAnnotation]; ok {
		st, err := annotation.ParseStatus(v)
		require.NoError(t, err)
		f.Source.Sidecar = &st
		f.Source.Envoy = w.dumps["curl"]
		f.Source.CheckerOnNode = true
	}
	f.Dest.Service = w.svc
	f.Dest.Port = &w.svc.Spec.Ports[0]
	f.Dest.IP = netip.MustParseAddr(w.svc.Spec.ClusterIP)
	f.Dest.PortNumber = 8000
	for _, e := range w.slice.Endpoints {
		ep := Endpoint{IP: netip.MustParseAddr(e.Addresses[0]), Port: 8080, Ready: *e.Conditions.Ready}
		ep.Pod = w.pods["explore/"+e.TargetRef.Name]
		f.Endpoints = append(f.Endpoints, ep)
	}
	if inbound != "" {
		f.Inbound = w.dumps[inbound]
		f.InboundPod = "explore/" + inboundPodName(t, w.dumps[inbound])
	}
	return f
}

// inboundPodName reads the dump's node id (<pod>.<namespace>).
func inboundPodName(t *testing.T, d *envoy.ConfigDump) string {
	var b struct {
		Bootstrap struct {
			Node struct{ ID string } `json:"node"`
		} `json:"bootstrap"`
	}
	require.NoError(t, json.Unmarshal(d.Sections[envoy.SectionBootstrap], &b))
	id := b.Bootstrap.Node.ID
	return id[:len(id)-len(".explore")]
}

func strict(ns string) *model.TLSPolicy {
	return &model.TLSPolicy{Namespace: ns, Name: "strict", Mode: model.MTLSStrict, Created: time.Unix(0, 0)}
}

func render(t *testing.T, e Explanation, f output.Format) []byte {
	var b bytes.Buffer
	require.NoError(t, output.Print(&b, f, e))
	return b.Bytes()
}

func TestMeshedClientAllowed(t *testing.T) {
	w := loadWorld(t)
	e := Evaluate(w.facts(t, w.byLabel("explore", "curl")[0], "httpbin"))
	assert.Equal(t, Allowed, e.Verdict, e.Reason)
	assert.Contains(t, e.Reason, "mutual TLS as spiffe://cluster.local/ns/explore/sa/curl")
	for _, ev := range e.Endpoints {
		assert.Equal(t, "mTLS", ev.Transport)
		assert.Equal(t, "PERMISSIVE", ev.MTLSMode)
	}
	golden.Check(t, "allowed.txt", render(t, e, output.Table))
	golden.Check(t, "allowed.json", render(t, e, output.JSON))
}

func TestPlaintextClientDeniedByStrict(t *testing.T) {
	w := loadWorld(t)
	f := w.facts(t, w.byLabel("plain", "curl")[0], "httpbin-strict")
	f.Policies = []*model.TLSPolicy{strict("explore")}
	e := Evaluate(f)
	assert.Equal(t, Denied, e.Verdict)
	assert.Contains(t, e.Reason, "STRICT mTLS at httpbin (MeshTLS explore/strict, namespace) refuses the client's plaintext")
	golden.Check(t, "denied-strict.txt", render(t, e, output.Table))
	golden.Check(t, "denied-strict.json", render(t, e, output.JSON))
}

func TestPlaintextClientAllowedByPermissive(t *testing.T) {
	w := loadWorld(t)
	e := Evaluate(w.facts(t, w.byLabel("plain", "curl")[0], "httpbin"))
	assert.Equal(t, Allowed, e.Verdict)
	assert.Contains(t, e.Reason, "plaintext without identity")
}

func TestEnvoyOverridesStalePolicy(t *testing.T) {
	// MeshTLS says STRICT but the sidecar still runs PERMISSIVE config:
	// what happens is what Envoy does, and explain says so.
	w := loadWorld(t)
	f := w.facts(t, w.byLabel("plain", "curl")[0], "httpbin")
	f.Policies = []*model.TLSPolicy{strict("explore")}
	e := Evaluate(f)
	assert.Equal(t, Partial, e.Verdict, e.Reason)
	assert.Contains(t, string(render(t, e, output.Table)), "has not pushed it yet")
}

func denyStatus() AuthzPolicy {
	var p AuthzPolicy
	p.Metadata = metav1.ObjectMeta{Namespace: "explore", Name: "deny-status"}
	p.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "httpbin"}}
	p.Spec.Action = "DENY"
	p.Spec.Rules = make([]struct {
		From []struct {
			Principals    []string `json:"principals,omitempty"`
			NotPrincipals []string `json:"notPrincipals,omitempty"`
			Namespaces    []string `json:"namespaces,omitempty"`
			NotNamespaces []string `json:"notNamespaces,omitempty"`
		} `json:"from,omitempty"`
		To []struct {
			Methods []string `json:"methods,omitempty"`
			Paths   []string `json:"paths,omitempty"`
			Ports   []int32  `json:"ports,omitempty"`
		} `json:"to,omitempty"`
	}, 1)
	p.Spec.Rules[0].To = append(p.Spec.Rules[0].To, struct {
		Methods []string `json:"methods,omitempty"`
		Paths   []string `json:"paths,omitempty"`
		Ports   []int32  `json:"ports,omitempty"`
	}{Paths: []string{"/status/*"}})
	return p
}

func TestAuthorizationPolicyDenies(t *testing.T) {
	w := loadWorld(t)
	f := w.facts(t, w.byLabel("explore", "curl")[0], "httpbin")
	f.Authz = PolicySet{RootNamespace: RootNamespace, Policies: []AuthzPolicy{denyStatus()}}
	f.Path = "/status/418"
	e := Evaluate(f)
	assert.Equal(t, Denied, e.Verdict)
	assert.Equal(t, "denied by DENY policy explore/deny-status (rule 1)", e.Reason)
	golden.Check(t, "denied-authz.txt", render(t, e, output.Table))

	f.Path = "/get"
	assert.Equal(t, Allowed, Evaluate(f).Verdict)
}

func TestNoAuthorizationAPI(t *testing.T) {
	w := loadWorld(t)
	f := w.facts(t, w.byLabel("explore", "curl")[0], "")
	f.Authz = NoPolicies{Why: "the AuthorizationPolicy API is not installed in this cluster"}
	e := Evaluate(f)
	assert.Equal(t, Allowed, e.Verdict)
	assert.Contains(t, e.Reason, "no authorization policy: allowed (the AuthorizationPolicy API is not installed in this cluster)")
}

func TestNoReadyEndpointsFails(t *testing.T) {
	w := loadWorld(t)
	f := w.facts(t, w.byLabel("explore", "curl")[0], "")
	for i := range f.Endpoints {
		f.Endpoints[i].Ready = false
	}
	e := Evaluate(f)
	assert.Equal(t, Fails, e.Verdict)
	assert.Contains(t, e.Reason, "no ready endpoint")
}

func TestMissingRedirectRulesBypassSidecar(t *testing.T) {
	w := loadWorld(t)
	f := w.facts(t, w.byLabel("explore", "curl")[0], "httpbin-strict")
	f.Policies = []*model.TLSPolicy{strict("explore")}
	f.Source.RedirectMissing = "Network namespace lacks Weft's redirect rules (WEFT-OUTPUT)"
	e := Evaluate(f)
	assert.Equal(t, Denied, e.Verdict, "the meshed client's traffic leaves in plaintext and STRICT refuses it")
	var capture Step
	for _, s := range e.Steps {
		if s.Step == "Capture" {
			capture = s
		}
	}
	assert.Equal(t, Fail, capture.Outcome)
}

func TestExcludedOutboundPort(t *testing.T) {
	w := loadWorld(t)
	f := w.facts(t, w.byLabel("explore", "curl")[0], "httpbin")
	st := *f.Source.Sidecar
	st.ExcludeOutboundPorts = []uint16{8000}
	f.Source.Sidecar = &st
	e := Evaluate(f)
	assert.Equal(t, Allowed, e.Verdict)
	assert.Contains(t, e.Reason, "plaintext without identity")
}

func TestPodDestinationGoesThroughPassthrough(t *testing.T) {
	w := loadWorld(t)
	f := w.facts(t, w.byLabel("explore", "curl")[0], "httpbin-strict")
	hb := w.pods["explore/"+inboundPodName(t, w.dumps["httpbin-strict"])]
	f.Dest = Dest{Pod: hb, IP: netip.MustParseAddr(hb.Status.PodIP), PortNumber: 8080}
	f.Endpoints = []Endpoint{{IP: f.Dest.IP, Port: 8080, Pod: hb, Ready: true}}
	f.Policies = []*model.TLSPolicy{strict("explore")}
	e := Evaluate(f)
	assert.Equal(t, Denied, e.Verdict, "pod IPs are not mesh Services: plaintext, refused by STRICT")
	golden.Check(t, "pod-direct.txt", render(t, e, output.Table))
}

func TestPolicySet(t *testing.T) {
	allow := func(name string, principals ...string) AuthzPolicy {
		var p AuthzPolicy
		p.Metadata = metav1.ObjectMeta{Namespace: "ns", Name: name}
		p.Spec.Rules = make([]struct {
			From []struct {
				Principals    []string `json:"principals,omitempty"`
				NotPrincipals []string `json:"notPrincipals,omitempty"`
				Namespaces    []string `json:"namespaces,omitempty"`
				NotNamespaces []string `json:"notNamespaces,omitempty"`
			} `json:"from,omitempty"`
			To []struct {
				Methods []string `json:"methods,omitempty"`
				Paths   []string `json:"paths,omitempty"`
				Ports   []int32  `json:"ports,omitempty"`
			} `json:"to,omitempty"`
		}, 1)
		p.Spec.Rules[0].From = append(p.Spec.Rules[0].From, struct {
			Principals    []string `json:"principals,omitempty"`
			NotPrincipals []string `json:"notPrincipals,omitempty"`
			Namespaces    []string `json:"namespaces,omitempty"`
			NotNamespaces []string `json:"notNamespaces,omitempty"`
		}{Principals: principals})
		return p
	}
	ps := PolicySet{RootNamespace: RootNamespace, Policies: []AuthzPolicy{allow("only-curl", "cluster.local/ns/ns/sa/curl")}}
	req := AuthzRequest{Namespace: "ns", Labels: labels.Set{"app": "x"}, Port: 80}
	req.Principal = "spiffe://cluster.local/ns/ns/sa/curl"
	assert.True(t, ps.Authorize(req).Allowed, "istio-style principal without spiffe://")
	req.Principal = "spiffe://cluster.local/ns/ns/sa/other"
	d := ps.Authorize(req)
	assert.False(t, d.Allowed)
	assert.Contains(t, d.Reason, "none matches spiffe://cluster.local/ns/ns/sa/other")
	req.Principal = ""
	assert.False(t, ps.Authorize(req).Allowed, "plaintext never matches principals")
	req.Namespace = "elsewhere"
	assert.True(t, ps.Authorize(req).Allowed, "policies apply in their namespace only")

	empty := AuthzPolicy{}
	empty.Metadata = metav1.ObjectMeta{Namespace: "ns", Name: "deny-all"}
	req.Namespace = "ns"
	req.Principal = "spiffe://cluster.local/ns/ns/sa/curl"
	assert.False(t, PolicySet{Policies: []AuthzPolicy{empty}}.Authorize(req).Allowed, "ALLOW without rules denies all")

	assert.True(t, matchPrincipal("*", "spiffe://td/ns/a/sa/b"))
	assert.False(t, matchPrincipal("*", ""))
	assert.True(t, matchPrincipal("*/sa/b", "spiffe://td/ns/a/sa/b"))
	assert.True(t, matchPrincipal("spiffe://td/ns/a/*", "spiffe://td/ns/a/sa/b"))
	assert.True(t, matchPath("/status/*", "/status/418?x=1"))
	assert.False(t, matchPath("/status", "/status/418"))
}

func TestSplitTarget(t *testing.T) {
	for in, want := range map[string][3]string{
		"httpbin:8000":             {"", "httpbin", "8000"},
		"svc/httpbin.explore:http": {"service", "httpbin.explore", "http"},
		"pod/web-1":                {"pod", "web-1", ""},
		"10.96.0.1:443":            {"", "10.96.0.1", "443"},
		"[fd00::1]:80":             {"", "fd00::1", "80"},
		"fd00::1":                  {"", "fd00::1", ""},
	} {
		k, h, p := splitTarget(in)
		assert.Equal(t, want, [3]string{k, h, p}, in)
	}
}
