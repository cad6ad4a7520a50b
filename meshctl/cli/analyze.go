package cli

import (
	"github.com/spf13/cobra"
	"github.com/weftmesh/weft/meshctl/analyze"
	"github.com/weftmesh/weft/meshctl/output"
)

func (a *app) analyzeCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "analyze",
		Short: "Find mesh misconfigurations, each with a stable code and a fix",
		Long: `Analyze reads the mesh configuration and reports misconfigurations with a
stable code (WEFT-A0001…, see meshctl/README.md), a level and a one-line fix:
namespaces with meshed and unmeshed pods, routes to missing Services, policies
that select nothing, Service ports without a protocol, STRICT mTLS with
clients that have no sidecar, policies pilot did not accept, and named target
ports the pods do not declare. It looks at the namespace of -n (default: the
kubeconfig's) or every namespace with -A. Exit code 1 when it finds an error
or a warning.`,
		Example: `  meshctl analyze -A
  meshctl analyze -n shop -o json`,
		Args: args(cobra.NoArgs),
	}
	format := outputFlag(cmd)
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "analyze every namespace")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		f, err := format()
		if err != nil {
			return err
		}
		c, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		snap, err := analyze.Collect(cmd.Context(), c)
		if err != nil {
			return err
		}
		ns := a.namespace(c)
		if all {
			ns = ""
		}
		rep := analyze.Analyze(snap, ns)
		if err := output.Print(a.env.Out, f, rep); err != nil {
			return err
		}
		if rep.Problems() > 0 {
			return errProblems
		}
		return nil
	}
	return cmd
}
