package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Config says where the builder reads binaries and writes tarballs, and
// which tag the images get.
type Config struct {
	BinDir, ToolsDir, Envoy, OutDir string
	// Only, when not empty, lists the images to build (the rest are skipped).
	Only []string
	// Tag is the images' tag; empty means Tag (dev). The upgrade e2e test
	// installs dev and upgrades to a second tag (next) of the same build.
	Tag string
}

// tag is cfg.Tag or the default.
func (cfg Config) tag() string {
	if cfg.Tag == "" {
		return Tag
	}
	return cfg.Tag
}

// Ref is the stable reference of an image built here: weft.local/<name>:<tag>.
func Ref(name, tag string) string { return fmt.Sprintf("%s/%s:%s", Registry, name, tag) }

// Refs are the references an image built with tag carries: Ref, plus the
// spec's Aliases when tag is the default.
func Refs(s Spec, tag string) []string {
	refs := []string{Ref(s.Name, tag)}
	if tag == "" || tag == Tag {
		refs = append(refs, s.Aliases...)
	}
	return refs
}

// TarballPath is where the tarball of image name with tag is written:
// <name>.tar for the default tag (dev), <name>_<tag>.tar for others, so
// every tag has its own file and loaders import them all (*.tar).
func TarballPath(outDir, name, tag string) string {
	if tag == "" || tag == Tag {
		return filepath.Join(outDir, name+".tar")
	}
	return filepath.Join(outDir, name+"_"+tag+".tar")
}

// Build writes the tarball of s unless one built from identical inputs is
// already there. It reports whether it wrote a new one.
func Build(cfg Config, s Spec) (bool, error) {
	entries, err := collect(s, cfg)
	if err != nil {
		return false, err
	}
	layerBytes, err := layerTar(entries)
	if err != nil {
		return false, fmt.Errorf("image %s: %w", s.Name, err)
	}
	config := imageConfig(s)
	configJSON, err := json.Marshal(config)
	if err != nil {
		return false, fmt.Errorf("image %s config: %w", s.Name, err)
	}
	refs := Refs(s, cfg.tag())
	key := digest(append(append([]byte(strings.Join(refs, ",")), configJSON...), layerBytes...))
	out := TarballPath(cfg.OutDir, s.Name, cfg.tag())
	keyFile := out + ".key"
	if old, err := os.ReadFile(keyFile); err == nil && string(old) == key {
		if _, err := os.Stat(out); err == nil {
			return false, nil
		}
	}
	img, err := assemble(layerBytes, config)
	if err != nil {
		return false, fmt.Errorf("image %s: %w", s.Name, err)
	}
	tagged := map[name.Reference]v1.Image{}
	for _, ref := range refs {
		tag, err := name.NewTag(ref)
		if err != nil {
			return false, fmt.Errorf("tag %s: %w", ref, err)
		}
		tagged[tag] = img
	}
	tmp := out + ".tmp"
	if err := tarball.MultiRefWriteToFile(tmp, tagged); err != nil {
		return false, fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return false, fmt.Errorf("rename %s: %w", tmp, err)
	}
	if err := os.WriteFile(keyFile, []byte(key), 0o644); err != nil {
		return false, fmt.Errorf("write %s: %w", keyFile, err)
	}
	return true, nil
}

// imageConfig is the runtime configuration of s (entrypoint, env, user).
func imageConfig(s Spec) v1.Config {
	return v1.Config{
		Entrypoint: s.Entrypoint,
		Env:        []string{"PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"},
		User:       s.User,
		WorkingDir: "/",
	}
}

// assemble makes a one-layer linux/amd64 image.
func assemble(layerBytes []byte, config v1.Config) (v1.Image, error) {
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Config = config
	return mutate.ConfigFile(img, cf)
}
