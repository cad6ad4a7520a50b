package local

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/weftmesh/weft/install"
	"github.com/weftmesh/weft/tests/e2e/framework"
	"github.com/weftmesh/weft/tests/samples"
	corev1 "k8s.io/api/core/v1"
)

// DemoNamespace holds the demo's sample apps.
const DemoNamespace = "weft-demo"

// Demo deploys httpbin and curl with a replica on every node and has every
// curl pod call every httpbin pod, printing who answered from which node.
func Demo(ctx context.Context, c Config, out io.Writer) error {
	fw, err := framework.Load(c.KubeconfigPath())
	if err != nil {
		return err
	}
	p := newProgress(out)
	var clients, servers []corev1.Pod
	steps := []struct {
		what string
		fn   func() error
	}{
		{"namespace " + DemoNamespace, func() error {
			if err := fw.DeleteNamespace(ctx, DemoNamespace, 2*time.Minute); err != nil {
				return err
			}
			return fw.CreateNamespace(ctx, DemoNamespace, nil)
		}},
		{fmt.Sprintf("httpbin and curl: %d replicas each, spread over the nodes", c.Nodes), func() error {
			for _, manifest := range [][]byte{samples.HTTPBin, samples.Curl} {
				objs, err := install.Decode(manifest)
				if err != nil {
					return err
				}
				for _, o := range objs {
					o.SetNamespace(DemoNamespace)
					if o.GetKind() == "Deployment" {
						if err := setReplicas(o.Object, c.Nodes); err != nil {
							return err
						}
					}
				}
				a, err := install.NewApplier(fw.Config, "weft-demo")
				if err != nil {
					return err
				}
				if err := a.Apply(ctx, objs); err != nil {
					return err
				}
			}
			if servers, err = fw.WaitPodsReady(ctx, DemoNamespace, "app=httpbin", c.Nodes, 2*time.Minute); err != nil {
				return err
			}
			clients, err = fw.WaitPodsReady(ctx, DemoNamespace, "app=curl", c.Nodes, 2*time.Minute)
			return err
		}},
	}
	for _, st := range steps {
		if err := p.step(st.what, st.fn, nil); err != nil {
			return err
		}
	}
	return requestMatrix(ctx, fw, clients, servers, out)
}

func setReplicas(obj map[string]any, n int) error {
	spec, ok := obj["spec"].(map[string]any)
	if !ok {
		return fmt.Errorf("deployment without spec")
	}
	spec["replicas"] = int64(n)
	return nil
}

// requestMatrix has every client pod call every server pod by pod IP and
// prints one row per request.
func requestMatrix(ctx context.Context, fw *framework.Cluster, clients, servers []corev1.Pod, out io.Writer) error {
	fmt.Fprintln(out, "\npod-to-pod requests (curl → httpbin by pod IP):")
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FROM NODE\tTO NODE\tTARGET\tRESULT\tSERVED BY")
	failed, crossNode := 0, 0
	for _, cl := range clients {
		for _, sv := range servers {
			url := fmt.Sprintf("http://%s:8080/", sv.Status.PodIP)
			result, servedBy := "ok", ""
			stdout, _, err := fw.Exec(ctx, cl.Namespace, cl.Name, "curl", "curl", "-timeout", "5s", url)
			var echo struct{ Hostname, Node string }
			if err == nil {
				err = json.Unmarshal([]byte(stdout), &echo)
			}
			switch {
			case err != nil:
				result, failed = "FAILED: "+err.Error(), failed+1
			case echo.Hostname != sv.Name:
				result, failed = "WRONG POD", failed+1
			default:
				servedBy = fmt.Sprintf("%s on %s", echo.Hostname, echo.Node)
			}
			if cl.Spec.NodeName != sv.Spec.NodeName {
				crossNode++
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cl.Spec.NodeName, sv.Spec.NodeName, url, result, servedBy)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	total := len(clients) * len(servers)
	if failed > 0 {
		return fmt.Errorf("%d of %d requests failed", failed, total)
	}
	fmt.Fprintf(out, "\n%d of %d requests succeeded (%d crossed nodes)\n", total, total, crossNode)
	return nil
}
