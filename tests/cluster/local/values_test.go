package local

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/install"
)

// TestWrittenValuesInstallTheCollector: the values file `up` writes (and
// `make demo`/`make e2e` install with) deploys the telemetry collector,
// and reads back as the chart accepts it.
func TestWrittenValuesInstallTheCollector(t *testing.T) {
	dir := t.TempDir()
	c := Config{Nodes: 3, StateDir: "/s", CacheDir: dir}
	require.NoError(t, os.MkdirAll(filepath.Dir(c.ValuesPath()), 0o755))
	require.NoError(t, writeValues(c))
	data, err := os.ReadFile(c.ValuesPath())
	require.NoError(t, err)
	v, err := install.ReadValues(data)
	require.NoError(t, err)
	assert.True(t, v.Telemetry.Collector.Enabled)
	assert.True(t, v.Components.Mesh)
	stream, err := install.Render(v)
	require.NoError(t, err)
	assert.Contains(t, string(stream), "name: weft-otel-collector")
}
