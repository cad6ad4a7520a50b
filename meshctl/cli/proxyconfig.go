package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/weftmesh/weft/api/annotation"
	"github.com/weftmesh/weft/meshctl/envoy"
	"github.com/weftmesh/weft/meshctl/kube"
	"github.com/weftmesh/weft/meshctl/output"
	"github.com/weftmesh/weft/meshctl/proxyconfig"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func (a *app) proxyConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "proxy-config listeners|clusters|routes|endpoints|secrets <pod>",
		Aliases: []string{"pc"},
		Short:   "Show a sidecar's Envoy configuration, read from its admin API",
		Long: `Proxy-config reads the sidecar's Envoy admin API (/config_dump, bound to
127.0.0.1:15000 in the pod) through an API server port-forward and summarises
one part of it as a table; -o json prints Envoy's own JSON of that part.
secrets shows the workload's SVID (SPIFFE ID, serial, expiry, and whether
its chain verifies against the trust bundle) and the trust bundle's roots.`,
		// Without RunE cobra prints the help and exits 0 for a misspelt
		// kind ("proxy-config secret <pod>").
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, argv []string) error {
			if len(argv) == 0 {
				return cmd.Help()
			}
			hint := ""
			if s := cmd.SuggestionsFor(argv[0]); len(s) > 0 {
				hint = " (did you mean " + strings.Join(s, " or ") + "?)"
			}
			return usageError{fmt.Errorf("unknown kind %q for meshctl proxy-config%s: want %s", argv[0], hint, strings.Join(proxyconfig.Kinds, ", "))}
		},
	}
	for _, kind := range proxyconfig.Kinds {
		cmd.AddCommand(a.proxyConfigKindCmd(kind))
	}
	return cmd
}

func (a *app) proxyConfigKindCmd(kind string) *cobra.Command {
	cmd := &cobra.Command{
		Use:               kind + " <pod>[.namespace]",
		Short:             "Show the sidecar's " + kind,
		Example:           fmt.Sprintf("  meshctl proxy-config %s httpbin-5bbd8f88d9-2f7gb -n default", kind),
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: a.completeMeshedPods,
	}
	format := outputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		f, err := format()
		if err != nil {
			return err
		}
		c, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		ns, name := splitPod(argv[0], a.namespace(c))
		dump, err := configDump(cmd.Context(), c, ns, name)
		if err != nil {
			return err
		}
		var v output.Tabular
		switch kind {
		case "listeners":
			v = proxyconfig.Listeners(dump)
		case "clusters":
			v = proxyconfig.Clusters(dump)
		case "routes":
			v = proxyconfig.Routes(dump)
		case "endpoints":
			v = proxyconfig.Endpoints(dump)
		case "secrets":
			v = proxyconfig.Secrets(dump, a.env.Now())
		}
		return output.Print(a.env.Out, f, v)
	}
	return cmd
}

// sidecarPod gets a pod and checks that it runs the sidecar.
func sidecarPod(ctx context.Context, c *kube.Client, ns, name string) (*corev1.Pod, error) {
	pod, err := c.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, podError(err, ns, name)
	}
	if _, ok := pod.Annotations[annotation.StatusAnnotation]; !ok {
		return nil, kube.Userf("pod %s/%s has no Weft sidecar, so it has no Envoy config (%s)", ns, name, injectionHint(ctx, c, ns))
	}
	if pod.Status.Phase != corev1.PodRunning {
		return nil, kube.Userf("pod %s/%s is %s, its sidecar is not running", ns, name, pod.Status.Phase)
	}
	return pod, nil
}

// configDump reads and parses the sidecar's /config_dump with endpoints.
func configDump(ctx context.Context, c *kube.Client, ns, name string) (*envoy.ConfigDump, error) {
	if _, err := sidecarPod(ctx, c, ns, name); err != nil {
		return nil, err
	}
	body, err := c.Envoy.Get(ctx, ns, name, "/config_dump?include_eds")
	if err != nil {
		return nil, kube.Userf("cannot read Envoy's admin API in pod %s/%s: %s", ns, name, kube.Message(err))
	}
	return envoy.Parse(body)
}
