package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// summary is the distribution of one operation's latency.
type summary struct{ p50, p99, mean time.Duration }

func summarize(ds []time.Duration) summary {
	s := slices.Clone(ds)
	slices.Sort(s)
	var total time.Duration
	for _, d := range s {
		total += d
	}
	return summary{p50: percentile(s, 50), p99: percentile(s, 99), mean: total / time.Duration(len(s))}
}

// percentile uses the nearest-rank method on sorted samples.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (p*len(sorted) + 99) / 100
	return sorted[max(rank, 1)-1]
}

func printTable(w io.Writer, subjects []*subject) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "plugin\top\tn\tp50\tp99\tmean\t")
	means := map[string][]time.Duration{}
	for _, s := range subjects {
		for _, op := range []struct {
			name string
			ds   []time.Duration
		}{{"ADD", s.add}, {"DEL", s.del}, {"ADD+DEL", s.both}} {
			sum := summarize(op.ds)
			means[op.name] = append(means[op.name], sum.mean)
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t\n", s.name, op.name, len(op.ds), fmtDur(sum.p50), fmtDur(sum.p99), fmtDur(sum.mean))
		}
	}
	tw.Flush() //nolint:errcheck // stdout
	// Ratios: weft-bridge (subjects[0]) against the reference plugins, and
	// every further subject (weft-bridge+weft-redirect) against weft-bridge.
	for i := 1; i < len(subjects); i++ {
		a, b := 0, i
		if i > 1 {
			a, b = i, 0
		}
		for _, op := range []string{"ADD", "DEL", "ADD+DEL"} {
			m := means[op]
			fmt.Fprintf(w, "%s: %s mean is %.2fx %s's (%+.2fms)\n", op, subjects[a].name,
				float64(m[a])/float64(m[b]), subjects[b].name, float64(m[a]-m[b])/float64(time.Millisecond))
		}
	}
}
