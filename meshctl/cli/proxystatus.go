package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/weftmesh/weft/api/annotation"
	"github.com/weftmesh/weft/meshctl/kube"
	"github.com/weftmesh/weft/meshctl/output"
	"github.com/weftmesh/weft/meshctl/proxystatus"
	"github.com/weftmesh/weft/pilot/generator"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func (a *app) proxyStatusCmd() *cobra.Command {
	var all bool
	var staleAfter time.Duration
	cmd := &cobra.Command{
		Use:     "proxy-status [pod[.namespace]]",
		Aliases: []string{"ps"},
		Short:   "Show every proxy's xDS sync state (SYNCED, STALE with age, NACKED with Envoy's error)",
		Long: `Proxy-status reads pilot's /debug/syncz through the API server and shows, for
every connected sidecar and each xDS type (CDS, LDS, EDS, RDS; SRDS with
tracing on), whether it acknowledged the config pilot wants it to have:
SYNCED; STALE (sent or due, not acknowledged yet, with its age); or NACKED
with Envoy's error message.
Meshed pods whose sidecar runs but is not connected are listed as NOT
CONNECTED. The exit code is 1 when a proxy is NACKED, not connected, or STALE
for longer than --stale-after.`,
		Example: `  meshctl proxy-status -A
  meshctl proxy-status httpbin-5bbd8f88d9-2f7gb.default -o json`,
		Args:              args(cobra.MaximumNArgs(1)),
		ValidArgsFunction: a.completeMeshedPods,
	}
	format := outputFlag(cmd)
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "show proxies of every namespace")
	cmd.Flags().DurationVar(&staleAfter, "stale-after", time.Minute, "a type STALE for longer is a problem (exit 1)")
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		f, err := format()
		if err != nil {
			return err
		}
		c, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		ns := a.namespace(c)
		opts := proxystatus.Options{Now: a.env.Now(), StaleAfter: staleAfter}
		if len(argv) == 1 {
			pns, pod := splitPod(argv[0], ns)
			opts.Pod, ns = generator.NodeID(pns, pod), pns
			all = false
		}
		listNS := ns
		if all {
			listNS = ""
		} else {
			opts.Namespace = ns
		}
		snap, err := proxystatus.Collect(cmd.Context(), c, listNS)
		if err != nil {
			return err
		}
		rep := proxystatus.Build(snap, opts)
		if opts.Pod != "" && len(rep.Proxies) == 0 {
			return a.explainNoProxy(cmd.Context(), c, opts.Pod)
		}
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

// splitPod reads "pod", "pod.namespace" or "namespace/pod".
func splitPod(arg, defaultNS string) (ns, pod string) {
	if n, p, ok := strings.Cut(arg, "/"); ok {
		return n, p
	}
	if i := strings.LastIndexByte(arg, '.'); i > 0 {
		return arg[i+1:], arg[:i]
	}
	return defaultNS, arg
}

// explainNoProxy says why a named pod has no proxy status.
func (a *app) explainNoProxy(ctx context.Context, c *kube.Client, id string) error {
	ns, name, _ := generator.ParseNodeID(id)
	pod, err := c.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return podError(err, ns, name)
	}
	if _, ok := pod.Annotations[annotation.StatusAnnotation]; !ok {
		return kube.Userf("pod %s/%s has no Weft sidecar (%s)", ns, name, injectionHint(ctx, c, ns))
	}
	return kube.Userf("pod %s/%s has a sidecar but it is not connected to pilot (pod phase %s): kubectl logs -n %s %s -c weft-sidecar", ns, name, pod.Status.Phase, ns, name)
}

// injectionHint says how to mesh a namespace's pods.
func injectionHint(ctx context.Context, c *kube.Client, ns string) string {
	n, err := c.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err == nil && n.Labels[annotation.InjectionLabel] == annotation.InjectionEnabled {
		return fmt.Sprintf("namespace %s is labelled %s=enabled: the pod was created before, or opted out; restart it", ns, annotation.InjectionLabel)
	}
	return fmt.Sprintf("label the namespace: kubectl label namespace %s %s=enabled, then restart the pod", ns, annotation.InjectionLabel)
}

// podError words a failed pod lookup.
func podError(err error, ns, name string) error {
	if strings.Contains(err.Error(), "not found") && !strings.Contains(err.Error(), "forbidden") {
		return kube.Userf("pod %s not found in namespace %s", name, ns)
	}
	return fmt.Errorf("get pod %s/%s: %w", ns, name, err)
}

// completionClient connects for shell completion, which must answer
// quickly or not at all.
func (a *app) completionClient(cmd *cobra.Command) (context.Context, *kube.Client, func(), bool) {
	ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
	c, err := a.client(ctx)
	if err != nil {
		cancel()
		return nil, nil, nil, false
	}
	return ctx, c, cancel, true
}

// completeMeshedPods completes pod names with a sidecar in the namespace.
func (a *app) completeMeshedPods(cmd *cobra.Command, argv []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(argv) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, c, cancel, ok := a.completionClient(cmd)
	if !ok {
		return nil, cobra.ShellCompDirectiveError
	}
	defer cancel()
	pods, err := c.Kube.CoreV1().Pods(a.namespace(c)).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var out []string
	for _, p := range pods.Items {
		if _, ok := p.Annotations[annotation.StatusAnnotation]; ok && strings.HasPrefix(p.Name, toComplete) {
			out = append(out, p.Name)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeExplain completes explain's source pod, then the destination
// Service of the namespace.
func (a *app) completeExplain(cmd *cobra.Command, argv []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(argv) != 1 {
		return a.completeMeshedPods(cmd, argv, toComplete)
	}
	ctx, c, cancel, ok := a.completionClient(cmd)
	if !ok {
		return nil, cobra.ShellCompDirectiveError
	}
	defer cancel()
	svcs, err := c.Kube.CoreV1().Services(a.namespace(c)).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var out []string
	for _, s := range svcs.Items {
		if strings.HasPrefix(s.Name, toComplete) {
			out = append(out, s.Name)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeNamespaces completes -n.
func (a *app) completeNamespaces(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	ctx, c, cancel, ok := a.completionClient(cmd)
	if !ok {
		return nil, cobra.ShellCompDirectiveError
	}
	defer cancel()
	nss, err := c.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var out []string
	for _, n := range nss.Items {
		if strings.HasPrefix(n.Name, toComplete) {
			out = append(out, n.Name)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
