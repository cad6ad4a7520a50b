package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/weftmesh/weft/meshctl/check"
	"github.com/weftmesh/weft/meshctl/output"
)

// days is a duration flag that also takes days ("30d"), the unit
// certificate lifetimes are thought in.
type days time.Duration

func (d *days) String() string {
	dur := time.Duration(*d)
	if dur%(24*time.Hour) == 0 {
		return strconv.Itoa(int(dur/(24*time.Hour))) + "d"
	}
	return dur.String()
}

func (d *days) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		v, err := strconv.Atoi(n)
		if err != nil || v < 0 {
			return fmt.Errorf("%q: want a number of days like 30d, or a duration like 720h", s)
		}
		*d = days(time.Duration(v) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("%q: want a number of days like 30d, or a duration like 720h", s)
	}
	*d = days(v)
	return nil
}

func (d *days) Type() string { return "duration" }

func (a *app) checkCmd() *cobra.Command {
	var pre bool
	within := days(30 * 24 * time.Hour)
	var vf valuesFlags
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check that the cluster can run Weft (--pre) or that Weft is healthy",
		Long: `Check runs a list of checks and prints each with a one-line fix when it fails.
The exit code is 1 when any check failed (warnings do not fail).

Post-install (default): components ready, mesh CRDs established, injection
webhook configured and reachable from the API server (a server-side dry-run
pod in a temporary namespace must come back with the sidecar), CA signing
certificate and roots valid for longer than --fail-within, the trust bundle
published, sidecar versions equal to what the injector injects, every meshed
pod connected to pilot and in sync, and weft-cni-node finding no meshed pod
without its traffic redirect rules.

Pre-install (--pre): Kubernetes version (native sidecars), nodes and pod CIDRs,
other CNIs, kube-proxy or meshes that would conflict with the components the
values enable, and the permissions the install needs.`,
		Example: `  meshctl check
  meshctl check --fail-within 90d -o json
  meshctl check --pre -f values.yaml`,
		Args: args(cobra.NoArgs),
		RunE: nil,
	}
	format := outputFlag(cmd)
	cmd.Flags().BoolVar(&pre, "pre", false, "run the pre-install checks")
	cmd.Flags().Var(&within, "fail-within", "fail when a CA certificate expires within this time (e.g. 30d, 720h)")
	vf.add(cmd, "f")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		f, err := format()
		if err != nil {
			return err
		}
		vals, err := vf.values(a.env.In)
		if err != nil {
			return err
		}
		c, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		facts := check.Collect(cmd.Context(), c, check.Options{
			Pre: pre, Components: vals.Components, FailWithin: time.Duration(within), Now: a.env.Now(),
		})
		rep := check.NewReport(facts)
		if err := output.Print(a.env.Out, f, rep); err != nil {
			return err
		}
		if rep.Failed() {
			return errProblems
		}
		return nil
	}
	return cmd
}
