package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/weftmesh/weft/meshctl/dashboard"
	"github.com/weftmesh/weft/meshctl/kube"
	"github.com/weftmesh/weft/meshctl/trace"
)

// DashboardPort is meshctl dashboard's default port on 127.0.0.1, next to
// Weft's 150xx ports without taking one of them (DESIGN.md).
const DashboardPort = 15030

func (a *app) dashboardCmd() *cobra.Command {
	var all bool
	var port, traces int
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Serve a web page with the service graph and the latest network-programming traces",
		Long: `Dashboard serves a page on http://127.0.0.1:<port>/ (loopback only) until
interrupted. It shows

  - the service graph of the namespace (-A: every meshed namespace):
    workloads call Services, Services send to the workloads behind them;
    each call is labelled with requests per second, 5xx share and p99
    latency, from every sidecar's Envoy stats on port 15090 (read through
    the API server's pod proxy). Where the servers' namespace records
    request metrics, a Service's edges to its workloads carry what each
    served, so a split between versions shows. Rates are the growth
    between two reads, so they appear after the second refresh;
  - the latest network-programming traces from the trace store (as
    meshctl trace shows them): when every node's rules and every proxy's
    config caught up with an EndpointSlice change.

Open the printed URL in a browser; the page refreshes itself.`,
		Example: `  meshctl dashboard -n bookinfo
  meshctl dashboard -A --port 8080 --interval 10s`,
		Args: args(cobra.NoArgs),
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "show every meshed namespace")
	cmd.Flags().IntVar(&port, "port", DashboardPort, "port on 127.0.0.1 to serve on (0 picks a free one)")
	cmd.Flags().DurationVar(&interval, "interval", 5*time.Second, "time between refreshes (at least 1s)")
	cmd.Flags().IntVar(&traces, "traces", 5, "number of traces shown")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if port < 0 || port > 65535 {
			return usageError{fmt.Errorf("--port %d: want 0 to 65535", port)}
		}
		if interval < time.Second {
			return usageError{fmt.Errorf("--interval %v: want at least 1s", interval)}
		}
		if traces <= 0 {
			return usageError{fmt.Errorf("--traces %d: want a positive number", traces)}
		}
		ctx := cmd.Context()
		c, err := a.client(ctx)
		if err != nil {
			return err
		}
		ns := a.namespace(c)
		if all {
			ns = ""
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if errors.Is(err, syscall.EADDRINUSE) {
			return kube.Userf("port %d on 127.0.0.1 is in use: pick another with --port", port)
		}
		if err != nil {
			return fmt.Errorf("listen on 127.0.0.1:%d: %w", port, err)
		}
		store := trace.NewForwarded(c)
		defer store.Close()
		srv := dashboard.New(dashboard.Config{
			Source: dashboard.KubeSource{Client: c}, Traces: store,
			Namespace: ns, Interval: interval, TraceLimit: traces, Now: time.Now,
		})
		scope := "namespace " + ns
		if ns == "" {
			scope = "all meshed namespaces"
		}
		fmt.Fprintf(a.env.Out, "Weft dashboard of %s: http://%s/ (refresh every %v; Ctrl-C to stop)\n", scope, ln.Addr(), interval)
		return serve(ctx, ln, srv)
	}
	return cmd
}

// serve runs the refresh loop and the HTTP server until ctx ends.
func serve(ctx context.Context, ln net.Listener, srv *dashboard.Server) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	refreshed := make(chan struct{})
	go func() {
		defer close(refreshed)
		srv.Run(ctx)
	}()
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-served:
	}
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer scancel()
	if serr := hs.Shutdown(sctx); serr != nil && err == nil {
		err = serr
	}
	cancel()
	<-refreshed
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("serve dashboard: %w", err)
	}
	return nil
}
