// Command images builds an OCI image tarball (docker-save format, which
// `ctr images import` and `kind load image-archive` read) for every Weft
// component and sample app, without a Docker engine or registry.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	cfg := Config{}
	flag.StringVar(&cfg.BinDir, "bin-dir", ".cache/build", "directory with the static binaries")
	flag.StringVar(&cfg.ToolsDir, "tools-dir", ".cache/bin", "directory with the cluster binaries built from tools/ (coredns)")
	flag.StringVar(&cfg.Envoy, "envoy", ".cache/bin/envoy", "path of the pinned Envoy binary")
	flag.StringVar(&cfg.OutDir, "out", ".cache/images", "directory for the image tarballs")
	flag.StringVar(&cfg.Only, "only", "", "build just this image")
	flag.Parse()
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func run(cfg Config) error {
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", cfg.OutDir, err)
	}
	for _, s := range Specs() {
		if cfg.Only != "" && s.Name != cfg.Only {
			continue
		}
		start := time.Now()
		built, err := Build(cfg, s)
		if err != nil {
			return err
		}
		state := "up to date"
		if built {
			state = "built"
		}
		fmt.Printf("image %-28s %-10s %v\n", Ref(s.Name), state, time.Since(start).Round(time.Millisecond))
	}
	return nil
}
