package install

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// kinds lists "Kind namespace/name" of every rendered object.
func kinds(t *testing.T, v Values) []string {
	t.Helper()
	out, err := Render(v)
	require.NoError(t, err)
	objs, err := Decode(out)
	require.NoError(t, err)
	var names []string
	for _, o := range objs {
		names = append(names, o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName())
	}
	return names
}

func TestRenderDefaults(t *testing.T) {
	names := kinds(t, Defaults())
	assert.Contains(t, names, "Namespace /weft-system")
	assert.Contains(t, names, "DaemonSet weft-system/weft-cni-node")
	assert.NotContains(t, names, "Deployment kube-system/coredns", "DNS is off by default: real clusters bring their own")
}

func TestRenderComponentsCanBeTurnedOff(t *testing.T) {
	v := Defaults()
	v.Components = Components{}
	for _, n := range kinds(t, v) {
		assert.False(t, strings.Contains(n, "cni-node") || strings.Contains(n, "coredns"), "rendered %s with every component off", n)
	}
}

func TestRenderLocalClusterValues(t *testing.T) {
	v := Defaults()
	v.APIServerHost, v.APIServerPort = "172.20.0.1", "6443"
	v.Components.DNS = true
	v.CNI = CNIValues{BinDir: "/s/cni/bin", ConfDir: "/s/nodes", PerNodeDirs: true, IPAMDir: "/s/nodes/$(NODE_NAME)/cni/ipam", IPAMMount: "/s/nodes"}
	out, err := Render(v)
	require.NoError(t, err)
	text := string(out)
	assert.Contains(t, text, "subPathExpr: $(NODE_NAME)/cni/net.d")
	assert.Contains(t, text, "--ipam-data-dir=/s/nodes/$(NODE_NAME)/cni/ipam")
	assert.Contains(t, text, `{name: KUBERNETES_SERVICE_HOST, value: "172.20.0.1"}`)
	assert.Contains(t, text, "clusterIP: 10.96.0.10")
	_, err = Decode(out)
	require.NoError(t, err)
}

func TestDecodeRejectsObjectsWithoutKind(t *testing.T) {
	_, err := Decode([]byte("metadata: {name: x}\n"))
	assert.ErrorContains(t, err, "no kind")
}

func TestRenderShipsTheMeshCRDsWithTheMesh(t *testing.T) {
	names := kinds(t, Defaults())
	assert.Contains(t, names, "CustomResourceDefinition /meshtlses.mesh.weft.dev")
	assert.Contains(t, names, "CustomResourceDefinition /trafficpolicies.mesh.weft.dev")
	assert.Contains(t, names, "CustomResourceDefinition /authorizationpolicies.mesh.weft.dev")
	assert.Contains(t, names, "CustomResourceDefinition /httproutes.gateway.networking.k8s.io")
	assert.Contains(t, names, "CustomResourceDefinition /grpcroutes.gateway.networking.k8s.io")
	assert.Contains(t, names, "CustomResourceDefinition /referencegrants.gateway.networking.k8s.io")
	assert.Contains(t, names, "Deployment weft-system/weft-pilot")
	assert.Contains(t, names, "MutatingWebhookConfiguration /weft-sidecar-injector")
	v := Defaults()
	v.Components.Mesh = false
	assert.NotContains(t, kinds(t, v), "CustomResourceDefinition /meshtlses.mesh.weft.dev")
	assert.NotContains(t, kinds(t, v), "CustomResourceDefinition /httproutes.gateway.networking.k8s.io")
}

func TestValuesFileRoundTripAndTypos(t *testing.T) {
	v := Defaults()
	v.APIServerHost, v.CNI.PerNodeDirs = "172.20.0.1", true
	data, err := yaml.Marshal(v)
	require.NoError(t, err)
	got, err := ReadValues(data)
	require.NoError(t, err)
	assert.Equal(t, v, got)
	partial, err := ReadValues([]byte("trustDomain: example.org\n"))
	require.NoError(t, err)
	assert.Equal(t, "example.org", partial.TrustDomain)
	assert.Equal(t, Defaults().Registry, partial.Registry, "unset fields keep their defaults")
	_, err = ReadValues([]byte("trustDomian: example.org\n"))
	assert.ErrorContains(t, err, "trustDomian")
}
