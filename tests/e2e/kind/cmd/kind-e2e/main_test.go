package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFlagsDefaultsAreAbsolute(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	require.NoError(t, err)
	wd, err := os.Getwd()
	require.NoError(t, err)
	assert.Equal(t, "weft-e2e", o.Name)
	assert.Equal(t, "kind", o.Kind)
	assert.False(t, o.Keep)
	assert.Equal(t, filepath.Join(wd, ".cache/images"), o.ImagesDir)
	assert.Equal(t, filepath.Join(wd, ".cache/kind/kubeconfig"), o.Kubeconfig)
	assert.Equal(t, filepath.Join(wd, ".cache/kind/values.yaml"), o.ValuesFile, "values next to the kubeconfig")
}

func TestFlags(t *testing.T) {
	o, err := parseFlags([]string{"-name", "x", "-kind", "/opt/kind", "-images", "/i", "-kubeconfig", "/k/cfg", "-keep"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "x", o.Name)
	assert.Equal(t, "/opt/kind", o.Kind)
	assert.Equal(t, "/i", o.ImagesDir)
	assert.Equal(t, "/k/cfg", o.Kubeconfig)
	assert.Equal(t, "/k/values.yaml", o.ValuesFile)
	assert.True(t, o.Keep)
	_, err = parseFlags([]string{"stray"}, io.Discard)
	assert.Error(t, err)
}
