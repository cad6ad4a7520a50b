// Command kind-e2e runs Weft's e2e suite on a fresh kind cluster (`make
// e2e-kind`): create the cluster from tests/e2e/kind/kind-config.yaml, load
// every image tarball with `kind load image-archive`, install Weft with the
// Helm chart, run the suite, delete the cluster (unless -keep). Run it from
// the repository root. Needs Docker and kind; see tests/e2e/kind/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/weftmesh/weft/tests/e2e/kind"
)

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "kind-e2e:", err)
		stop()
		os.Exit(1)
	}
}

// parseFlags reads the flags into absolute-path Options: the suite runs
// in its package directory, so relative paths would point elsewhere.
func parseFlags(args []string, errOut io.Writer) (kind.Options, error) {
	fs := flag.NewFlagSet("kind-e2e", flag.ContinueOnError)
	fs.SetOutput(errOut)
	var o kind.Options
	fs.StringVar(&o.Name, "name", "weft-e2e", "kind cluster name")
	fs.StringVar(&o.Kind, "kind", "kind", "kind binary")
	fs.StringVar(&o.Go, "go", "go", "go binary that runs the suite")
	fs.StringVar(&o.ImagesDir, "images", ".cache/images", "directory of the image tarballs (make images)")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", ".cache/kind/kubeconfig", "where to write the cluster's kubeconfig")
	fs.StringVar(&o.ValuesFile, "values-out", "", "where to write the install values (default: values.yaml next to -kubeconfig)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the cluster afterwards (delete it with kind delete cluster --name <name>)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(errOut, "unexpected arguments: %v\n", fs.Args())
		return o, fmt.Errorf("unexpected arguments")
	}
	if o.ValuesFile == "" {
		o.ValuesFile = filepath.Join(filepath.Dir(o.Kubeconfig), "values.yaml")
	}
	for _, p := range []*string{&o.ImagesDir, &o.Kubeconfig, &o.ValuesFile} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return o, err
		}
		*p = abs
	}
	return o, nil
}

func run(ctx context.Context, o kind.Options) error {
	steps, err := kind.Steps(o)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(o.Kubeconfig), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(o.Kubeconfig), err)
	}
	return kind.Runner{Out: os.Stdout, Err: os.Stderr}.Run(ctx, steps)
}
