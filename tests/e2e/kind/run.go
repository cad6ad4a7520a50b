package kind

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/weftmesh/weft/install"
	"github.com/weftmesh/weft/meshctl/lifecycle"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

// Runner executes a Plan: commands as child processes (output streamed),
// the install step in-process.
type Runner struct {
	Out, Err io.Writer
	// Dir is the commands' working directory (the repository root: the
	// suite is run as ./tests/e2e/); empty means the current one.
	Dir string
	// Install runs the install step; nil means InstallWeft.
	Install func(ctx context.Context, spec InstallSpec, out io.Writer) error
}

// Run runs the steps in order and stops at the first failure; cleanup
// steps still run then, when what they undo was done (with a context that
// outlives ctx's cancellation, so an interrupted run deletes its cluster).
// It returns the first error joined with any cleanup error.
func (r Runner) Run(ctx context.Context, steps []Step) error {
	var failed error
	var cleanupErrs []error
	done := map[string]bool{}
	for _, s := range steps {
		if (failed != nil && !s.Cleanup) || (s.Undoes != "" && !done[s.Undoes]) {
			continue
		}
		sctx := ctx
		if s.Cleanup {
			sctx = context.WithoutCancel(ctx)
		}
		fmt.Fprintf(r.Out, "==> %s\n", s.Name)
		start := time.Now()
		err := r.step(sctx, s)
		if err != nil {
			err = fmt.Errorf("%s: %w", s.Name, err)
			fmt.Fprintf(r.Err, "==> %s failed after %v: %v\n", s.Name, time.Since(start).Round(time.Second), err)
			if s.Cleanup {
				cleanupErrs = append(cleanupErrs, err)
			} else if failed == nil {
				failed = err
			}
			continue
		}
		done[s.Name] = true
		fmt.Fprintf(r.Out, "==> %s: done (%v)\n", s.Name, time.Since(start).Round(time.Second))
	}
	return errors.Join(append([]error{failed}, cleanupErrs...)...)
}

func (r Runner) step(ctx context.Context, s Step) error {
	if s.Install != nil {
		install := r.Install
		if install == nil {
			install = InstallWeft
		}
		return install(ctx, *s.Install, r.Out)
	}
	if len(s.Argv) == 0 {
		return errors.New("step has no command")
	}
	cmd := exec.CommandContext(ctx, s.Argv[0], s.Argv[1:]...)
	cmd.Dir = r.Dir
	cmd.Stdout, cmd.Stderr = r.Out, r.Err
	if s.Stdin != nil {
		cmd.Stdin = bytes.NewReader(s.Stdin)
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(s.Argv, " "), err)
	}
	return nil
}

// InstallWeft writes spec.Values to spec.ValuesFile (the suite upgrades,
// uninstalls and reinstalls with that file) and installs Weft as `meshctl
// install` does: the chart rendered by install.Render, applied by
// install.Applier under meshctl's field manager (CRDs established first),
// then it waits until every component is ready.
func InstallWeft(ctx context.Context, spec InstallSpec, out io.Writer) error {
	data, err := yaml.Marshal(spec.Values)
	if err != nil {
		return fmt.Errorf("encode values: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(spec.ValuesFile), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(spec.ValuesFile), err)
	}
	header := []byte("# Install values of the kind cluster, written by tests/e2e/kind/cmd/kind-e2e.\n")
	if err := os.WriteFile(spec.ValuesFile, append(header, data...), 0o644); err != nil {
		return fmt.Errorf("write values: %w", err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", spec.Kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig %s: %w", spec.Kubeconfig, err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	plan, err := lifecycle.NewPlan(spec.Values)
	if err != nil {
		return err
	}
	applier, err := install.NewApplier(cfg, lifecycle.FieldManager)
	if err != nil {
		return err
	}
	in := lifecycle.New(lifecycle.Config{Kube: kube, Dynamic: dyn, Applier: applier, Out: out, Timeout: 10 * time.Minute})
	return in.Install(ctx, plan)
}
