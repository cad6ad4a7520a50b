// Command genmanifest writes install/manifests/weft.yaml, the weft chart
// rendered with install.Defaults() (install.DefaultManifest). `make
// manifests` runs it after copying the CRDs into the chart; a unit test in
// package install fails when the file is stale.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/weftmesh/weft/install"
)

func main() {
	out := flag.String("o", install.DefaultManifestPath, "file to write")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "genmanifest:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	data, err := install.DefaultManifest()
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}
