// Package install renders Weft's Kubernetes manifests from one set of values
// and applies them with server-side apply. The local cluster, `meshctl
// install` and the e2e suite all install Weft through it. The manifests
// come from the Helm chart in helm/weft (embedded), rendered with Helm's
// own engine, so `helm install` and `meshctl install` produce the same
// objects from the same values.
package install

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"sigs.k8s.io/yaml"
)

// Namespace is the control plane's namespace (DESIGN.md); the chart puts
// its objects there whatever the Helm release's namespace.
const Namespace = "weft-system"

// ReleaseName is the Helm release name Render renders as.
const ReleaseName = "weft"

//go:embed all:helm/weft
var chartFS embed.FS

// chartRoot is the chart's directory inside chartFS.
const chartRoot = "helm/weft"

// LoadChart loads the embedded chart, as `helm install` would load
// install/helm/weft.
func LoadChart() (*chart.Chart, error) {
	var files []*loader.BufferedFile
	err := fs.WalkDir(chartFS, chartRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := chartFS.ReadFile(p)
		if err != nil {
			return err
		}
		files = append(files, &loader.BufferedFile{Name: strings.TrimPrefix(p, chartRoot+"/"), Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read chart: %w", err)
	}
	ch, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("load chart: %w", err)
	}
	return ch, nil
}

// Render returns the manifests as one multi-document YAML stream: the
// chart rendered with v, plus the chart's CRDs (crds/: Weft's own and the
// pinned Gateway API CRDs) when the mesh is installed. Values are checked
// against the chart's values.schema.json first. Objects come in apply
// order (see kindOrder), each document headed by "# Source: <template>".
// Helm hooks (annotation helm.sh/hook) are left out: they are Helm's to
// run at their event, and applied as ordinary objects (by meshctl, the
// local cluster or `kubectl apply` of install/manifests) the uninstall
// hook would clean the nodes right after installing; see RenderHooks.
func Render(v Values) ([]byte, error) {
	docs, err := renderChart(v)
	if err != nil {
		return nil, err
	}
	return join(slices.DeleteFunc(docs, func(d document) bool { return d.hook != "" })), nil
}

// RenderHooks returns only the chart's Helm hooks for v, in the order Helm
// creates them (hook weight, then kind order), for tests and for tools
// that run the hooks' programs themselves.
func RenderHooks(v Values) ([]byte, error) {
	docs, err := renderChart(v)
	if err != nil {
		return nil, err
	}
	hooks := slices.DeleteFunc(docs, func(d document) bool { return d.hook == "" })
	slices.SortStableFunc(hooks, func(a, b document) int { return a.hookWeight - b.hookWeight })
	return join(hooks), nil
}

func renderChart(v Values) ([]document, error) {
	ch, err := LoadChart()
	if err != nil {
		return nil, err
	}
	vals, err := v.chartValues()
	if err != nil {
		return nil, err
	}
	return renderValues(ch, vals)
}

// join writes docs as one stream, each headed by its source.
func join(docs []document) []byte {
	var out bytes.Buffer
	for _, d := range docs {
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", d.source, d.text)
	}
	return out.Bytes()
}

// renderValues renders ch with values as `helm template` would with a
// values file (over the chart's values.yaml), hooks included, in apply
// order.
func renderValues(ch *chart.Chart, vals map[string]any) ([]document, error) {
	top, err := chartutil.ToRenderValues(ch, vals,
		chartutil.ReleaseOptions{Name: ReleaseName, Namespace: Namespace, IsInstall: true}, nil)
	if err != nil {
		return nil, fmt.Errorf("chart values: %w", explainSchemaError(ch, err))
	}
	rendered, err := engine.Engine{Strict: true}.Render(ch, top)
	if err != nil {
		return nil, fmt.Errorf("render chart: %w", err)
	}
	var docs []document
	for name, text := range rendered {
		if path.Ext(name) != ".yaml" {
			continue
		}
		d, err := split(name, text)
		if err != nil {
			return nil, err
		}
		docs = append(docs, d...)
	}
	// crds/ is not templated: Helm installs it as is. Render ships the CRDs
	// with the mesh, whose components use them.
	if mesh, err := top["Values"].(chartutil.Values).PathValue("components.mesh"); err == nil && mesh == true {
		for _, crd := range ch.CRDObjects() {
			d, err := split(path.Join(ch.Name(), crd.Name), string(crd.File.Data))
			if err != nil {
				return nil, err
			}
			docs = append(docs, d...)
		}
	}
	slices.SortStableFunc(docs, compareDocuments)
	return docs, nil
}

// chartValues are v as the chart's values: through JSON, so the keys are
// the JSON names, with numbers kept as json.Number as Helm reads them.
func (v Values) chartValues() (map[string]any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode values: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode values: %w", err)
	}
	return m, nil
}

// document is one object of the rendered stream.
type document struct {
	source string // template path, e.g. weft/templates/pilot.yaml
	index  int    // position in its template
	kind   string
	text   string
	// hook is the helm.sh/hook annotation ("" for an ordinary object) and
	// hookWeight its helm.sh/hook-weight.
	hook       string
	hookWeight int
}

// Helm's hook annotations (helm.sh/helm/v3/pkg/release: HookAnnotation,
// HookWeightAnnotation).
const (
	hookAnnotation       = "helm.sh/hook"
	hookWeightAnnotation = "helm.sh/hook-weight"
)

// docSeparator splits a YAML stream as Helm's releaseutil.SplitManifests does.
var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// split cuts a rendered template into its objects, dropping documents that
// hold nothing (a disabled component, comments only).
func split(source, text string) ([]document, error) {
	var out []document
	for i, part := range docSeparator.Split(text, -1) {
		part = strings.TrimSpace(part)
		var head struct {
			Kind       string `json:"kind"`
			APIVersion string `json:"apiVersion"`
			Metadata   struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
		}
		var probe any
		if err := yaml.Unmarshal([]byte(part), &probe); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, i+1, err)
		}
		if probe == nil {
			continue
		}
		if err := yaml.Unmarshal([]byte(part), &head); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, i+1, err)
		}
		if head.Kind == "" || head.APIVersion == "" {
			return nil, fmt.Errorf("%s: document %d has no kind/apiVersion", source, i+1)
		}
		d := document{source: source, index: i, kind: head.Kind, text: part, hook: head.Metadata.Annotations[hookAnnotation]}
		if w, ok := head.Metadata.Annotations[hookWeightAnnotation]; ok {
			n, err := strconv.Atoi(strings.TrimSpace(w))
			if err != nil {
				return nil, fmt.Errorf("%s: document %d: %s %q: %w", source, i+1, hookWeightAnnotation, w, err)
			}
			d.hookWeight = n
		}
		out = append(out, d)
	}
	return out, nil
}

// kindOrder is the apply order: what others depend on first (namespaces,
// CRDs, identities and their permissions, configuration, Services), then
// workloads, and webhooks last so none points at a Service with no
// endpoints yet. Applier.Delete walks it backwards. Kinds not listed go
// just before the webhooks.
var kindOrder = []string{
	"Namespace", "CustomResourceDefinition",
	"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
	"ConfigMap", "Secret", "Service",
	"DaemonSet", "Deployment", "PodDisruptionBudget",
	"", // anything else
	"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
}

func kindRank(kind string) int {
	if i := slices.Index(kindOrder, kind); i >= 0 {
		return i
	}
	return slices.Index(kindOrder, "")
}

// compareDocuments orders by kind, then template path, then position in
// the template: stable whatever order the engine returns templates in.
func compareDocuments(a, b document) int {
	if c := kindRank(a.kind) - kindRank(b.kind); c != 0 {
		return c
	}
	if c := strings.Compare(a.source, b.source); c != 0 {
		return c
	}
	return a.index - b.index
}

// DefaultManifestPath is where `make manifests` writes DefaultManifest,
// relative to the repository root.
const DefaultManifestPath = "install/manifests/weft.yaml"

// DefaultManifest is the chart rendered with Defaults() under a
// do-not-edit note: the checked-in install/manifests/weft.yaml, for users
// who install with `kubectl apply --server-side -f`.
func DefaultManifest() ([]byte, error) {
	stream, err := Render(Defaults())
	if err != nil {
		return nil, err
	}
	const header = "# Weft with the default values of install/helm/weft, rendered by `make manifests`.\n" +
		"# Do not edit: change the chart and run `make manifests`.\n"
	return append([]byte(header), stream...), nil
}
