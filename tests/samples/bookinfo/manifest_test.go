package main

import (
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// TestManifest checks bookinfo.yaml decodes strictly and is what the e2e
// expects: the four ServiceAccounts and Services, the versioned reviews
// Services, and six Deployments whose pods those Services select.
func TestManifest(t *testing.T) {
	raw, err := os.ReadFile("bookinfo.yaml")
	require.NoError(t, err)
	var sas []string
	svcs := map[string]corev1.Service{}
	deps := map[string]appsv1.Deployment{}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var meta struct{ Kind string }
		require.NoError(t, yaml.Unmarshal([]byte(doc), &meta))
		switch meta.Kind {
		case "ServiceAccount":
			var sa corev1.ServiceAccount
			require.NoError(t, yaml.UnmarshalStrict([]byte(doc), &sa))
			sas = append(sas, sa.Name)
		case "Service":
			var svc corev1.Service
			require.NoError(t, yaml.UnmarshalStrict([]byte(doc), &svc))
			svcs[svc.Name] = svc
		case "Deployment":
			var d appsv1.Deployment
			require.NoError(t, yaml.UnmarshalStrict([]byte(doc), &d))
			deps[d.Name] = d
		default:
			t.Fatalf("unexpected kind %q", meta.Kind)
		}
	}
	assert.ElementsMatch(t, []string{"bookinfo-productpage", "bookinfo-details", "bookinfo-reviews", "bookinfo-ratings"}, sas)
	assert.ElementsMatch(t, []string{"productpage", "details", "reviews", "ratings", "reviews-v1", "reviews-v2", "reviews-v3"}, slices.Collect(maps.Keys(svcs)))
	assert.ElementsMatch(t, []string{"productpage-v1", "details-v1", "ratings-v1", "reviews-v1", "reviews-v2", "reviews-v3"}, slices.Collect(maps.Keys(deps)))

	for name, svc := range svcs {
		require.Len(t, svc.Spec.Ports, 1, name)
		assert.Equal(t, "http", svc.Spec.Ports[0].Name, name)
		assert.EqualValues(t, 9080, svc.Spec.Ports[0].Port, name)
		var selected []string
		for dname, d := range deps {
			if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
				selected = append(selected, dname)
			}
		}
		want := []string{name + "-v1"}
		switch name {
		case "reviews":
			want = []string{"reviews-v1", "reviews-v2", "reviews-v3"}
		case "reviews-v1", "reviews-v2", "reviews-v3":
			want = []string{name}
		}
		assert.ElementsMatch(t, want, selected, "pods of Service %s", name)
	}

	for name, d := range deps {
		app, version := d.Spec.Template.Labels["app"], d.Spec.Template.Labels["version"]
		assert.Equal(t, app+"-"+version, name)
		assert.Equal(t, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels, name)
		assert.Equal(t, "bookinfo-"+app, d.Spec.Template.Spec.ServiceAccountName, name)
		require.Len(t, d.Spec.Template.Spec.Containers, 1, name)
		c := d.Spec.Template.Spec.Containers[0]
		assert.Equal(t, "weft.local/bookinfo:dev", c.Image, name)
		assert.Equal(t, corev1.PullIfNotPresent, c.ImagePullPolicy, name)
		assert.Equal(t, []string{"bookinfo", app}, c.Command, name)
		assert.Contains(t, Apps, app, name)
		require.NotNil(t, c.ReadinessProbe, name)
		assert.Equal(t, "/healthz", c.ReadinessProbe.HTTPGet.Path, name)
		assert.Equal(t, 9080, c.ReadinessProbe.HTTPGet.Port.IntValue(), name)
		env := map[string]corev1.EnvVar{}
		for _, e := range c.Env {
			env[e.Name] = e
		}
		require.Contains(t, env, "POD_NAME", name)
		assert.Equal(t, "metadata.name", env["POD_NAME"].ValueFrom.FieldRef.FieldPath, name)
		if app == "reviews" {
			assert.Equal(t, version, env["VERSION"].Value, name)
		}
	}
}
