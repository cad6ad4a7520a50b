package kind

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/install"
)

func testOptions() Options {
	return Options{Name: "w", Kind: "/bin/kind", Go: "/bin/go", ImagesDir: "/img",
		Kubeconfig: "/k/kubeconfig", ValuesFile: "/k/values.yaml"}
}

func argvs(steps []Step) [][]string {
	var out [][]string
	for _, s := range steps {
		if s.Install != nil {
			out = append(out, []string{"<install>"})
			continue
		}
		out = append(out, s.Argv)
	}
	return out
}

func TestPlanIsTheWholeRun(t *testing.T) {
	steps := Plan(testOptions(), []string{"/img/a.tar", "/img/b_next.tar"})
	assert.Equal(t, [][]string{
		{"/bin/kind", "create", "cluster", "--config", "-", "--name", "w", "--kubeconfig", "/k/kubeconfig"},
		{"/bin/kind", "load", "image-archive", "/img/a.tar", "--name", "w"},
		{"/bin/kind", "load", "image-archive", "/img/b_next.tar", "--name", "w"},
		{"<install>"},
		{"/bin/go", "test", "-count=1", "-tags", "e2e", "-timeout", "30m", "-v", "./tests/e2e/",
			"-args", "-kubeconfig", "/k/kubeconfig", "-install-values", "/k/values.yaml"},
		{"/bin/go", "test", "-count=1", "-tags", "e2e", "-timeout", "10m", "-v", "-run", "^TestMeshctlUninstallReinstall$", "./tests/e2e/",
			"-args", "-kubeconfig", "/k/kubeconfig", "-meshctl-lifecycle", "-meshctl-values", "/k/values.yaml"},
		{"/bin/kind", "delete", "cluster", "--name", "w", "--kubeconfig", "/k/kubeconfig"},
	}, argvs(steps))
	assert.Equal(t, Config, steps[0].Stdin, "the embedded kind config on stdin")
	assert.True(t, steps[len(steps)-1].Cleanup, "delete runs after failures too")
	assert.Equal(t, steps[0].Name, steps[len(steps)-1].Undoes, "delete only a cluster this run created")
	for _, s := range steps[:len(steps)-1] {
		assert.False(t, s.Cleanup, s.Name)
	}
	spec := steps[3].Install
	assert.Equal(t, "/k/kubeconfig", spec.Kubeconfig)
	assert.Equal(t, "/k/values.yaml", spec.ValuesFile)
	assert.Equal(t, Values("w"), spec.Values)
}

func TestPlanKeepsTheCluster(t *testing.T) {
	o := testOptions()
	o.Keep = true
	steps := Plan(o, []string{"/img/a.tar"})
	for _, s := range steps {
		assert.NotContains(t, s.Argv, "delete", s.Name)
	}
}

func TestValuesForKind(t *testing.T) {
	v := Values("weft-e2e")
	assert.Equal(t, "weft-e2e-control-plane", v.APIServerHost, "the control-plane node's container name")
	assert.Equal(t, "6443", v.APIServerPort)
	assert.Equal(t, install.Components{CNI: true, Proxy: true, Mesh: true}, v.Components, "kind brings CoreDNS")
	assert.Equal(t, "/opt/cni/bin", v.CNI.BinDir)
	assert.Equal(t, "/etc/cni/net.d", v.CNI.ConfDir)
	assert.False(t, v.CNI.PerNodeDirs, "each kind node has its own filesystem")
	assert.Equal(t, "IfNotPresent", v.PullPolicy, "images come from kind load, never a registry")
	assert.True(t, v.Telemetry.Collector.Enabled, "the suite's telemetry test reads the collector's trace store")
	// The chart accepts them (values schema included).
	stream, err := install.Render(v)
	require.NoError(t, err)
	assert.Contains(t, string(stream), "weft-e2e-control-plane")
	assert.NotContains(t, string(stream), "name: coredns")
}
