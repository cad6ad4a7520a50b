package identity

import (
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewAndID(t *testing.T) {
	w, err := Parse("cluster.local", "default", "bookinfo-productpage")
	require.NoError(t, err)
	assert.Equal(t, "spiffe://cluster.local/ns/default/sa/bookinfo-productpage", w.ID().String())
	assert.Equal(t, "default", w.Namespace())
	assert.Equal(t, "bookinfo-productpage", w.ServiceAccount())
	assert.Equal(t, "cluster.local", w.TrustDomain().Name())

	back, err := FromID(w.ID())
	require.NoError(t, err)
	assert.Equal(t, w, back, "FromID(ID()) round-trips")
}

func TestInvalid(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("cluster.local")
	for name, tc := range map[string]struct{ ns, sa string }{
		"empty namespace":      {"", "a"},
		"empty sa":             {"ns", ""},
		"upper-case namespace": {"Default", "a"},
		"slash in sa":          {"ns", "a/b"},
		"dotted namespace":     {"a.b", "sa"},
		"path traversal":       {"..", "sa"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(td, tc.ns, tc.sa)
			assert.Error(t, err)
		})
	}
	_, err := New(spiffeid.TrustDomain{}, "ns", "sa")
	assert.Error(t, err)
	_, err = Parse("Not A Domain", "ns", "sa")
	assert.Error(t, err)
}

func TestFromIDRejectsOtherShapes(t *testing.T) {
	for _, s := range []string{
		"spiffe://cluster.local/ns/default",
		"spiffe://cluster.local/ns/default/sa/a/extra",
		"spiffe://cluster.local/sa/a/ns/default",
		"spiffe://cluster.local",
	} {
		_, err := FromID(spiffeid.RequireFromString(s))
		assert.Error(t, err, s)
	}
	_, err := FromID(spiffeid.ID{})
	assert.Error(t, err)
}
