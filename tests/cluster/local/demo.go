package local

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/weftmesh/weft/api/annotation"
	"github.com/weftmesh/weft/install"
	"github.com/weftmesh/weft/tests/e2e/framework"
	"github.com/weftmesh/weft/tests/samples"
	corev1 "k8s.io/api/core/v1"
)

// DemoNamespace holds the demo's sample apps.
const DemoNamespace = "weft-demo"

// Demo deploys httpbin and curl into a meshed namespace, a replica of each on
// every node, and has every curl pod call httpbin by its Service name through
// the sidecars: it prints who answered from which node and the client's
// SPIFFE identity that httpbin saw, which only mutual TLS can convey.
func Demo(ctx context.Context, c Config, out io.Writer) error {
	fw, err := framework.Load(c.KubeconfigPath())
	if err != nil {
		return err
	}
	p := newProgress(out)
	var clients []corev1.Pod
	steps := []struct {
		what string
		fn   func() error
	}{
		{"namespace " + DemoNamespace, func() error {
			if err := fw.DeleteNamespace(ctx, DemoNamespace, 2*time.Minute); err != nil {
				return err
			}
			return fw.CreateNamespace(ctx, DemoNamespace, map[string]string{annotation.InjectionLabel: annotation.InjectionEnabled})
		}},
		{fmt.Sprintf("httpbin and curl (with sidecars): %d replicas each, spread over the nodes", c.Nodes), func() error {
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
			if _, err = fw.WaitPodsReady(ctx, DemoNamespace, "app=httpbin", c.Nodes, 2*time.Minute); err != nil {
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
	return meshRequests(ctx, fw, clients, out)
}

func setReplicas(obj map[string]any, n int) error {
	spec, ok := obj["spec"].(map[string]any)
	if !ok {
		return fmt.Errorf("deployment without spec")
	}
	spec["replicas"] = int64(n)
	return nil
}

// demoRounds is how many requests each client sends.
const demoRounds = 3

// meshRequests has every client pod call httpbin by Service name and prints
// one row per request: where it came from, who served it, and the identities
// in the x-forwarded-client-cert header the server's sidecar added.
func meshRequests(ctx context.Context, fw *framework.Cluster, clients []corev1.Pod, out io.Writer) error {
	fmt.Fprintln(out, "\ncurl → http://httpbin:8000/headers through the sidecars (mutual TLS):")
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FROM NODE\tSERVED BY\tON NODE\tCLIENT IDENTITY SEEN BY HTTPBIN")
	failed, crossNode, total := 0, 0, 0
	for _, cl := range clients {
		for range demoRounds {
			total++
			r, err := demoRequest(ctx, fw, cl)
			if err != nil {
				failed++
				fmt.Fprintf(tw, "%s\tFAILED: %v\t\t\n", cl.Spec.NodeName, err)
				continue
			}
			if r.Node != cl.Spec.NodeName {
				crossNode++
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", cl.Spec.NodeName, r.Hostname, r.Node, r.ClientID)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d requests failed", failed, total)
	}
	if crossNode == 0 {
		return fmt.Errorf("none of %d requests crossed nodes: every client was served on its own node", total)
	}
	fmt.Fprintf(out, "\n%d of %d requests succeeded over mutual TLS (%d crossed nodes); every client was identified by its SPIFFE ID\n", total, total, crossNode)
	return nil
}

type demoReply struct {
	Hostname, Node, ClientID string
}

var xfccURI = regexp.MustCompile(`URI=(spiffe://[^;,]+)`)

// demoRequest sends one request from a curl pod; it fails unless httpbin's
// sidecar vouched for the client's SPIFFE ID.
func demoRequest(ctx context.Context, fw *framework.Cluster, cl corev1.Pod) (demoReply, error) {
	var reply demoReply
	var last error
	// The first requests may race the sidecars' first configuration.
	for attempt := 0; attempt < 20; attempt++ {
		stdout, _, err := fw.Exec(ctx, cl.Namespace, cl.Name, "curl", "curl", "-timeout", "5s", "http://httpbin:8000/headers")
		var echo struct {
			Hostname, Node string
			Headers        map[string][]string
		}
		if err == nil {
			err = json.Unmarshal([]byte(stdout), &echo)
		}
		if err == nil {
			m := xfccURI.FindStringSubmatch(strings.Join(echo.Headers["X-Forwarded-Client-Cert"], ","))
			if m == nil {
				return reply, fmt.Errorf("served by %s without mutual TLS", echo.Hostname)
			}
			return demoReply{Hostname: echo.Hostname, Node: echo.Node, ClientID: m[1]}, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return reply, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return reply, last
}
