package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/weftmesh/weft/meshctl/kube"
	"github.com/weftmesh/weft/meshctl/output"
	"github.com/weftmesh/weft/meshctl/trace"
)

func (a *app) traceCmd() *cobra.Command {
	var q trace.Query
	var all bool
	cmd := &cobra.Command{
		Use:   "trace [TRACE_ID]",
		Short: "List recent traces, or show one trace's spans as a timeline",
		Long: `Trace reads the trace store that runs beside the OpenTelemetry Collector
(pod app=weft-otel-collector in weft-system, port 16686, reached through a
port-forward).

Without a trace ID it lists recent traces, newest first. By default these are
network-programming traces: one per EndpointSlice change, whose root span is
endpointslice.change; --all (or --name '') lists every trace, --name another
root span, --service the traces with a span of that service.name.

With a trace ID it prints the trace's spans as a tree (children under their
parent) with each span's service and key attributes (node of a
weft-proxy.sync, proxy and ACK/NACK of a pilot.push), its start offset,
duration and a bar scaled to the trace, then how long the change took to reach
every node's rules and every proxy's config, measured from the change.
-o json prints the same timeline as data.`,
		Example: `  meshctl trace
  meshctl trace --all --service httpbin --limit 5
  meshctl trace 4bf92f3577b34da6a3ce929d0e0e4736
  meshctl trace 4bf92f3577b34da6a3ce929d0e0e4736 -o json`,
		Args: args(cobra.MaximumNArgs(1)),
	}
	format := outputFlag(cmd)
	cmd.Flags().StringVar(&q.Name, "name", trace.SpanChange, "list traces whose root span has this name ('' for any)")
	cmd.Flags().StringVar(&q.Service, "service", "", "list traces with a span of this service.name")
	cmd.Flags().IntVar(&q.Limit, "limit", 20, "list at most this many traces")
	cmd.Flags().BoolVar(&all, "all", false, "list traces of any root span (same as --name '')")
	must(cmd.RegisterFlagCompletionFunc("name", cobra.FixedCompletions(
		[]string{trace.SpanChange, trace.SpanSync, trace.SpanPush}, cobra.ShellCompDirectiveNoFileComp)))
	must(cmd.RegisterFlagCompletionFunc("service", cobra.FixedCompletions(
		[]string{"weft-pilot", "weft-proxy", "weft-agent", "weft-cni-node", "weft-injector"}, cobra.ShellCompDirectiveNoFileComp)))
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		f, err := format()
		if err != nil {
			return err
		}
		if q.Limit <= 0 {
			return usageError{fmt.Errorf("--limit %d: want a positive number", q.Limit)}
		}
		if all {
			q.Name = ""
		}
		var id string
		if len(argv) == 1 {
			if id, err = trace.ParseTraceID(argv[0]); err != nil {
				return usageError{err}
			}
		}
		c, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		store := trace.NewForwarded(c)
		defer store.Close()
		if id == "" {
			traces, err := store.List(cmd.Context(), q)
			if err != nil {
				return storeError(err)
			}
			return output.Print(a.env.Out, f, trace.List{Traces: traces, Query: q, Now: a.env.Now()})
		}
		tr, err := store.Get(cmd.Context(), id)
		var nf *trace.NotFoundError
		if errors.As(err, &nf) {
			return kube.Userf("trace %s is not in the trace store (it keeps recent traces only; meshctl trace --all lists them)", id)
		}
		if err != nil {
			return storeError(err)
		}
		return output.Print(a.env.Out, f, trace.Build(*tr))
	}
	return cmd
}

// storeError words a failed store request (connection problems are
// already sentences).
func storeError(err error) error {
	var ae *trace.AnswerError
	if errors.As(err, &ae) {
		return kube.Userf("%s", ae.Error())
	}
	return err
}
