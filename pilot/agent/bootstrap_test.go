package agent

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func goldenPod() Pod {
	return Pod{
		Name: "web-7d4b9c-x2x9z", Namespace: "shop", IP: "10.244.1.17",
		ServiceAccount: "web", NodeName: "node-1",
	}
}

// TestBootstrapGolden pins the bootstrap the sidecar image runs with
// (defaults: the injector's paths and the fixed ports).
func TestBootstrapGolden(t *testing.T) {
	for name, pod := range map[string]Pod{
		"bootstrap.json": goldenPod(),
		"bootstrap-labels.json": func() Pod {
			p := goldenPod()
			p.Labels = map[string]string{"app": "web", "version": "v1"}
			return p
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			b, err := Bootstrap(BootstrapConfig{Pod: pod, XDSAddress: DefaultXDSAddress})
			require.NoError(t, err)
			got, err := MarshalBootstrap(b)
			require.NoError(t, err)
			golden(t, filepath.Join("testdata", name), got)
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run with -update to create it")
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got, regenerate with -update):\n%s", path, diff)
	}
}

func TestBootstrapFields(t *testing.T) {
	b, err := Bootstrap(BootstrapConfig{Pod: goldenPod(), XDSAddress: "pilot.example:15010", XDSServerName: "weft-pilot.weft-system.svc"})
	require.NoError(t, err)
	assert.Equal(t, "web-7d4b9c-x2x9z.shop", b.GetNode().GetId())
	assert.Equal(t, "web.shop", b.GetNode().GetCluster())
	assert.NotContains(t, b.GetNode().GetMetadata().GetFields(), MetaLabels, "no labels known: LABELS omitted")
	assert.Equal(t, "10.244.1.17", b.GetNode().GetMetadata().GetFields()[MetaPodIP].GetStringValue())
	assert.Equal(t, "127.0.0.1", b.GetAdmin().GetAddress().GetSocketAddress().GetAddress())
	assert.True(t, b.GetDynamicResources().GetAdsConfig().GetSetNodeOnFirstMessageOnly())

	clusters := map[string]bool{}
	for _, c := range b.GetStaticResources().GetClusters() {
		clusters[c.GetName()] = true
		if c.GetName() == ClusterXDS {
			ep := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
			assert.Equal(t, "pilot.example", ep.GetAddress())
			assert.EqualValues(t, 15010, ep.GetPortValue())
		}
	}
	assert.Equal(t, map[string]bool{ClusterSDS: true, ClusterXDS: true, ClusterPrometheusStats: true, ClusterAgent: true}, clusters)

	pilot, err := PilotID(td)
	require.NoError(t, err)
	assert.Equal(t, "spiffe://cluster.local/ns/weft-system/sa/weft-pilot", pilot.String())
}

func TestBootstrapRejectsIncompletePod(t *testing.T) {
	for name, cfg := range map[string]BootstrapConfig{
		"no pod name":        {Pod: Pod{Namespace: "shop", ServiceAccount: "web"}},
		"no service account": {Pod: Pod{Name: "web", Namespace: "shop"}},
		"bad xds address":    {Pod: goldenPod(), XDSAddress: "pilot"},
		"bad xds port":       {Pod: goldenPod(), XDSAddress: "pilot:x"},
	} {
		_, err := Bootstrap(cfg)
		assert.Error(t, err, name)
	}
}

// TestBootstrapEnvoyValidates runs `envoy --mode validate` on the golden
// bootstraps: Envoy itself accepts every field and typed config.
func TestBootstrapEnvoyValidates(t *testing.T) {
	envoy := envoyBinary(t)
	for _, name := range []string{"bootstrap.json", "bootstrap-labels.json"} {
		path, err := filepath.Abs(filepath.Join("testdata", name))
		require.NoError(t, err)
		out, err := exec.Command(envoy, "--mode", "validate", "-c", path,
			"--disable-hot-restart", "-l", "warning").CombinedOutput()
		require.NoError(t, err, "envoy rejected %s:\n%s", name, out)
		assert.Contains(t, string(out), "OK", name)
	}
}
