package rbacgen

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func root(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	require.NoError(t, err)
	r, err := ModuleRoot(context.Background(), wd)
	require.NoError(t, err)
	return r
}

// TestGeneratedRBACIsCurrent: the permissions in files/rbac/<component>.yaml
// are exactly those the component's markers ask for, so a marker added,
// changed or removed without `make rbac` fails here (without needing
// controller-gen, which only `make rbac` builds).
func TestGeneratedRBACIsCurrent(t *testing.T) {
	r := root(t)
	for _, c := range Components {
		t.Run(c.Name, func(t *testing.T) {
			want, err := Markers(context.Background(), r, c)
			require.NoError(t, err)
			require.NotEmpty(t, want, "%s has no +kubebuilder:rbac marker", c.Name)
			got, err := FileGrants(filepath.Join(r, OutDir, c.Name+".yaml"))
			require.NoError(t, err, "run make rbac")
			var missing, extra []string
			for g, at := range want {
				if !got[g] {
					missing = append(missing, g.String()+" (marker at "+at+")")
				}
			}
			for g := range got {
				if _, ok := want[g]; !ok {
					extra = append(extra, g.String())
				}
			}
			sort.Strings(missing)
			sort.Strings(extra)
			assert.Empty(t, missing, "%s.yaml lacks what markers ask for: run make rbac", c.Name)
			assert.Empty(t, extra, "%s.yaml grants what no marker asks for: run make rbac", c.Name)
		})
	}
	files, err := filepath.Glob(filepath.Join(r, OutDir, "*.yaml"))
	require.NoError(t, err)
	for _, f := range files {
		name := filepath.Base(f)
		assert.True(t, slices.ContainsFunc(Components, func(c Component) bool { return c.Name+".yaml" == name }),
			"%s belongs to no component: run make rbac", name)
	}
}

// TestComponentsLinkOnlyTheirPackages: the package sets are per binary, so
// a marker in a package one component links does not leak to another.
func TestComponentsLinkOnlyTheirPackages(t *testing.T) {
	r := root(t)
	has := func(c Component, path string) bool {
		pkgs, err := Packages(context.Background(), r, c)
		require.NoError(t, err)
		return slices.ContainsFunc(pkgs, func(p Package) bool { return p.ImportPath == path })
	}
	byName := map[string]Component{}
	for _, c := range Components {
		byName[c.Name] = c
	}
	assert.True(t, has(byName["weft-pilot"], "github.com/weftmesh/weft/pilot/ca/rootstore"))
	assert.False(t, has(byName["weft-proxy"], "github.com/weftmesh/weft/pilot/ca/rootstore"))
	assert.True(t, has(byName["weft-cni-node"], "github.com/weftmesh/weft/cni-plugin/cmd/weft-redirect"),
		"weft-redirect runs with weft-cni-node's token")
	assert.False(t, has(byName["weft-injector"], "github.com/weftmesh/weft/pilot/model"))
}

func TestParseMarker(t *testing.T) {
	g, err := ParseMarker(`groups="";apps,resources=pods,resourceNames=a;b,verbs=get,namespace=ns,roleName=r`, "def")
	require.NoError(t, err)
	assert.ElementsMatch(t, []Grant{
		{Namespace: "ns", Role: "r", Group: "", Resource: "pods", Name: "a", Verb: "get"},
		{Namespace: "ns", Role: "r", Group: "", Resource: "pods", Name: "b", Verb: "get"},
		{Namespace: "ns", Role: "r", Group: "apps", Resource: "pods", Name: "a", Verb: "get"},
		{Namespace: "ns", Role: "r", Group: "apps", Resource: "pods", Name: "b", Verb: "get"},
	}, g)
	g, err = ParseMarker(`groups=core,resources=nodes,verbs=list;watch`, "def")
	require.NoError(t, err)
	assert.Equal(t, []Grant{
		{Role: "def", Resource: "nodes", Verb: "list"}, {Role: "def", Resource: "nodes", Verb: "watch"},
	}, g)
	for in, msg := range map[string]string{
		`groups="",resources=pods,verbs=*`:                 "wildcards are not allowed",
		`groups="",resources=pods`:                         "needs groups, resources and verbs",
		`urls=/metrics,verbs=get`:                          "not supported",
		`groups="",resources=pods,verbs=get,verbs=x`:       "given twice",
		`groups="",resources=pods,verbs`:                   "want key=value",
		`groups="",resources=pods,verbs=get,namespace=a;b`: "must be one name",
	} {
		_, err := ParseMarker(in, "def")
		assert.ErrorContains(t, err, msg, in)
	}
}

func TestFileGrantsRejectsWhatIsNotARole(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.yaml")
	require.NoError(t, os.WriteFile(p, []byte("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"), 0o644))
	_, err := FileGrants(p)
	assert.ErrorContains(t, err, "unexpected ConfigMap")
	require.NoError(t, os.WriteFile(p, []byte("kind: Role\nmetadata: {name: x}\n"), 0o644))
	_, err = FileGrants(p)
	assert.ErrorContains(t, err, `unexpected Role "x" in namespace ""`)
}

// apiUse spots code that talks to the API server: typed clients, the
// dynamic client, informers and controller-runtime's client.
var apiUse = regexp.MustCompile(`\.(CoreV1|DiscoveryV1|AuthenticationV1|AdmissionregistrationV1|NetworkingV1|CoordinationV1|AppsV1|RbacV1|PolicyV1|BatchV1)\(\)|dynamic\.Interface|InformerFactory|GetInformer\(|client\.Client\b`)

// markedElsewhere are packages that call the API for a caller that names
// the objects, so the caller carries the marker.
var markedElsewhere = map[string]string{
	"github.com/weftmesh/weft/pilot/leader": "pilot/cmd/pilot marks the Lease it names",
}

// TestEveryPackageThatCallsTheAPIHasMarkers: a package of a component that
// uses a Kubernetes client has at least one RBAC marker, so new API use in
// a new package cannot go unmarked (and so ungranted) unnoticed.
func TestEveryPackageThatCallsTheAPIHasMarkers(t *testing.T) {
	r := root(t)
	for _, c := range Components {
		pkgs, err := Packages(context.Background(), r, c)
		require.NoError(t, err)
		for _, p := range pkgs {
			var uses, marks bool
			for _, f := range p.GoFiles {
				if f == "" {
					continue
				}
				data, err := os.ReadFile(filepath.Join(p.Dir, f))
				require.NoError(t, err)
				uses = uses || apiUse.Match(data)
				marks = marks || strings.Contains(string(data), markerPrefix)
			}
			if _, ok := markedElsewhere[p.ImportPath]; uses && !ok {
				assert.True(t, marks, "%s (component %s) uses a Kubernetes client but has no +kubebuilder:rbac marker", p.ImportPath, c.Name)
			}
		}
	}
}
