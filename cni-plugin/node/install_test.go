package node

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInstallBinaries(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "weft-bridge"), []byte("v1"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "weft-redirect"), []byte("r1"), 0o755))
	require.NoError(t, os.Mkdir(filepath.Join(src, "subdir"), 0o755))

	installed, err := InstallBinaries(src, dst)
	require.NoError(t, err)
	assert.Equal(t, []string{"weft-bridge", "weft-redirect"}, installed)
	info, err := os.Stat(filepath.Join(dst, "weft-bridge"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), info.Mode().Perm())

	installed, err = InstallBinaries(src, dst)
	require.NoError(t, err)
	assert.Empty(t, installed, "same content is not copied again")

	require.NoError(t, os.WriteFile(filepath.Join(src, "weft-bridge"), []byte("v2"), 0o755))
	installed, err = InstallBinaries(src, dst)
	require.NoError(t, err)
	assert.Equal(t, []string{"weft-bridge"}, installed)
	got, err := os.ReadFile(filepath.Join(dst, "weft-bridge"))
	require.NoError(t, err)
	assert.Equal(t, "v2", string(got))

	entries, err := os.ReadDir(dst)
	require.NoError(t, err)
	assert.Len(t, entries, 2, "no temporary files left behind")
}

func TestWriteFileIfChanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), ConflistName)
	wrote, err := writeFileIfChanged(path, []byte("a"), 0o644)
	require.NoError(t, err)
	assert.True(t, wrote)
	wrote, err = writeFileIfChanged(path, []byte("a"), 0o644)
	require.NoError(t, err)
	assert.False(t, wrote)
	_, err = writeFileIfChanged(filepath.Join(t.TempDir(), "missing", "x"), []byte("a"), 0o644)
	assert.ErrorContains(t, err, "create temporary file")
}
