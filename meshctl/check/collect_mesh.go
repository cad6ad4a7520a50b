package check

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/weftmesh/weft/api/annotation"
	"github.com/weftmesh/weft/meshctl/envoy"
	"github.com/weftmesh/weft/meshctl/kube"
	"github.com/weftmesh/weft/meshctl/lifecycle"
	"github.com/weftmesh/weft/meshctl/proxystatus"
	"github.com/weftmesh/weft/pilot/ca"
	"github.com/weftmesh/weft/pilot/xds"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/rand"
)

// InjectorService fronts the webhook (install/helm/weft/templates/injector.yaml).
const InjectorService = "weft-injector"

func webhook(ctx context.Context, c *kube.Client) Webhook {
	var w Webhook
	mwc, err := c.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, lifecycle.WebhookName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return w
	case err != nil:
		w.Err = errText(err)
		return w
	}
	w.Found = true
	for _, wh := range mwc.Webhooks {
		if len(wh.ClientConfig.CABundle) == 0 {
			w.MissingCABundle = append(w.MissingCABundle, wh.Name)
		}
	}
	if ep, err := c.Kube.CoreV1().Endpoints(Namespace).Get(ctx, InjectorService, metav1.GetOptions{}); err == nil {
		for _, s := range ep.Subsets {
			w.Endpoints += len(s.Addresses)
		}
	}
	w.DryRun = dryRunInjection(ctx, c)
	return w
}

// dryRunInjection creates a throw-away namespace labelled for injection
// and asks the API server to create (dry run: nothing is stored) a pod in
// it. The answer comes back mutated only if the API server reached the
// webhook and the webhook injected: the round trip every meshed pod makes.
func dryRunInjection(ctx context.Context, c *kube.Client) DryRun {
	name := "weft-check-" + rand.String(5)
	nss := c.Kube.CoreV1().Namespaces()
	_, err := nss.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		annotation.InjectionLabel: annotation.InjectionEnabled, "app.kubernetes.io/managed-by": "meshctl"}}}, metav1.CreateOptions{})
	if apierrors.IsForbidden(err) {
		return DryRun{Skipped: "no permission to create a test namespace: " + errText(err)}
	}
	if err != nil {
		return DryRun{Err: "create test namespace: " + errText(err)}
	}
	defer func() {
		// The namespace is empty; deleting it in the background is enough.
		_ = nss.Delete(context.WithoutCancel(ctx), name, metav1.DeleteOptions{})
	}()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "meshctl-check", Labels: map[string]string{"app": "meshctl-check"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "weft.local/pause:dev"}}},
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := c.Kube.CoreV1().Pods(name).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil && time.Now().Before(deadline) && strings.Contains(err.Error(), "service account") {
			// The namespace's default ServiceAccount appears a moment
			// after the namespace.
			select {
			case <-ctx.Done():
				return DryRun{Ran: true, Err: ctx.Err().Error()}
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return DryRun{Ran: true, Err: errText(err)}
		}
		for _, ic := range out.Spec.InitContainers {
			if ic.Name == "weft-sidecar" {
				return DryRun{Ran: true, Injected: true}
			}
		}
		return DryRun{Ran: true}
	}
}

// authority reads the CA from the plugged cacerts Secret or weft-ca;
// without permission on Secrets it falls back to the public trust bundle.
func authority(ctx context.Context, c *kube.Client) CA {
	var out CA
	secrets := c.Kube.CoreV1().Secrets(Namespace)
	var data map[string][]byte
	for _, name := range []string{lifecycle.PluggedCASecret, lifecycle.CASecret} {
		s, err := secrets.Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			out.Source, data = "secret "+Namespace+"/"+name, s.Data
			break
		}
		if !apierrors.IsNotFound(err) {
			break
		}
	}
	if data == nil {
		cm, err := c.Kube.CoreV1().ConfigMaps(Namespace).Get(ctx, lifecycle.RootCertMap, metav1.GetOptions{})
		if err != nil {
			out.Err = "neither the CA Secret nor the trust bundle could be read: " + errText(err)
			return out
		}
		out.Source = "configmap " + Namespace + "/" + lifecycle.RootCertMap
		data = map[string][]byte{ca.KeyRootCert: []byte(cm.Data[lifecycle.RootCertMapKey])}
	}
	if signer, err := ca.ParseCerts(data[ca.KeyCACert]); err == nil && len(signer) > 0 {
		s := cert(signer[0])
		out.Signer = &s
	}
	roots, err := ca.ParseCerts(data[ca.KeyRootCert])
	if err != nil {
		out.Err = fmt.Sprintf("%s: %s: %v", out.Source, ca.KeyRootCert, err)
		return out
	}
	for _, r := range roots {
		out.Roots = append(out.Roots, cert(r))
	}
	out.Stale, out.Published = stalePublished(ctx, c, roots)
	return out
}

func cert(c *x509.Certificate) Cert {
	return Cert{Subject: c.Subject.String(), Serial: envoy.Serial(c), NotAfter: c.NotAfter.UTC()}
}

// stalePublished compares every weft-root-cert ConfigMap with the roots.
func stalePublished(ctx context.Context, c *kube.Client, roots []*x509.Certificate) ([]string, int) {
	cms, err := c.Kube.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", lifecycle.RootCertMap).String()})
	if err != nil {
		return nil, 0
	}
	var stale []string
	published := 0
	for _, cm := range cms.Items {
		if cm.Name != lifecycle.RootCertMap {
			continue // a server (or fake) that ignores the field selector
		}
		published++
		got, err := ca.ParseCerts([]byte(cm.Data[lifecycle.RootCertMapKey]))
		if err != nil || !sameCerts(got, roots) {
			stale = append(stale, cm.Namespace)
		}
	}
	sort.Strings(stale)
	return stale, published
}

func sameCerts(a, b []*x509.Certificate) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		found := false
		for _, y := range b {
			if bytes.Equal(x.Raw, y.Raw) {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// dataPlane reads the meshed pods and pilot's sync status.
func dataPlane(ctx context.Context, c *kube.Client, now time.Time) (Sidecars, Proxies) {
	var s Sidecars
	var p Proxies
	if d, err := c.Kube.AppsV1().Deployments(Namespace).Get(ctx, "weft-injector", metav1.GetOptions{}); err == nil && len(d.Spec.Template.Spec.Containers) > 0 {
		for _, a := range d.Spec.Template.Spec.Containers[0].Args {
			if v, ok := strings.CutPrefix(a, "--sidecar-image="); ok {
				s.Expected = v
			}
		}
	}
	if d, err := c.Kube.AppsV1().Deployments(Namespace).Get(ctx, "weft-pilot", metav1.GetOptions{}); err == nil {
		s.PilotImage = firstImage(d.Spec.Template.Spec)
	}
	snap, err := proxystatus.Collect(ctx, c, "")
	if err != nil {
		p.Err = errText(err)
		pods, lerr := c.Kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if lerr != nil {
			s.Err = errText(lerr)
			return s, p
		}
		for _, pod := range pods.Items {
			if _, ok := pod.Annotations[annotation.StatusAnnotation]; ok {
				snap.Pods = append(snap.Pods, pod)
			}
		}
	}
	for _, pod := range snap.Pods {
		if pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodRunning {
			continue
		}
		st, err := annotation.ParseStatus(pod.Annotations[annotation.StatusAnnotation])
		if err != nil {
			continue
		}
		s.Pods = append(s.Pods, SidecarPod{Namespace: pod.Namespace, Name: pod.Name, Image: st.Image})
	}
	if p.Err != "" {
		return s, p
	}
	rep := proxystatus.Build(snap, proxystatus.Options{Now: now})
	p.Connected = map[string]ProxyState{}
	for _, r := range rep.Proxies {
		p.Running = append(p.Running, r.Name)
		if r.Connected {
			p.Connected[r.Name] = worst(snap, r.Name, now)
		}
	}
	return s, p
}

// worst is the proxy's worst type state.
func worst(s proxystatus.Snapshot, id string, now time.Time) ProxyState {
	out := ProxyState{State: string(xds.Synced)}
	for _, pilot := range s.Pilots {
		for _, ps := range pilot.Proxies {
			if ps.NodeID != id {
				continue
			}
			for _, t := range ps.Types {
				switch t.State {
				case xds.NACKed:
					return ProxyState{State: string(xds.NACKed), Error: t.Type + ": " + t.Error}
				case xds.Stale:
					since := t.LastPush
					if since.IsZero() {
						since = ps.ConnectedAt
					}
					if d := now.Sub(since); d > out.StaleFor {
						out = ProxyState{State: string(xds.Stale), StaleFor: d}
					}
				}
			}
		}
	}
	return out
}
