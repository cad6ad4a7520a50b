// Package cli is meshctl's command tree: thin cobra commands that connect
// to the cluster, collect facts, hand them to the pure cores in the
// sibling packages (check, proxystatus, proxyconfig, explain, analyze,
// inject, lifecycle) and print the result in the -o format. Run is the
// whole program, so the e2e suite drives meshctl in-process.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/klog/v2"

	"github.com/weftmesh/weft/meshctl/kube"
	"github.com/weftmesh/weft/meshctl/lifecycle"
	"github.com/weftmesh/weft/meshctl/output"
)

// ControlPlaneNamespace is where Weft's control plane runs (DESIGN.md).
const ControlPlaneNamespace = "weft-system"

// Env is what a run of meshctl talks to. Zero fields get the real thing;
// unit tests set Client (fake clientsets) and Now.
type Env struct {
	In       io.Reader
	Out, Err io.Writer
	// Client, when set, is used instead of connecting with the kubeconfig
	// flags.
	Client *kube.Client
	// Now is the clock (certificate expiry, ages).
	Now func() time.Time
	// Terminal says stdout is a terminal (live progress redraws lines);
	// nil means detect it from Out.
	Terminal *bool
	// Applier replaces server-side apply (tests); Poll shortens waits.
	Applier lifecycle.Applier
	Poll    time.Duration
}

// ExitError ends meshctl with Code; an empty Msg prints nothing more
// (the command has already reported what is wrong).
type ExitError struct {
	Code int
	Msg  string
}

func (e *ExitError) Error() string { return e.Msg }

// errProblems is returned by commands whose output lists problems: exit 1,
// nothing more to print.
var errProblems = &ExitError{Code: 1}

// usageError marks bad flags or arguments (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// Run executes meshctl with args and returns the exit code: 0 success, 1
// failure or problems found, 2 bad usage. Errors are printed on one line,
// never with a stack trace.
func Run(ctx context.Context, args []string, env Env) (code int) {
	env = env.withDefaults()
	klog.SetLogger(logr.Discard()) // client-go must not write to the terminal
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(env.Err, "error: internal error: %v (please report this)\n", r)
			code = 2
		}
	}()
	root := newRoot(&env)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	if msg, ok := unknownCommand(err); ok {
		fmt.Fprintf(env.Err, "error: %s\n", msg)
		return 2
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Msg != "" {
			fmt.Fprintf(env.Err, "error: %s\n", ee.Msg)
		}
		return ee.Code
	}
	fmt.Fprintf(env.Err, "error: %s\n", kube.Message(err))
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// unknownCommand rewrites cobra's multi-line "unknown command" error
// (with its "Did you mean this?" list) as one line; it is bad usage.
func unknownCommand(err error) (string, bool) {
	first, rest, _ := strings.Cut(err.Error(), "\n")
	if !strings.HasPrefix(first, "unknown command ") {
		return "", false
	}
	var suggestions []string
	for _, l := range strings.Split(rest, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasSuffix(l, "?") {
			suggestions = append(suggestions, l)
		}
	}
	if len(suggestions) > 0 {
		first += " (did you mean " + strings.Join(suggestions, " or ") + "?)"
	}
	return first + "; see meshctl --help", true
}

func (e Env) withDefaults() Env {
	if e.In == nil {
		e.In = os.Stdin
	}
	if e.Out == nil {
		e.Out = os.Stdout
	}
	if e.Err == nil {
		e.Err = os.Stderr
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.Terminal == nil {
		tty := false
		if f, ok := e.Out.(*os.File); ok {
			tty = term.IsTerminal(int(f.Fd()))
		}
		e.Terminal = &tty
	}
	return e
}

// app is the state shared by the commands of one run.
type app struct {
	env   *Env
	flags *kube.Flags
}

func newRoot(env *Env) *cobra.Command {
	a := &app{env: env, flags: kube.NewFlags()}
	root := &cobra.Command{
		Use:   "meshctl",
		Short: "Install, check and debug the Weft service mesh",
		Long: `meshctl installs Weft, checks that it is healthy, and explains what the mesh
does to a request: which endpoints, which Envoy listener, route and cluster,
which mTLS mode and which authorization policy.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(env.In)
	root.SetOut(env.Out)
	root.SetErr(env.Err)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	a.flags.AddFlags(root.PersistentFlags())
	must(root.RegisterFlagCompletionFunc("namespace", a.completeNamespaces))
	must(root.RegisterFlagCompletionFunc("context", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return a.flags.Contexts(), cobra.ShellCompDirectiveNoFileComp
	}))
	root.AddCommand(
		a.installCmd(), a.upgradeCmd(), a.uninstallCmd(),
		a.checkCmd(), a.injectCmd(),
		a.proxyStatusCmd(), a.proxyConfigCmd(),
		a.explainCmd(), a.analyzeCmd(), a.versionCmd(),
		a.traceCmd(), a.dashboardCmd(),
	)
	return root
}

// client connects (once per command) with the kubeconfig flags.
func (a *app) client(ctx context.Context) (*kube.Client, error) {
	if a.env.Client != nil {
		return a.env.Client, nil
	}
	c, err := a.flags.Connect(ctx)
	if err != nil {
		return nil, err
	}
	a.env.Client = c
	return c, nil
}

// namespace is -n, else the kubeconfig's, else "default".
func (a *app) namespace(c *kube.Client) string {
	if ns := a.flags.NamespaceFlag(); ns != "" {
		return ns
	}
	if c != nil && c.Namespace != "" {
		return c.Namespace
	}
	return "default"
}

// outputFlag adds -o to cmd and returns a getter that validates it.
func outputFlag(cmd *cobra.Command) func() (output.Format, error) {
	var s string
	cmd.Flags().StringVarP(&s, "output", "o", string(output.Table), "output format: table, json or yaml")
	must(cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(output.Formats(), cobra.ShellCompDirectiveNoFileComp)))
	return func() (output.Format, error) {
		f, err := output.ParseFormat(s)
		if err != nil {
			return "", usageError{err}
		}
		return f, nil
	}
}

// args wraps a cobra argument validator so its errors count as usage.
func args(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := v(cmd, a); err != nil {
			return usageError{fmt.Errorf("%w (see %s --help)", err, cmd.CommandPath())}
		}
		return nil
	}
}

// must panics on programming errors while building commands (flag
// registration), caught by Run's recover.
func must(err error) {
	if err != nil {
		panic(err)
	}
}
