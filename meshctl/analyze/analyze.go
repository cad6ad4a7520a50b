// Package analyze is meshctl analyze: analyzers over a snapshot of the
// cluster's mesh configuration, each finding with a stable code
// (WEFT-A0001…, documented in meshctl/README.md), a level and a fix.
// Analyze is pure; Collect reads the snapshot.
package analyze

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/weftmesh/weft/api/v1alpha1"
	"github.com/weftmesh/weft/meshctl/explain"
	corev1 "k8s.io/api/core/v1"
)

// Level is a finding's severity. Errors and warnings make meshctl analyze
// exit 1.
type Level string

// Levels.
const (
	Error   Level = "Error"
	Warning Level = "Warning"
	Info    Level = "Info"
)

// Codes of the analyzers. They never change meaning; retired codes are
// not reused.
const (
	CodeMixedInjection       = "WEFT-A0001"
	CodeRouteToMissing       = "WEFT-A0002"
	CodeMeshTLSSelectsNone   = "WEFT-A0003"
	CodeAuthzSelectsNone     = "WEFT-A0004"
	CodePortWithoutProtocol  = "WEFT-A0005"
	CodeStrictUnmeshed       = "WEFT-A0006"
	CodePolicyNotAccepted    = "WEFT-A0007"
	CodeTargetPortUnresolved = "WEFT-A0008"
)

// Finding is one problem.
type Finding struct {
	Code    string `json:"code"`
	Level   Level  `json:"level"`
	Object  string `json:"object"`
	Message string `json:"message"`
	Fix     string `json:"fix"`
}

// Route is a Gateway API route (HTTPRoute, GRPCRoute) reduced to its
// references.
type Route struct {
	Kind, Namespace, Name string
	Parents, Backends     []Ref
}

// Ref is a parentRef or backendRef.
type Ref struct {
	Group     string `json:"group,omitempty"`
	Kind      string `json:"kind,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// Snapshot is what the analyzers read.
type Snapshot struct {
	Namespaces []corev1.Namespace
	Pods       []corev1.Pod
	Services   []corev1.Service
	MeshTLS    []v1alpha1.MeshTLS
	Telemetry  []v1alpha1.Telemetry
	Authz      []explain.AuthzPolicy
	Routes     []Route
	// RootNamespace holds mesh-wide policies (weft-system).
	RootNamespace string
}

// Report is the output of meshctl analyze.
type Report struct {
	// Scope is the namespace analysed, or "all namespaces".
	Scope    string    `json:"scope"`
	Findings []Finding `json:"findings"`
}

// Analyze runs every analyzer and keeps findings in namespace (all when
// empty), sorted by level, code and object.
func Analyze(s Snapshot, namespace string) Report {
	var all []Finding
	for _, a := range []func(Snapshot) []Finding{
		mixedInjection, routesToMissing, meshTLSSelectsNone, authzSelectsNone,
		portsWithoutProtocol, strictWithUnmeshed, policiesNotAccepted, targetPortsUnresolved,
	} {
		all = append(all, a(s)...)
	}
	rep := Report{Scope: "all namespaces", Findings: []Finding{}}
	if namespace != "" {
		rep.Scope = "namespace " + namespace
	}
	for _, f := range all {
		if namespace == "" || objectNamespace(f.Object) == namespace {
			rep.Findings = append(rep.Findings, f)
		}
	}
	rank := map[Level]int{Error: 0, Warning: 1, Info: 2}
	sort.SliceStable(rep.Findings, func(i, j int) bool {
		a, b := rep.Findings[i], rep.Findings[j]
		if rank[a.Level] != rank[b.Level] {
			return rank[a.Level] < rank[b.Level]
		}
		if a.Code != b.Code {
			return a.Code < b.Code
		}
		return a.Object < b.Object
	})
	return rep
}

// objectNamespace reads the namespace of "Kind ns/name" or "Namespace ns".
func objectNamespace(obj string) string {
	kind, ref, _ := strings.Cut(obj, " ")
	if kind == "Namespace" {
		return ref
	}
	ns, _, _ := strings.Cut(ref, "/")
	return ns
}

// Problems counts errors and warnings.
func (r Report) Problems() int {
	n := 0
	for _, f := range r.Findings {
		if f.Level != Info {
			n++
		}
	}
	return n
}

// WriteTable prints each finding with its fix, then a summary.
func (r Report) WriteTable(w io.Writer) error {
	counts := map[Level]int{}
	for _, f := range r.Findings {
		counts[f.Level]++
		fmt.Fprintf(w, "%s [%s] %s: %s\n    fix: %s\n", f.Level, f.Code, f.Object, f.Message, f.Fix)
	}
	if len(r.Findings) == 0 {
		_, err := fmt.Fprintf(w, "✓ no problems found in %s\n", r.Scope)
		return err
	}
	_, err := fmt.Fprintf(w, "\n%s in %s: %d error(s), %d warning(s), %d info\n", plural(len(r.Findings), "finding"), r.Scope, counts[Error], counts[Warning], counts[Info])
	return err
}

func plural(n int, s string) string {
	if n == 1 {
		return "1 " + s
	}
	return fmt.Sprintf("%d %ss", n, s)
}
