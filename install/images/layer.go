package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// entry is one file, directory or symlink of an image layer.
type entry struct {
	Path     string // absolute path in the image
	Mode     int64
	Linkname string // set for symlinks
	Dir      bool
	Data     []byte
}

// collect reads every file a Spec asks for from the build host and returns the
// layer's entries, including the shared libraries of ELF programs.
func collect(s Spec, cfg Config) ([]entry, error) {
	var out []entry
	add := func(src, dst string) error {
		data, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("read %s for image %s: %w", src, s.Name, err)
		}
		out = append(out, entry{Path: dst, Mode: 0o755, Data: data})
		return nil
	}
	for name, dst := range s.Binaries {
		if err := add(filepath.Join(cfg.BinDir, name), dst); err != nil {
			return nil, err
		}
	}
	for name, dst := range s.ToolBinaries {
		if err := add(filepath.Join(cfg.ToolsDir, name), dst); err != nil {
			return nil, err
		}
	}
	elves := append([]string(nil), s.HostFiles...)
	for _, f := range s.HostFiles {
		if err := add(f, f); err != nil {
			return nil, err
		}
	}
	for _, dir := range s.HostDirs {
		files, err := filepath.Glob(filepath.Join(dir, "*"))
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", dir, err)
		}
		for _, f := range files {
			if err := add(f, f); err != nil {
				return nil, err
			}
			elves = append(elves, f)
		}
	}
	if s.Envoy {
		if err := add(cfg.Envoy, "/usr/local/bin/envoy"); err != nil {
			return nil, err
		}
		elves = append(elves, cfg.Envoy)
	}
	libs, err := sharedLibraries(elves)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", s.Name, err)
	}
	for _, lib := range libs {
		if err := add(lib, lib); err != nil {
			return nil, err
		}
	}
	for link, target := range s.Symlinks {
		out = append(out, entry{Path: link, Mode: 0o777, Linkname: target})
	}
	return out, nil
}

// sharedLibraries runs ldd on each dynamically linked file and returns the
// union of the absolute library paths it prints, sorted.
func sharedLibraries(files []string) ([]string, error) {
	seen := map[string]bool{}
	for _, f := range files {
		if !isELF(f) {
			continue
		}
		out, err := exec.Command("ldd", f).CombinedOutput()
		if err != nil && !strings.Contains(string(out), "not a dynamic executable") {
			return nil, fmt.Errorf("ldd %s: %w: %s", f, err, out)
		}
		for _, lib := range parseLDD(string(out)) {
			seen[lib] = true
		}
	}
	libs := make([]string, 0, len(seen))
	for l := range seen {
		libs = append(libs, l)
	}
	sort.Strings(libs)
	return libs, nil
}

func isELF(file string) bool {
	f, err := os.Open(file)
	if err != nil {
		return false
	}
	defer f.Close()
	magic := make([]byte, 4)
	n, err := f.Read(magic)
	return err == nil && n == 4 && bytes.Equal(magic, []byte("\x7fELF"))
}

// parseLDD extracts the absolute paths from ldd's output: the "=> /path"
// part of resolved libraries and the dynamic loader's own line.
func parseLDD(out string) []string {
	var libs []string
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		for i, f := range fields {
			if strings.HasPrefix(f, "/") && (i == 0 || fields[i-1] == "=>") {
				libs = append(libs, f)
			}
		}
	}
	return libs
}

// layerTar renders entries as a deterministic tar stream: sorted paths,
// parent directories synthesised, zero timestamps and root ownership, so the
// same inputs always give the same layer digest.
func layerTar(entries []entry) ([]byte, error) {
	all := map[string]entry{}
	for _, e := range entries {
		for dir := path.Dir(e.Path); dir != "/"; dir = path.Dir(dir) {
			if _, ok := all[dir]; !ok {
				all[dir] = entry{Path: dir, Mode: 0o755, Dir: true}
			}
		}
		all[e.Path] = e
	}
	paths := make([]string, 0, len(all))
	for p := range all {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		e := all[p]
		h := &tar.Header{Name: strings.TrimPrefix(p, "/"), Mode: e.Mode, Format: tar.FormatPAX}
		switch {
		case e.Dir:
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		case e.Linkname != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.Linkname
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("tar header %s: %w", p, err)
		}
		if _, err := tw.Write(e.Data); err != nil {
			return nil, fmt.Errorf("tar write %s: %w", p, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close tar: %w", err)
	}
	return buf.Bytes(), nil
}

// digest is the hex sha256 of b.
func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
