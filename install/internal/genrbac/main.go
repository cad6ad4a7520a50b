// Command genrbac writes the chart's RBAC (install/helm/weft/files/rbac)
// from the +kubebuilder:rbac markers with controller-gen. `make rbac` builds
// controller-gen from tools/controller-gen and runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/weftmesh/weft/install/internal/rbacgen"
)

func main() {
	gen := flag.String("controller-gen", "controller-gen", "controller-gen binary")
	out := flag.String("o", rbacgen.OutDir, "directory to write, relative to the repository root")
	flag.Parse()
	if err := run(context.Background(), *gen, *out); err != nil {
		fmt.Fprintln(os.Stderr, "genrbac:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, gen, out string) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root, err := rbacgen.ModuleRoot(ctx, wd)
	if err != nil {
		return err
	}
	return rbacgen.Generate(ctx, rbacgen.GenerateConfig{ControllerGen: gen, Root: root, OutDir: out})
}
