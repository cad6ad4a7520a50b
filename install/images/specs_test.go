package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSpecsAreComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Specs() {
		assert.False(t, seen[s.Name], "duplicate image %s", s.Name)
		seen[s.Name] = true
		assert.NotEmpty(t, s.Entrypoint, "image %s has no entrypoint", s.Name)
		assert.True(t, len(s.Binaries)+len(s.ToolBinaries) > 0 || s.Envoy, "image %s has nothing in it", s.Name)
	}
}

func TestParseLDD(t *testing.T) {
	out := "\tlinux-vdso.so.1 (0x00007ffd)\n" +
		"\tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f)\n" +
		"\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n" +
		"\tlibmissing.so => not found\n"
	assert.Equal(t, []string{"/lib/x86_64-linux-gnu/libm.so.6", "/lib64/ld-linux-x86-64.so.2"}, parseLDD(out))
}

func TestLayerIsDeterministicWithParents(t *testing.T) {
	entries := []entry{
		{Path: "/usr/local/bin/b", Mode: 0o755, Data: []byte("b")},
		{Path: "/a", Mode: 0o644, Data: []byte("a")},
		{Path: "/usr/sbin/link", Mode: 0o777, Linkname: "target"},
	}
	one, err := layerTar(entries)
	require.NoError(t, err)
	reversed := []entry{entries[2], entries[1], entries[0]}
	two, err := layerTar(reversed)
	require.NoError(t, err)
	assert.Equal(t, digest(one), digest(two), "input order must not change the layer")
	assert.True(t, strings.Contains(string(one), "usr/local/bin/"), "parent directories are synthesised")
}

func TestBuildSkipsUnchangedInputs(t *testing.T) {
	bin, out := t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bin, "tool"), []byte("#!/bin/true\n"), 0o755))
	s := Spec{Name: "t", Binaries: map[string]string{"tool": "/tool"}, Entrypoint: []string{"/tool"}}
	cfg := Config{BinDir: bin, OutDir: out}
	built, err := Build(cfg, s)
	require.NoError(t, err)
	assert.True(t, built)
	built, err = Build(cfg, s)
	require.NoError(t, err)
	assert.False(t, built, "same inputs: no rebuild")
	require.NoError(t, os.WriteFile(filepath.Join(bin, "tool"), []byte("#!/bin/false\n"), 0o755))
	built, err = Build(cfg, s)
	require.NoError(t, err)
	assert.True(t, built, "changed binary: rebuild")
}

func TestMissingBinaryIsAClearError(t *testing.T) {
	_, err := Build(Config{BinDir: t.TempDir(), OutDir: t.TempDir()}, Spec{Name: "x", Binaries: map[string]string{"nope": "/nope"}})
	assert.ErrorContains(t, err, "image x")
}

func TestTaggedBuildWritesItsOwnTarball(t *testing.T) {
	bin, out := t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bin, "tool"), []byte("#!/bin/true\n"), 0o755))
	s := Spec{Name: "t", Binaries: map[string]string{"tool": "/tool"}, Entrypoint: []string{"/tool"}}
	for _, tag := range []string{"", "next"} {
		built, err := Build(Config{BinDir: bin, OutDir: out, Tag: tag}, s)
		require.NoError(t, err)
		assert.True(t, built, "tag %q: its own tarball", tag)
	}
	assert.Equal(t, filepath.Join(out, "t.tar"), TarballPath(out, "t", "dev"))
	assert.Equal(t, filepath.Join(out, "t_next.tar"), TarballPath(out, "t", "next"))
	for path, want := range map[string]string{
		filepath.Join(out, "t.tar"):      "weft.local/t:dev",
		filepath.Join(out, "t_next.tar"): "weft.local/t:next",
	} {
		m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(path) })
		require.NoError(t, err)
		require.Len(t, m, 1)
		assert.Equal(t, []string{want}, m[0].RepoTags, path)
	}
}

func TestSelectSpecs(t *testing.T) {
	got, err := selectSpecs(Specs(), []string{"pilot", " sidecar"})
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, "pilot", got[0].Name)
	assert.Equal(t, "sidecar", got[1].Name)
	all, err := selectSpecs(Specs(), nil)
	require.NoError(t, err)
	assert.Len(t, all, len(Specs()))
	_, err = selectSpecs(Specs(), []string{"pilott"})
	assert.ErrorContains(t, err, `no image "pilott"`)
}

func TestAliasesTagTheDefaultBuildOnly(t *testing.T) {
	bin, out := t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bin, "tool"), []byte("#!/bin/true\n"), 0o755))
	s := Spec{Name: "t", Binaries: map[string]string{"tool": "/tool"}, Entrypoint: []string{"/tool"},
		Aliases: []string{"registry.example/upstream/t:v1"}}
	for _, tag := range []string{"", "next"} {
		_, err := Build(Config{BinDir: bin, OutDir: out, Tag: tag}, s)
		require.NoError(t, err)
	}
	for path, want := range map[string][]string{
		filepath.Join(out, "t.tar"):      {"registry.example/upstream/t:v1", "weft.local/t:dev"},
		filepath.Join(out, "t_next.tar"): {"weft.local/t:next"},
	} {
		m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(path) })
		require.NoError(t, err)
		require.Len(t, m, 1, "one image, however many tags")
		assert.ElementsMatch(t, want, m[0].RepoTags, path)
	}

	// Adding an alias changes the build's key: the tarball is rewritten.
	s.Aliases = append(s.Aliases, "registry.example/upstream/t:v2")
	built, err := Build(Config{BinDir: bin, OutDir: out}, s)
	require.NoError(t, err)
	assert.True(t, built)
}
