// Command images builds an OCI image tarball (docker-save format, which
// `ctr images import` and `kind load image-archive` read) for every Weft
// component and sample app, without a Docker engine or registry.
//
// -tag names a second build of the same binaries, e.g. `-tag next -only
// pilot,injector,…`: the upgrade e2e test installs dev and upgrades to it.
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

func main() {
	cfg := Config{}
	var only string
	flag.StringVar(&cfg.BinDir, "bin-dir", ".cache/build", "directory with the static binaries")
	flag.StringVar(&cfg.ToolsDir, "tools-dir", ".cache/bin", "directory with the cluster binaries built from tools/ (coredns)")
	flag.StringVar(&cfg.Envoy, "envoy", ".cache/bin/envoy", "path of the pinned Envoy binary")
	flag.StringVar(&cfg.OutDir, "out", ".cache/images", "directory for the image tarballs")
	flag.StringVar(&only, "only", "", "build just these images (comma-separated names)")
	flag.StringVar(&cfg.Tag, "tag", Tag, "tag of the images: "+Registry+"/<name>:<tag>; tarballs of tags other than "+Tag+" are <name>_<tag>.tar")
	flag.Parse()
	if only != "" {
		cfg.Only = strings.Split(only, ",")
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func run(cfg Config) error {
	specs, err := selectSpecs(Specs(), cfg.Only)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", cfg.OutDir, err)
	}
	for _, s := range specs {
		start := time.Now()
		built, err := Build(cfg, s)
		if err != nil {
			return err
		}
		state := "up to date"
		if built {
			state = "built"
		}
		fmt.Printf("image %-28s %-10s %v\n", Ref(s.Name, cfg.tag()), state, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// selectSpecs keeps the specs named in only (all when empty); an unknown
// name is an error, so a typo in the Makefile does not silently build nothing.
func selectSpecs(specs []Spec, only []string) ([]Spec, error) {
	if len(only) == 0 {
		return specs, nil
	}
	var out []Spec
	for _, name := range only {
		i := slices.IndexFunc(specs, func(s Spec) bool { return s.Name == strings.TrimSpace(name) })
		if i < 0 {
			return nil, fmt.Errorf("-only: no image %q", name)
		}
		out = append(out, specs[i])
	}
	return out, nil
}
