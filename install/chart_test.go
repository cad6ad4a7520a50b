package install

import (
	"os"
	"path"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	meshv1alpha1 "github.com/weftmesh/weft/api/v1alpha1"
	"github.com/weftmesh/weft/install/gatewayapi"
	rbacv1 "k8s.io/api/rbac/v1"
)

func TestChartMetadata(t *testing.T) {
	ch, err := LoadChart()
	require.NoError(t, err)
	assert.Equal(t, "weft", ch.Metadata.Name)
	assert.Equal(t, "0.1.0", ch.Metadata.Version)
	assert.Equal(t, "dev", ch.Metadata.AppVersion)
	require.NoError(t, ch.Validate())
	assert.NotEmpty(t, ch.Schema, "values.schema.json is loaded")
}

// TestChartCRDsAreTheSourceCRDs: the chart's crds/ are copies (made by
// `make manifests`) of api/v1alpha1/crds and install/gatewayapi/crds,
// byte for byte, so the CRDs have one source.
func TestChartCRDsAreTheSourceCRDs(t *testing.T) {
	var want [][]byte
	own, err := meshv1alpha1.CRDs()
	require.NoError(t, err)
	gw, err := gatewayapi.CRDs()
	require.NoError(t, err)
	want = append(append(want, own...), gw...)
	var sources []string
	for _, dir := range []string{"../api/v1alpha1/crds", "gatewayapi/crds"} {
		names, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		require.NoError(t, err)
		for _, n := range names {
			sources = append(sources, filepath.Base(n))
		}
	}
	require.Len(t, sources, len(want))

	ch, err := LoadChart()
	require.NoError(t, err)
	got := map[string][]byte{}
	for _, crd := range ch.CRDObjects() {
		got[path.Base(crd.Name)] = crd.File.Data
	}
	for _, n := range sources {
		_, ok := got[n]
		assert.True(t, ok, "install/helm/weft/crds/%s is missing: run make manifests", n)
	}
	for n := range got {
		assert.Contains(t, sources, n, "install/helm/weft/crds/%s has no source: run make manifests", n)
	}
	for _, data := range want {
		found := slices.ContainsFunc(sources, func(n string) bool { return string(got[n]) == string(data) })
		assert.True(t, found, "a CRD in install/helm/weft/crds is stale: run make manifests\n%.300s", data)
	}
}

// TestCheckedInManifestIsCurrent keeps install/manifests/weft.yaml equal
// to the chart rendered with the defaults.
func TestCheckedInManifestIsCurrent(t *testing.T) {
	want, err := DefaultManifest()
	require.NoError(t, err)
	got, err := os.ReadFile("manifests/weft.yaml")
	require.NoError(t, err, "install/manifests/weft.yaml is missing: run make manifests")
	if string(got) != string(want) {
		t.Fatal("install/manifests/weft.yaml is stale: run make manifests")
	}
	_, err = Decode(got)
	require.NoError(t, err)
}

// TestRBACIsLeastPrivilege: no role of any component (the uninstall hook's
// included) grants a wildcard, every binding binds a rendered role to a
// rendered ServiceAccount, and every workload runs as its own
// ServiceAccount.
func TestRBACIsLeastPrivilege(t *testing.T) {
	v := Defaults()
	v.Components = Components{CNI: true, Proxy: true, DNS: true, Mesh: true}
	objs := append(render(t, v), renderHooks(t, v)...)
	roles := map[string]bool{}
	accounts := map[string]bool{}
	for _, o := range objs {
		switch o.GetKind() {
		case "ClusterRole", "Role":
			roles[o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName()] = true
			role := find[rbacv1.ClusterRole](t, objs, o.GetKind(), o.GetNamespace(), o.GetName())
			assert.Nil(t, role.AggregationRule, "%s aggregates other roles", name(o))
			for i, r := range role.Rules {
				for field, list := range map[string][]string{
					"verbs": r.Verbs, "apiGroups": r.APIGroups, "resources": r.Resources,
					"resourceNames": r.ResourceNames, "nonResourceURLs": r.NonResourceURLs,
				} {
					for _, s := range list {
						assert.NotContains(t, s, "*", "%s rule %d: wildcard in %s", name(o), i, field)
					}
				}
				assert.NotEmpty(t, r.Verbs, "%s rule %d has no verbs", name(o), i)
				assert.Empty(t, r.NonResourceURLs, "%s rule %d: non-resource URLs", name(o), i)
				for _, verb := range r.Verbs {
					assert.NotContains(t, []string{"escalate", "bind", "impersonate"}, verb, "%s rule %d", name(o), i)
				}
			}
		case "ServiceAccount":
			accounts[o.GetNamespace()+"/"+o.GetName()] = true
		}
	}
	for _, o := range objs {
		switch o.GetKind() {
		case "ClusterRoleBinding", "RoleBinding":
			b := find[rbacv1.RoleBinding](t, objs, o.GetKind(), o.GetNamespace(), o.GetName())
			ns := ""
			if b.RoleRef.Kind == "Role" {
				ns = o.GetNamespace()
			}
			assert.True(t, roles[b.RoleRef.Kind+" "+ns+"/"+b.RoleRef.Name], "%s binds %s %s, which is not rendered", name(o), b.RoleRef.Kind, b.RoleRef.Name)
			for _, s := range b.Subjects {
				assert.Equal(t, "ServiceAccount", s.Kind, name(o))
				assert.True(t, accounts[s.Namespace+"/"+s.Name], "%s binds ServiceAccount %s/%s, which is not rendered", name(o), s.Namespace, s.Name)
			}
		case "DaemonSet", "Deployment", "Job":
			sa := podSpec(t, objs, o.GetKind(), o.GetNamespace(), o.GetName()).ServiceAccountName
			assert.True(t, accounts[o.GetNamespace()+"/"+sa], "%s runs as ServiceAccount %q, which is not rendered", name(o), sa)
		}
	}
	assert.NotEmpty(t, roles)
}
