package fakekube

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"

	"github.com/weftmesh/weft/api/annotation"
	"github.com/weftmesh/weft/injector"
	"github.com/weftmesh/weft/pilot/xds"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"
)

// Names of the fake mesh.
const (
	ControlPlane = "weft-system"
	SidecarImage = "weft.local/sidecar:1.2.0"
	PilotImage   = "weft.local/pilot:1.2.0"
	PilotPod     = "weft-pilot-7d4b9-x2k"
	AppNamespace = "shop"
)

// MeshOptions shape the fake mesh; the zero value (plus Now) is healthy.
type MeshOptions struct {
	Now time.Time
	// RootNotAfter is when the CA root expires (default Now + 10 years).
	RootNotAfter time.Time
	// OldSidecar makes shop/cart-1 run an older sidecar than the
	// injector injects.
	OldSidecar bool
	// MissingRedirect makes weft-cni-node on node-1 report shop/web-1
	// without its traffic redirect rules.
	MissingRedirect bool
}

// Mesh is a healthy two-node cluster with Weft installed (pilot, injector,
// weft-cni-node, weft-proxy, CRDs, webhook, CA) and three meshed pods in
// namespace shop — web-1 and cart-1 (app=web, app=cart) and curl-1 — all
// connected to pilot and SYNCED. The API server answers a dry-run pod
// create in a namespace labelled for injection with the injected pod, as
// the webhook would.
func Mesh(o MeshOptions) *Cluster {
	if o.RootNotAfter.IsZero() {
		o.RootNotAfter = o.Now.AddDate(10, 0, 0)
	}
	root := certPEM(o.Now.AddDate(-1, 0, 0), o.RootNotAfter)
	var objs []runtime.Object
	objs = append(objs,
		Node("node-1", "10.244.0.0/24"), Node("node-2", "10.244.1.0/24"),
		namespace(ControlPlane, map[string]string{annotation.InjectionLabel: "disabled"}),
		namespace(AppNamespace, map[string]string{annotation.InjectionLabel: annotation.InjectionEnabled}),
		namespace("default", nil),
		deployment("weft-pilot", PilotImage, "--trust-domain=cluster.local"),
		deployment("weft-injector", "weft.local/injector:1.2.0", "--sidecar-image="+SidecarImage),
		daemonSet("weft-cni-node"), daemonSet("weft-proxy"),
		controlPod(PilotPod, "weft-pilot", "node-1"),
		controlPod("weft-cni-node-a1", "weft-cni-node", "node-1"),
		controlPod("weft-cni-node-b2", "weft-cni-node", "node-2"),
		&admissionv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "weft-sidecar-injector"},
			Webhooks: []admissionv1.MutatingWebhook{{Name: "sidecar.weft.dev", ClientConfig: admissionv1.WebhookClientConfig{CABundle: root}}}},
		&corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: ControlPlane, Name: "weft-injector"},
			Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "10.244.0.7"}}}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ControlPlane, Name: "weft-ca"},
			Data: map[string][]byte{"ca-cert.pem": root, "root-cert.pem": root}},
		rootCertMap(ControlPlane, root), rootCertMap(AppNamespace, root),
		// Not a trust bundle: check must not compare it.
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: AppNamespace, Name: "kube-root-ca.crt"}, Data: map[string]string{"ca.crt": "x"}},
	)
	cart := SidecarImage
	if o.OldSidecar {
		cart = "weft.local/sidecar:1.1.0"
	}
	web := MeshedPod(AppNamespace, "web-1", "node-1", SidecarImage, map[string]string{"app": "web"})
	objs = append(objs, web,
		MeshedPod(AppNamespace, "cart-1", "node-2", cart, map[string]string{"app": "cart"}),
		MeshedPod(AppNamespace, "curl-1", "node-2", SidecarImage, map[string]string{"app": "curl"}))
	for _, n := range []string{"authorizationpolicies", "meshtlses", "trafficpolicies"} {
		objs = append(objs, CRD(n+".mesh.weft.dev", true))
	}
	missing := 0
	if o.MissingRedirect {
		missing = 1
		objs = append(objs, &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Namespace: AppNamespace, Name: "web-1.redirect"},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: AppNamespace, Name: "web-1", UID: web.UID},
			Reason:         "RedirectRulesMissing", Type: corev1.EventTypeWarning,
			Message: "meshed pod has no WEFT-INBOUND/WEFT-OUTBOUND redirect rules: its traffic bypasses the sidecar",
		})
	}
	// An unrelated warning: check must not take it for a redirect finding.
	objs = append(objs, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: AppNamespace, Name: "curl-1.backoff"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: AppNamespace, Name: "curl-1", UID: "uid-curl-1"},
		Reason:         "BackOff", Type: corev1.EventTypeWarning, Message: "Back-off restarting failed container"})

	c := New(objs...)
	c.HTTP.Set(fmt.Sprintf("%s/%s:15014/debug/syncz", ControlPlane, PilotPod), Syncz(o.Now, AppNamespace, "web-1", "cart-1", "curl-1"))
	c.HTTP.Set(ControlPlane+"/weft-cni-node-a1:9657/metrics", fmt.Appendf(nil,
		"# HELP weft_cni_node_redirect_missing_pods meshed pods without redirect rules\nweft_cni_node_redirect_missing_pods %d\nweft_cni_node_redirect_missing_pods_total 7\n", missing))
	c.HTTP.Set(ControlPlane+"/weft-cni-node-b2:9657/metrics", []byte("weft_cni_node_redirect_missing_pods 0\n"))
	c.Kube.PrependReactor("create", "pods", dryRunInjection(c))
	c.SetAccess(func(authzv1.ResourceAttributes) bool { return true })
	return c
}

// SetAccess answers SelfSubjectAccessReviews with allowed.
func (c *Cluster) SetAccess(allowed func(authzv1.ResourceAttributes) bool) {
	c.Kube.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authzv1.SelfSubjectAccessReview).DeepCopy()
		r.Status.Allowed = r.Spec.ResourceAttributes != nil && allowed(*r.Spec.ResourceAttributes)
		return true, r, nil
	})
}

// dryRunInjection answers dry-run pod creates as the API server does with
// the webhook in place: the pod comes back injected and is not stored.
func dryRunInjection(c *Cluster) k8stesting.ReactionFunc {
	return func(a k8stesting.Action) (bool, runtime.Object, error) {
		ca, ok := a.(k8stesting.CreateActionImpl)
		if !ok || len(ca.CreateOptions.DryRun) == 0 {
			return false, nil, nil
		}
		pod := ca.GetObject().(*corev1.Pod).DeepCopy()
		pod.Namespace = a.GetNamespace()
		ns, err := c.Kube.Tracker().Get(corev1.SchemeGroupVersion.WithResource("namespaces"), "", pod.Namespace)
		if err != nil {
			return true, nil, err
		}
		cfg := injector.DefaultConfig()
		cfg.Image = SidecarImage
		res, err := injector.Mutate(pod, ns.(*corev1.Namespace), cfg)
		if err != nil {
			return true, nil, err
		}
		return true, res.Pod, nil
	}
}

// MeshedPod is a running pod as the injector admits it, its sidecar
// started.
func MeshedPod(ns, name, node, image string, labels map[string]string) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels, UID: types.UID("uid-" + name)},
		Spec: corev1.PodSpec{NodeName: node, ServiceAccountName: "default",
			Containers: []corev1.Container{{Name: "app", Image: "weft.local/httpbin:dev",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
	}
	cfg := injector.DefaultConfig()
	cfg.Image = image
	res, err := injector.Mutate(pod, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
		Labels: map[string]string{annotation.InjectionLabel: annotation.InjectionEnabled}}}, cfg)
	if err != nil || res.Status == nil {
		panic(fmt.Sprintf("inject %s/%s: %v", ns, name, err))
	}
	p := res.Pod
	started := true
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.0.10",
		InitContainerStatuses: []corev1.ContainerStatus{{Name: "weft-sidecar", Started: &started, Ready: true}},
		Conditions:            []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	return p
}

// PlainPod is a running pod without a sidecar.
func PlainPod(ns, name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels, UID: types.UID("uid-" + name)},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "weft.local/curl:dev"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

// Syncz is pilot's /debug/syncz with the pods of ns connected and SYNCED.
func Syncz(now time.Time, ns string, pods ...string) []byte {
	var out []xds.ProxyStatus
	for _, p := range pods {
		ps := xds.ProxyStatus{NodeID: p + "." + ns, Namespace: ns, Pod: p, Identity: "spiffe://cluster.local/ns/" + ns + "/sa/default",
			Delta: true, ConnectedAt: now.Add(-time.Hour)}
		for _, t := range []string{"CDS", "LDS", "EDS", "RDS"} {
			ps.Types = append(ps.Types, xds.TypeStatus{Type: t, State: xds.Synced, Version: "v7", Sent: "v7", Acked: "v7", Resources: 4})
		}
		out = append(out, ps)
	}
	b, err := json.Marshal(out)
	if err != nil {
		panic(err)
	}
	return b
}

// CRD is a CustomResourceDefinition, Established or not.
func CRD(name string, established bool) *unstructured.Unstructured {
	status := "False"
	if established {
		status = "True"
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": name},
		"status":   map[string]any{"conditions": []any{map[string]any{"type": "Established", "status": status}}},
	}}
	return u
}

// Node is a Ready node with a pod CIDR.
func Node(name, cidr string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDR: cidr},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
}

func namespace(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func selector(name string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": name}}
}

func deployment(name, image string, args ...string) *appsv1.Deployment {
	one := int32(1)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ControlPlane, Name: name, Generation: 1,
			Labels: map[string]string{"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "weft"}},
		Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: selector(name), Template: corev1.PodTemplateSpec{
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: image, Args: args}}}}},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1},
	}
}

func daemonSet(name string) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ControlPlane, Name: name, Generation: 1,
			Labels: map[string]string{"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "weft"}},
		Spec: appsv1.DaemonSetSpec{Selector: selector(name), Template: corev1.PodTemplateSpec{
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "weft.local/" + name[len("weft-"):] + ":1.2.0"}}}}},
		Status: appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: 2, CurrentNumberScheduled: 2,
			UpdatedNumberScheduled: 2, NumberReady: 2, NumberAvailable: 2},
	}
}

func controlPod(name, app, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ControlPlane, Name: name, UID: types.UID("uid-" + name),
			Labels: map[string]string{"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "weft"}},
		Spec:   corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
}

func rootCertMap(ns string, root []byte) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "weft-root-cert"},
		Data: map[string]string{"root-cert.pem": string(root)}}
}

// certPEM is a self-signed CA certificate with a fixed subject and serial,
// so outputs that show them are stable.
func certPEM(notBefore, notAfter time.Time) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0x1f2e3d), Subject: pkix.Name{Organization: []string{"cluster.local"}, CommonName: "weft root"},
		NotBefore: notBefore, NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
