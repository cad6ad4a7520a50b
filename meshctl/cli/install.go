package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/weftmesh/weft/api/annotation"
	"github.com/weftmesh/weft/install"
	"github.com/weftmesh/weft/meshctl/kube"
	"github.com/weftmesh/weft/meshctl/lifecycle"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// valuesFlags are the install values flags shared by install, upgrade,
// uninstall and check --pre.
type valuesFlags struct {
	file       string
	sets       []string
	components string
}

func (v *valuesFlags) add(cmd *cobra.Command, short string) {
	cmd.Flags().StringVarP(&v.file, "values", short, "", "values file (YAML), as written by the local cluster to .cache/cluster/values.yaml; - reads stdin")
	cmd.Flags().StringArrayVar(&v.sets, "set", nil, "override one value, e.g. --set tag=1.2.0 --set components.dns=true (repeatable)")
	cmd.Flags().StringVar(&v.components, "components", "", "components to act on, overriding the values: all or a list of cni,proxy,dns,mesh")
	must(cmd.MarkFlagFilename("values", "yaml", "yml"))
	must(cmd.RegisterFlagCompletionFunc("components", cobra.FixedCompletions([]string{"all", "cni", "proxy", "dns", "mesh"}, cobra.ShellCompDirectiveNoFileComp)))
}

func (v *valuesFlags) values(in io.Reader) (install.Values, error) {
	var data []byte
	var err error
	switch v.file {
	case "":
	case "-":
		data, err = io.ReadAll(in)
	default:
		data, err = os.ReadFile(v.file)
	}
	if err != nil {
		return install.Values{}, fmt.Errorf("read values: %w", err)
	}
	vals, err := lifecycle.ReadValues(data, v.sets)
	if err != nil {
		return install.Values{}, usageError{err}
	}
	if v.components != "" {
		c, err := lifecycle.ParseComponents(v.components)
		if err != nil {
			return install.Values{}, usageError{err}
		}
		vals.Components = c
	}
	return vals, nil
}

type lifecycleFlags struct {
	values  valuesFlags
	dryRun  bool
	timeout time.Duration
}

func (f *lifecycleFlags) add(cmd *cobra.Command, verb string) {
	f.values.add(cmd, "f")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "print the manifests that would be "+verb+" and change nothing")
	cmd.Flags().DurationVar(&f.timeout, "wait-timeout", 5*time.Minute, "how long to wait for each phase (components ready, objects gone)")
}

func (a *app) installCmd() *cobra.Command {
	var f lifecycleFlags
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install Weft: apply the manifests and wait until every component is ready",
		Long: `Install renders Weft's manifests from the values (defaults, -f file, --set),
applies them with server-side apply (field manager meshctl) — CRDs first,
established before the rest — and waits with a progress display until every
Deployment and DaemonSet is ready. When a component does not become ready it
says which pod and why. Installing again is harmless (apply is idempotent).`,
		Example: `  meshctl install
  meshctl install -f .cache/cluster/values.yaml
  meshctl install --components mesh --set tag=1.2.0
  meshctl install --dry-run > weft.yaml`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runInstall(cmd.Context(), f, false)
		},
	}
	f.add(cmd, "applied")
	return cmd
}

func (a *app) upgradeCmd() *cobra.Command {
	var f lifecycleFlags
	cmd := &cobra.Command{
		Use:   "upgrade",
		Short: "Upgrade an installed Weft to these manifests and wait for the rollout",
		Long: `Upgrade applies the manifests of the values like install, but first checks
that Weft is installed and shows the version change, then waits for every
component to roll out and lists meshed pods whose sidecar is now older than
the control plane (restart them to upgrade their proxies).`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runInstall(cmd.Context(), f, true)
		},
	}
	f.add(cmd, "applied")
	return cmd
}

func (a *app) runInstall(ctx context.Context, f lifecycleFlags, upgrade bool) error {
	vals, err := f.values.values(a.env.In)
	if err != nil {
		return err
	}
	plan, err := lifecycle.NewPlan(vals)
	if err != nil {
		return err
	}
	if f.dryRun {
		stream, err := install.Render(vals)
		if err != nil {
			return err
		}
		_, err = a.env.Out.Write(stream)
		return err
	}
	c, err := a.client(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	verb := "Installing"
	if upgrade {
		verb = "Upgrading"
		from, err := installedImage(ctx, c)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.env.Out, "Upgrading Weft: control plane %s → %s\n", from, vals.Image("pilot"))
	} else {
		fmt.Fprintf(a.env.Out, "%s Weft %s (components %s) on %s\n", verb, vals.Tag, lifecycle.ComponentNames(vals.Components), c.Host)
	}
	in, err := a.installer(c, f.timeout)
	if err != nil {
		return err
	}
	if err := in.Install(ctx, plan); err != nil {
		return err
	}
	fmt.Fprintf(a.env.Out, "Weft is ready (%v). Next: meshctl check\n", time.Since(start).Round(100*time.Millisecond))
	if upgrade && vals.Components.Mesh {
		return a.reportOldSidecars(ctx, c, vals.Image("sidecar"))
	}
	return nil
}

func (a *app) installer(c *kube.Client, timeout time.Duration) (*lifecycle.Installer, error) {
	cfg := lifecycle.Config{Kube: c.Kube, Dynamic: c.Dynamic, Out: a.env.Out, Terminal: *a.env.Terminal, Timeout: timeout}
	if a.env.Applier != nil {
		cfg.Applier = a.env.Applier
	} else {
		ap, err := install.NewApplier(c.Config, lifecycle.FieldManager)
		if err != nil {
			return nil, err
		}
		cfg.Applier = ap
	}
	if a.env.Poll > 0 {
		cfg.Poll = a.env.Poll
	}
	return lifecycle.New(cfg), nil
}

// installedImage is the running control plane's image; an error says Weft
// is not installed.
func installedImage(ctx context.Context, c *kube.Client) (string, error) {
	d, err := c.Kube.AppsV1().Deployments(ControlPlaneNamespace).Get(ctx, "weft-pilot", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, nerr := c.Kube.CoreV1().Namespaces().Get(ctx, ControlPlaneNamespace, metav1.GetOptions{}); nerr == nil {
			return "(no control plane)", nil
		}
		return "", kube.Userf("Weft is not installed in this cluster (no namespace %s): run meshctl install", ControlPlaneNamespace)
	}
	if err != nil {
		return "", fmt.Errorf("read the control plane: %w", err)
	}
	if cs := d.Spec.Template.Spec.Containers; len(cs) > 0 {
		return cs[0].Image, nil
	}
	return "(unknown)", nil
}

func (a *app) reportOldSidecars(ctx context.Context, c *kube.Client, want string) error {
	pods, err := c.Kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	old := map[string]int{}
	for _, p := range pods.Items {
		st, err := annotation.ParseStatus(p.Annotations[annotation.StatusAnnotation])
		if err == nil && st.Image != want {
			old[p.Namespace]++
		}
	}
	if len(old) == 0 {
		return nil
	}
	nss := make([]string, 0, len(old))
	for ns, n := range old {
		nss = append(nss, fmt.Sprintf("%s (%d)", ns, n))
	}
	sort.Strings(nss)
	fmt.Fprintf(a.env.Out, "Meshed pods still run an older sidecar in: %s\n  restart their workloads to upgrade the proxies, e.g. kubectl rollout restart deployment -n <namespace>\n", strings.Join(nss, ", "))
	return nil
}

func (a *app) uninstallCmd() *cobra.Command {
	var f lifecycleFlags
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove Weft: node state, manifests, runtime objects and CRDs",
		Long: `Uninstall removes what Weft created, for the components the values enable
(or --components):

  - cni, proxy: the node agents are stopped, then a short-lived DaemonSet
    weft-node-cleanup runs "weft-cni-node --cleanup" (conflist, plugins, routes,
    masquerade rules) and "weft-proxy --cleanup" (every WEFT- chain it owns) on
    every node, and is deleted again;
  - mesh: the injection webhook first, then pilot and the injector, the Secrets
    weft-ca and weft-injector-tls, the weft-root-cert ConfigMaps of every
    namespace and the mesh CRDs (with every MeshTLS and policy in them);
    Gateway API CRDs only when no other manager owns them;
  - the rendered objects of each component in reverse order, and the namespace
    weft-system when no other Weft component remains in it.

Pods that already run a sidecar keep it until they are restarted; namespace
labels (weft-injection) are left as they are. Both are listed at the end.`,
		Example: `  meshctl uninstall
  meshctl uninstall -f .cache/cluster/values.yaml --components mesh`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runUninstall(cmd.Context(), f) },
	}
	f.add(cmd, "deleted")
	return cmd
}

func (a *app) runUninstall(ctx context.Context, f lifecycleFlags) error {
	vals, err := f.values.values(a.env.In)
	if err != nil {
		return err
	}
	plan, err := lifecycle.NewPlan(vals)
	if err != nil {
		return err
	}
	if f.dryRun {
		stream, err := install.Render(vals)
		if err != nil {
			return err
		}
		_, err = a.env.Out.Write(stream)
		return err
	}
	c, err := a.client(ctx)
	if err != nil {
		return err
	}
	keep, err := otherComponents(ctx, c, vals.Components)
	if err != nil {
		return err
	}
	opts := lifecycle.UninstallOptions{KeepNamespace: len(keep) > 0}
	if _, err := c.Kube.CoreV1().Namespaces().Get(ctx, ControlPlaneNamespace, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		fmt.Fprintf(a.env.Out, "Namespace %s does not exist: removing what is left outside it\n", ControlPlaneNamespace)
		opts.NoNodeCleanup = true
	}
	fmt.Fprintf(a.env.Out, "Uninstalling Weft (components %s) from %s\n", lifecycle.ComponentNames(vals.Components), c.Host)
	in, err := a.installer(c, f.timeout)
	if err != nil {
		return err
	}
	start := time.Now()
	left, err := in.Uninstall(ctx, plan, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.env.Out, "Weft components %s removed (%v).\n", lifecycle.ComponentNames(vals.Components), time.Since(start).Round(100*time.Millisecond))
	printLeftovers(a.env.Out, left, keep)
	return nil
}

// otherComponents lists the installed components outside sel, which keep
// the namespace alive.
func otherComponents(ctx context.Context, c *kube.Client, sel install.Components) ([]string, error) {
	probes := []struct {
		on         bool
		name, kind string
		object     string
	}{
		{sel.CNI, "cni", "DaemonSet", "weft-cni-node"},
		{sel.Proxy, "proxy", "DaemonSet", "weft-proxy"},
		{sel.Mesh, "mesh", "Deployment", "weft-pilot"},
		{sel.Mesh, "mesh", "Deployment", "weft-injector"},
	}
	var out []string
	for _, p := range probes {
		if p.on || slices.Contains(out, p.name) {
			continue
		}
		var err error
		if p.kind == "DaemonSet" {
			_, err = c.Kube.AppsV1().DaemonSets(ControlPlaneNamespace).Get(ctx, p.object, metav1.GetOptions{})
		} else {
			_, err = c.Kube.AppsV1().Deployments(ControlPlaneNamespace).Get(ctx, p.object, metav1.GetOptions{})
		}
		switch {
		case err == nil:
			out = append(out, p.name)
		case !apierrors.IsNotFound(err):
			return nil, fmt.Errorf("look for %s %s: %w", p.kind, p.object, err)
		}
	}
	return out, nil
}

func printLeftovers(w io.Writer, left lifecycle.Leftovers, keep []string) {
	if len(keep) > 0 {
		fmt.Fprintf(w, "  kept namespace %s: components %s still run there\n", ControlPlaneNamespace, strings.Join(keep, ","))
	}
	if len(left.SidecarPods) > 0 {
		var nss []string
		for ns, n := range left.SidecarPods {
			nss = append(nss, fmt.Sprintf("%s (%d)", ns, n))
		}
		sort.Strings(nss)
		fmt.Fprintf(w, "  pods still running a sidecar: %s — restart them to remove it (kubectl rollout restart deployment -n <namespace>)\n", strings.Join(nss, ", "))
	}
	if len(left.LabelledNamespaces) > 0 {
		fmt.Fprintf(w, "  namespaces still labelled %s=%s: %s (remove with kubectl label namespace <ns> %s-)\n",
			annotation.InjectionLabel, annotation.InjectionEnabled, strings.Join(left.LabelledNamespaces, ", "), annotation.InjectionLabel)
	}
	for _, c := range left.KeptCRDs {
		fmt.Fprintf(w, "  kept CRD %s\n", c)
	}
	if left.PluggedCA {
		fmt.Fprintf(w, "  kept Secret %s/%s (your CA)\n", ControlPlaneNamespace, lifecycle.PluggedCASecret)
	}
}
