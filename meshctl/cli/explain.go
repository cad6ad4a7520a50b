package cli

import (
	"context"
	"strings"

	"github.com/spf13/cobra"
	"github.com/weftmesh/weft/meshctl/explain"
	"github.com/weftmesh/weft/meshctl/kube"
	"github.com/weftmesh/weft/meshctl/output"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func (a *app) explainCmd() *cobra.Command {
	var path, method string
	cmd := &cobra.Command{
		Use:   "explain <source-pod> <destination>[:port]",
		Short: "Explain what happens to a request from a pod to a Service or pod, and why",
		Long: `Explain gives one verdict — ALLOWED, DENIED, PARTIAL (depends on the endpoint)
or FAILS — for a request from a pod to a Service or pod, and walks it through
every stage that decides it:

  source         the pod, its sidecar and its SPIFFE identity
  destination    the Service, its cluster IP, port and protocol
  endpoints      the ready endpoints behind it, with or without sidecar
  capture        whether the source's iptables hand the connection to Envoy
                 (exclusions, and weft-cni-node's redirect-rule findings)
  listener       the filter chain of the source's Envoy that matches
  route          the HTTP route and cluster Envoy selects (for --path)
  cluster        the cluster's endpoints and whether each gets mTLS
  mTLS           the mode in force at the destination (MeshTLS, resolved as
                 pilot does) and the destination Envoy's inbound chain
  authorization  which AuthorizationPolicy allows or denies it

The listener, route and cluster come from the source sidecar's live Envoy
config. The source is <pod>, <pod>.<namespace>, <namespace>/<pod> or
deploy/<name>; the destination is <service>[.<namespace>], pod/<name>, or an
IP, with :<port> (number or Service port name). Exit code 0 means ALLOWED.`,
		Example: `  meshctl explain curl-7d9f-x2 httpbin:8000
  meshctl explain deploy/curl -n shop httpbin.payments:http --path /status/200
  meshctl explain curl-7d9f-x2.shop pod/httpbin-5bbd-2f7gb:8080`,
		Args:              args(cobra.ExactArgs(2)),
		ValidArgsFunction: a.completeExplain,
	}
	format := outputFlag(cmd)
	cmd.Flags().StringVar(&path, "path", "/", "HTTP path of the request (route and policy matching)")
	cmd.Flags().StringVar(&method, "method", "GET", "HTTP method of the request (policy matching)")
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
		srcNS, srcPod, err := resolveSource(cmd.Context(), c, argv[0], ns)
		if err != nil {
			return err
		}
		facts, err := explain.Collect(cmd.Context(), c, explain.Request{
			// Unqualified names resolve in the source's namespace, as its DNS
			// search path does.
			SourceNamespace: srcNS, SourcePod: srcPod, Target: argv[1], Namespace: srcNS,
			Path: path, Method: strings.ToUpper(method),
		})
		if err != nil {
			return err
		}
		ex := explain.Evaluate(facts)
		if err := output.Print(a.env.Out, f, ex); err != nil {
			return err
		}
		if ex.Verdict != explain.Allowed {
			return errProblems
		}
		return nil
	}
	return cmd
}

// resolveSource reads pod, pod.namespace, namespace/pod or deploy/<name>.
func resolveSource(ctx context.Context, c *kube.Client, arg, ns string) (string, string, error) {
	for _, prefix := range []string{"deploy/", "deployment/", "deployments/"} {
		name, ok := strings.CutPrefix(arg, prefix)
		if !ok {
			continue
		}
		dns, dname := splitPod(name, ns)
		d, err := c.Kube.AppsV1().Deployments(dns).Get(ctx, dname, metav1.GetOptions{})
		if err != nil {
			if strings.Contains(err.Error(), "not found") {
				return "", "", kube.Userf("deployment %s not found in namespace %s", dname, dns)
			}
			return "", "", err
		}
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil {
			return "", "", err
		}
		pods, err := c.Kube.CoreV1().Pods(dns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			return "", "", err
		}
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				return dns, p.Name, nil
			}
		}
		return "", "", kube.Userf("deployment %s/%s has no running pod", dns, dname)
	}
	if strings.Contains(arg, "/") {
		n, p, _ := strings.Cut(arg, "/")
		return n, p, nil
	}
	// "name.ns" only when ns exists as a namespace; pod names may contain dots.
	if i := strings.LastIndexByte(arg, '.'); i > 0 {
		if _, err := c.Kube.CoreV1().Namespaces().Get(ctx, arg[i+1:], metav1.GetOptions{}); err == nil {
			return arg[i+1:], arg[:i], nil
		}
	}
	return ns, arg, nil
}
