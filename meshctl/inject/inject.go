// Package inject is meshctl inject: manual sidecar injection of a YAML
// stream for GitOps pipelines. Each pod and pod template (Deployment,
// StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob,
// List items) goes through injector.Mutate, the webhook's own pure
// function, so a manually injected pod is byte-for-byte what the webhook
// would admit. Every other object and field passes through unchanged.
package inject

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/weftmesh/weft/api/annotation"
	"github.com/weftmesh/weft/injector"
	"github.com/weftmesh/weft/install"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// ConfigFromValues is the injector configuration an install with v runs
// (install/helm/weft/templates/injector.yaml passes the same flags).
func ConfigFromValues(v install.Values) injector.Config {
	cfg := injector.DefaultConfig()
	cfg.Image = v.Image("sidecar")
	cfg.ImagePullPolicy = corev1.PullPolicy(v.PullPolicy)
	cfg.TrustDomain = v.TrustDomain
	return cfg
}

// Outcome is what happened to one pod or pod template.
type Outcome struct {
	// Object is "Kind namespace/name" of the object holding the pod.
	Object   string
	Injected bool
	// Reason is the injection decision (injector.Decide's detail).
	Reason string
}

// Stream injects every pod of a YAML or JSON stream and returns the
// objects with what happened to each pod. Manual injection means the
// namespace is taken as opted in (weft-injection=enabled): pod labels still
// opt out (sidecar.weft.dev/inject=false) or pick another revision, and
// host-network or already injected pods are left alone, exactly as the
// webhook decides.
func Stream(data []byte, cfg injector.Config) ([]*unstructured.Unstructured, []Outcome, error) {
	objs, err := install.Decode(data)
	if err != nil {
		return nil, nil, err
	}
	var outcomes []Outcome
	for _, obj := range objs {
		oc, err := injectObject(obj, cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", describe(obj), err)
		}
		outcomes = append(outcomes, oc...)
	}
	return objs, outcomes, nil
}

// YAML encodes objects as a multi-document YAML stream.
func YAML(objs []*unstructured.Unstructured) ([]byte, error) {
	var out bytes.Buffer
	for i, obj := range objs {
		b, err := yaml.Marshal(obj.Object)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", describe(obj), err)
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(b)
	}
	return out.Bytes(), nil
}

// JSON encodes objects as one object, or as a v1 List when there are
// several.
func JSON(objs []*unstructured.Unstructured) ([]byte, error) {
	var v any = map[string]any{"apiVersion": "v1", "kind": "List", "items": objs}
	if len(objs) == 1 {
		v = objs[0].Object
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode json: %w", err)
	}
	return append(b, '\n'), nil
}

// templatePaths are where each kind keeps its pod template.
var templatePaths = map[string][]string{
	"Deployment":            {"spec", "template"},
	"StatefulSet":           {"spec", "template"},
	"DaemonSet":             {"spec", "template"},
	"ReplicaSet":            {"spec", "template"},
	"ReplicationController": {"spec", "template"},
	"Job":                   {"spec", "template"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template"},
}

func injectObject(obj *unstructured.Unstructured, cfg injector.Config) ([]Outcome, error) {
	kind := obj.GetKind()
	if kind == "List" || strings.HasSuffix(kind, "List") && obj.Object["items"] != nil {
		return injectList(obj, cfg)
	}
	if kind == "Pod" {
		var pod corev1.Pod
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &pod); err != nil {
			return nil, fmt.Errorf("decode pod: %w", err)
		}
		res, err := mutate(&pod, obj.GetNamespace(), cfg)
		if err != nil {
			return nil, err
		}
		oc := []Outcome{{Object: describe(obj), Injected: res.Status != nil, Reason: res.Decision.Detail}}
		if res.Status == nil {
			return oc, nil // untouched: not even re-encoded
		}
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(res.Pod)
		if err != nil {
			return nil, fmt.Errorf("encode pod: %w", err)
		}
		clean(m)
		delete(m, "status")
		obj.Object = m
		return oc, nil
	}
	path, ok := templatePaths[kind]
	if !ok {
		return nil, nil
	}
	raw, found, err := unstructured.NestedMap(obj.Object, path...)
	if err != nil || !found {
		return nil, err
	}
	var tmpl corev1.PodTemplateSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &tmpl); err != nil {
		return nil, fmt.Errorf("decode pod template: %w", err)
	}
	pod := &corev1.Pod{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec}
	res, err := mutate(pod, obj.GetNamespace(), cfg)
	if err != nil {
		return nil, err
	}
	oc := []Outcome{{Object: describe(obj), Injected: res.Status != nil, Reason: res.Decision.Detail}}
	if res.Status == nil {
		return oc, nil
	}
	// The namespace was only lent to the webhook's function: a template
	// keeps the metadata it had.
	ns := tmpl.Namespace
	tmpl.ObjectMeta, tmpl.Spec = res.Pod.ObjectMeta, res.Pod.Spec
	tmpl.Namespace = ns
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&tmpl)
	if err != nil {
		return nil, fmt.Errorf("encode pod template: %w", err)
	}
	clean(m)
	if err := unstructured.SetNestedMap(obj.Object, m, path...); err != nil {
		return nil, err
	}
	return oc, nil
}

func injectList(list *unstructured.Unstructured, cfg injector.Config) ([]Outcome, error) {
	items, _, err := unstructured.NestedSlice(list.Object, "items")
	if err != nil {
		return nil, err
	}
	var outcomes []Outcome
	for i, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			continue
		}
		item := &unstructured.Unstructured{Object: m}
		oc, err := injectObject(item, cfg)
		if err != nil {
			return nil, fmt.Errorf("item %d (%s): %w", i, describe(item), err)
		}
		items[i] = item.Object
		outcomes = append(outcomes, oc...)
	}
	return outcomes, unstructured.SetNestedSlice(list.Object, items, "items")
}

// mutate runs the webhook's Mutate with the namespace opted in.
func mutate(pod *corev1.Pod, namespace string, cfg injector.Config) (injector.Result, error) {
	if pod.Namespace == "" {
		pod.Namespace = namespace
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace,
		Labels: map[string]string{annotation.InjectionLabel: annotation.InjectionEnabled}}}
	return injector.Mutate(pod, ns, cfg)
}

// clean drops the zero values the typed round trip adds
// (creationTimestamp: null, empty resources), so untouched fields look
// as they did.
func clean(m map[string]any) {
	if md, ok := m["metadata"].(map[string]any); ok {
		if md["creationTimestamp"] == nil {
			delete(md, "creationTimestamp")
		}
		if len(md) == 0 {
			delete(m, "metadata")
		}
	}
	spec, _ := m["spec"].(map[string]any)
	for _, key := range []string{"containers", "initContainers"} {
		cs, _ := spec[key].([]any)
		for _, c := range cs {
			cm, _ := c.(map[string]any)
			if r, ok := cm["resources"].(map[string]any); ok && len(r) == 0 {
				delete(cm, "resources")
			}
		}
	}
}

func describe(obj *unstructured.Unstructured) string {
	name := obj.GetName()
	if name == "" {
		name = obj.GetGenerateName() + "*"
	}
	if ns := obj.GetNamespace(); ns != "" {
		name = ns + "/" + name
	}
	return obj.GetKind() + " " + name
}
