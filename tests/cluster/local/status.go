package local

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Status prints the cluster's processes and nodes.
func Status(ctx context.Context, c Config, out io.Writer) error {
	s, err := loadState(c.statePath())
	if err != nil {
		return err
	}
	if len(s.Processes) == 0 {
		fmt.Fprintln(out, "no local cluster")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tPID\tSTATE")
	for _, p := range s.Processes {
		state := "running"
		if !p.Alive() {
			state = "gone"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", p.Name, p.PID, state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	fmt.Fprintln(tw, "\nNODE\tIP\tPOD CIDR\tREADY")
	for _, n := range nodes.Items {
		ip := ""
		for _, a := range n.Status.Addresses {
			if a.Type == "InternalIP" {
				ip = a.Address
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", n.Name, ip, n.Spec.PodCIDR, nodeReady(n))
	}
	fmt.Fprintf(tw, "\nkubeconfig: %s\n", c.KubeconfigPath())
	return tw.Flush()
}

// LoadImages imports the image tarballs into every node of a running cluster.
func LoadImages(ctx context.Context, c Config, out io.Writer) error {
	p := newProgress(out)
	return p.step("images imported into every node", func() error {
		return eachNode(c, func(n Node) error { return importImages(ctx, c, n) })
	}, nil)
}
