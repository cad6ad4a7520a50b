package conformance

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	meshtests "sigs.k8s.io/gateway-api/conformance/tests/mesh"
	"sigs.k8s.io/gateway-api/pkg/features"
)

func TestClaimedFeaturesAreKnownAndDisjoint(t *testing.T) {
	all := features.SetsToNamesSet(features.AllFeatures)
	for _, f := range SupportedFeatures {
		assert.True(t, all.Has(f), "supported feature %s is not a Gateway API feature", f)
		_, alsoUnsupported := UnsupportedFeatures[f]
		assert.False(t, alsoUnsupported, "%s is claimed both ways", f)
	}
	for f, why := range UnsupportedFeatures {
		assert.True(t, all.Has(f), "unsupported feature %s is not a Gateway API feature", f)
		assert.NotEmpty(t, why, "%s needs a reason", f)
	}
}

// Every feature a pinned mesh test relies on has a decision: claimed, or
// listed with the reason it is not. A suite upgrade that adds a test with
// a new feature fails here until someone reads pilot and decides.
func TestEveryMeshTestFeatureIsDecided(t *testing.T) {
	require.NotEmpty(t, meshtests.MeshConformanceTests)
	for _, test := range meshtests.MeshConformanceTests {
		for _, f := range test.Features {
			_, unsupported := UnsupportedFeatures[f]
			assert.True(t, slices.Contains(SupportedFeatures, f) || unsupported,
				"test %s uses feature %s: add it to SupportedFeatures or UnsupportedFeatures", test.ShortName, f)
		}
	}
	for _, ext := range features.MeshExtendedFeatures.UnsortedList() {
		_, unsupported := UnsupportedFeatures[ext.Name]
		assert.True(t, slices.Contains(SupportedFeatures, ext.Name) || unsupported,
			"mesh extended feature %s: add it to SupportedFeatures or UnsupportedFeatures", ext.Name)
	}
}

func TestOptions(t *testing.T) {
	o := Options("v0.0.0-test", "/tmp/report.yaml")
	i := o.Implementation
	require.NoError(t, i.Validate(), "the suite refuses to write a report without a complete implementation")
	assert.Equal(t, map[string]string{"weft-injection": "enabled"}, o.NamespaceLabels, "the mesh namespaces get sidecars")
	assert.Equal(t, Profiles, o.ConformanceProfiles)
	assert.True(t, o.CleanupBaseResources, "the suite's namespaces are deleted after the run")

	o.SupportedFeatures[0] = "mutated"
	assert.Equal(t, features.SupportMesh, SupportedFeatures[0], "Options hands out copies")
}
