// Package lifecycle installs, upgrades and uninstalls Weft: it renders the
// embedded manifests (package install) into a Plan, applies it with
// server-side apply in dependency order, waits with a progress display
// until every component is ready and, when one is not, says why from its
// pods and events. Uninstall first runs each node's cleanup (iptables
// rules, CNI config) through a short-lived DaemonSet, then deletes what the
// manifests created and what Weft created at runtime.
package lifecycle

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/weftmesh/weft/install"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// FieldManager owns the fields meshctl applies (server-side apply).
const FieldManager = install.FieldManager

// installers are the field managers of Weft's own installers; shared
// objects (the Gateway API CRDs) are removed only when nobody else
// manages them. "weft-local-cluster" is what the local cluster applied
// with before it used FieldManager too.
var installers = []string{FieldManager, "weft-local-cluster"}

// Namespace is the control plane's namespace (DESIGN.md).
const Namespace = "weft-system"

// Plan is a rendered installation: CRDs, which must be established before
// anything uses them, then every other object in render order.
type Plan struct {
	Values  install.Values
	CRDs    []*unstructured.Unstructured
	Objects []*unstructured.Unstructured
}

// NewPlan renders the manifests for v.
func NewPlan(v install.Values) (Plan, error) {
	stream, err := install.Render(v)
	if err != nil {
		return Plan{}, fmt.Errorf("render manifests: %w", err)
	}
	objs, err := install.Decode(stream)
	if err != nil {
		return Plan{}, fmt.Errorf("decode manifests: %w", err)
	}
	p := Plan{Values: v}
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			p.CRDs = append(p.CRDs, o)
		} else {
			p.Objects = append(p.Objects, o)
		}
	}
	return p, nil
}

// All is every object of the plan in apply order.
func (p Plan) All() []*unstructured.Unstructured { return append(slices.Clone(p.CRDs), p.Objects...) }

// Workload names a Deployment or DaemonSet of the plan.
type Workload struct {
	Kind, Namespace, Name string
}

func (w Workload) String() string { return w.Kind + " " + w.Namespace + "/" + w.Name }

// Workloads are the plan's Deployments and DaemonSets, whose readiness
// means the component is up.
func (p Plan) Workloads() []Workload {
	var out []Workload
	for _, o := range p.Objects {
		switch o.GetKind() {
		case "Deployment", "DaemonSet":
			out = append(out, Workload{Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName()})
		}
	}
	return out
}

// Find returns the plan's object of a kind and name.
func (p Plan) Find(kind, name string) (*unstructured.Unstructured, bool) {
	for _, o := range p.All() {
		if o.GetKind() == kind && o.GetName() == name {
			return o, true
		}
	}
	return nil, false
}

// ReadValues builds install values from an optional values file (data may
// be nil) and --set overrides "key.sub=value". Keys are the YAML names of
// install.Values; a value is parsed as the type of the field it sets, so
// "components.mesh=false" is a bool and "tag=1.0" stays a string.
func ReadValues(data []byte, sets []string) (install.Values, error) {
	v, err := install.ReadValues(data)
	if err != nil {
		return install.Values{}, err
	}
	if len(sets) == 0 {
		return v, nil
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		return install.Values{}, fmt.Errorf("encode values: %w", err)
	}
	var tree map[string]any
	if err := yaml.Unmarshal(b, &tree); err != nil {
		return install.Values{}, fmt.Errorf("decode values: %w", err)
	}
	for _, s := range sets {
		if err := setValue(tree, s); err != nil {
			return install.Values{}, err
		}
	}
	b, err = yaml.Marshal(tree)
	if err != nil {
		return install.Values{}, fmt.Errorf("encode values: %w", err)
	}
	return install.ReadValues(b)
}

func setValue(tree map[string]any, s string) error {
	key, val, ok := strings.Cut(s, "=")
	if !ok || key == "" {
		return fmt.Errorf("--set %q: want key=value", s)
	}
	path := strings.Split(key, ".")
	m := tree
	for _, p := range path[:len(path)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			return fmt.Errorf("--set %s: unknown value %q (see install/helm/weft/values.yaml)", key, p)
		}
		m = next
	}
	last := path[len(path)-1]
	cur, known := m[last]
	switch cur.(type) {
	case bool:
		b, err := strconv.ParseBool(val)
		if err != nil {
			return fmt.Errorf("--set %s: %q is not true or false", key, val)
		}
		m[last] = b
	case float64: // numbers decode from JSON as float64 (replicas)
		n, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return fmt.Errorf("--set %s: %q is not a number", key, val)
		}
		m[last] = n
	case map[string]any:
		return fmt.Errorf("--set %s: is a group of values; set one of its fields", key)
	default:
		if !known && !optionalKeys[key] {
			return fmt.Errorf("--set %s: unknown value %q (see install/helm/weft/values.yaml)", key, last)
		}
		m[last] = val
	}
	return nil
}

// optionalKeys are string values left out of the YAML when empty.
var optionalKeys = map[string]bool{"apiServerHost": true, "apiServerPort": true}

// ParseComponents reads --components: "all" or a comma-separated subset of
// cni, proxy, dns, mesh.
func ParseComponents(s string) (install.Components, error) {
	var c install.Components
	for _, f := range strings.Split(s, ",") {
		switch strings.TrimSpace(strings.ToLower(f)) {
		case "all":
			c = install.Components{CNI: true, Proxy: true, DNS: true, Mesh: true}
		case "cni":
			c.CNI = true
		case "proxy":
			c.Proxy = true
		case "dns":
			c.DNS = true
		case "mesh":
			c.Mesh = true
		case "":
		default:
			return c, fmt.Errorf("--components: unknown component %q (want cni, proxy, dns, mesh or all)", f)
		}
	}
	if c == (install.Components{}) {
		return c, fmt.Errorf("--components: no component given")
	}
	return c, nil
}

// ComponentNames lists the enabled components, for messages.
func ComponentNames(c install.Components) string {
	var out []string
	for _, x := range []struct {
		on   bool
		name string
	}{{c.CNI, "cni"}, {c.Proxy, "proxy"}, {c.DNS, "dns"}, {c.Mesh, "mesh"}} {
		if x.on {
			out = append(out, x.name)
		}
	}
	return strings.Join(out, ",")
}
