package trace

import (
	"fmt"
	"io"
	"math"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/weftmesh/weft/meshctl/output"
)

// Width is the terminal width the timeline table fits (the bar takes
// what the text columns leave).
const Width = 100

// Column limits of the timeline table: long names are cut with "…" so the
// bar keeps at least minBar cells.
const (
	maxSpanCol    = 47
	maxServiceCol = 14
	startCol      = 7
	durationCol   = 8
	minBar        = 16
	gap           = 2
)

// WriteTable prints the trace header, one line per span with its bar, and
// the convergence sentence.
func (tl Timeline) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "trace %s", tl.TraceID)
	if c := tl.Change; c != nil {
		fmt.Fprintf(&b, "  %s", c.String())
	}
	b.WriteString("\n")
	if len(tl.Spans) == 0 {
		b.WriteString("no spans\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "started %s, lasted %s, %d spans\n\n", tl.Start.UTC().Format("2006-01-02T15:04:05.000Z07:00"), Short(tl.total), len(tl.Spans))

	spanW, svcW := len("SPAN"), len("SERVICE")
	for _, r := range tl.Spans {
		spanW = max(spanW, utf8.RuneCountInString(r.label(1<<20)))
		svcW = max(svcW, utf8.RuneCountInString(r.Service))
	}
	spanW, svcW = min(spanW, maxSpanCol), min(svcW, maxServiceCol)
	barW := max(Width-(spanW+gap+svcW+gap+startCol+gap+durationCol+gap)-2, minBar)

	axis := "0" + pad("", barW+2-1-len(Short(tl.total)), false) + Short(tl.total)
	writeRow(&b, spanW, svcW, "SPAN", "SERVICE", "START", "DURATION", axis)
	for _, r := range tl.Spans {
		writeRow(&b, spanW, svcW, r.label(spanW), output.Dash(r.Service), "+"+Short(r.offset), Short(r.duration), "|"+Bar(r.offset, r.duration, tl.total, barW, r.Error)+"|")
	}
	if c := tl.Convergence; c != nil {
		fmt.Fprintf(&b, "\n%s\n", c.Sentence(tl.Change))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeRow(b *strings.Builder, spanW, svcW int, span, svc, start, dur, bar string) {
	sep := strings.Repeat(" ", gap)
	b.WriteString(pad(span, spanW, false) + sep + pad(svc, svcW, false) + sep + pad(start, startCol, true) + sep + pad(dur, durationCol, true) + sep + bar)
	b.WriteString("\n")
}

// label is the SPAN cell in at most width columns: the tree, the name and
// the key attributes, the subject cut in the middle when it does not fit
// (a pod's name keeps its start and its namespace, the answer stays).
func (r Row) label(width int) string {
	head := r.prefix + r.Name
	tail := ""
	if r.Outcome != "" {
		tail = " " + r.Outcome
	}
	if r.Subject == "" {
		return head + tail
	}
	room := width - utf8.RuneCountInString(head) - 1 - utf8.RuneCountInString(tail)
	return head + " " + middle(r.Subject, room) + tail
}

// middle fits a subject in n runes. A proxy ID (pod.namespace) first
// loses its pod's ReplicaSet hash (httpbin-…-gfjtb), then the end of its
// namespace, then the end of its pod's name; anything else loses its end.
func middle(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := strings.LastIndexByte(s, '.')
	if i <= 0 {
		return pad(s, n, false)
	}
	pod, ns := s[:i], s[i+1:]
	if m := deploymentPod.FindStringSubmatch(pod); m != nil {
		pod = m[1] + "-…-" + m[2]
	}
	lp, ln := utf8.RuneCountInString(pod), utf8.RuneCountInString(ns)
	switch {
	case lp+1+ln <= n:
		return pod + "." + ns
	case n-lp-1 >= 4:
		return pod + "." + pad(ns, n-lp-1, false)
	}
	return pad(pod+"."+ns, n, false)
}

// deploymentPod is a Deployment's pod name: <name>-<ReplicaSet hash>-<5
// letters of Kubernetes' generated-name alphabet>.
var deploymentPod = regexp.MustCompile(`^(.+)-[bcdfghjklmnpqrstvwxz2456789]{6,10}-([bcdfghjklmnpqrstvwxz2456789]{5})$`)

// pad fits s in n columns: cut with "…" when longer, padded on the right
// (or on the left when right is set).
func pad(s string, n int, right bool) string {
	l := utf8.RuneCountInString(s)
	if l > n {
		if n <= 1 {
			return string([]rune(s)[:max(n, 0)])
		}
		return string([]rune(s)[:n-1]) + "…"
	}
	if right {
		return strings.Repeat(" ", n-l) + s
	}
	return s + strings.Repeat(" ", n-l)
}

// Bar is width cells of which those covered by [offset, offset+dur] of
// total are '=' ('x' for a failed span): the span's place in the trace.
// A span shorter than a cell still gets one.
func Bar(offset, dur, total time.Duration, width int, failed bool) string {
	from, to := BarCells(offset, dur, total, width)
	fill := "="
	if failed {
		fill = "x"
	}
	return strings.Repeat(" ", from) + strings.Repeat(fill, to-from) + strings.Repeat(" ", width-to)
}

// BarCells is the half-open cell range [from, to) of a span's bar.
func BarCells(offset, dur, total time.Duration, width int) (from, to int) {
	if width <= 0 {
		return 0, 0
	}
	if total <= 0 {
		return 0, width
	}
	f := func(d time.Duration) float64 { return float64(d) / float64(total) * float64(width) }
	from = int(math.Floor(f(offset)))
	to = int(math.Ceil(f(offset + dur)))
	from = min(max(from, 0), width-1)
	to = min(max(to, from+1), width)
	return from, to
}

// Short formats a duration in at most 3 significant digits: 850µs,
// 412ms, 1.25s, 12.3s, 2m05s.
func Short(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < 0:
		return "-" + Short(-d)
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < 10*time.Second:
		return trimZeros(fmt.Sprintf("%.2f", d.Seconds())) + "s"
	case d < time.Minute:
		return trimZeros(fmt.Sprintf("%.1f", d.Seconds())) + "s"
	}
	d = d.Round(time.Second)
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}

func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// String names the change: "EndpointSlice shop/httpbin-x7k2p of Service
// httpbin (resourceVersion 4821)".
func (c Change) String() string {
	s := "EndpointSlice " + c.Namespace + "/" + c.Slice
	if c.Service != "" {
		s += " of Service " + c.Service
	}
	if c.Deleted {
		s += " deleted"
	} else if c.ResourceVersion != "" {
		s += " (resourceVersion " + c.ResourceVersion + ")"
	}
	return s
}

// Sentence is the convergence in one line: "3 nodes programmed in max
// 412ms, 7 proxies ACKed in max 1.2s, 0 NACKed".
func (c Convergence) Sentence(ch *Change) string {
	var parts []string
	parts = append(parts, count(c.Nodes, "node", "nodes")+" programmed"+within(c.Nodes, c.nodesMax))
	if c.Proxies == 0 && c.Affected == 0 && ch != nil && !ch.RootMissing {
		parts = append(parts, "no proxy affected")
	} else {
		parts = append(parts, count(c.ACKed, "proxy", "proxies")+" ACKed"+within(c.ACKed, c.ackedMax))
		parts = append(parts, fmt.Sprintf("%d NACKed", c.NACKed))
	}
	if c.TimedOut > 0 {
		parts = append(parts, fmt.Sprintf("%d timed out", c.TimedOut))
	}
	if c.Disconnected > 0 {
		parts = append(parts, fmt.Sprintf("%d disconnected", c.Disconnected))
	}
	s := strings.Join(parts, ", ")
	if c.Affected > c.Proxies {
		s += fmt.Sprintf("; %d of %d affected proxies have a push span in the store so far", c.Proxies, c.Affected)
	}
	if ch != nil && ch.RootMissing {
		s += "; the root span is not in the store yet (pilot ends it when the last proxy answered)"
	}
	return s
}

func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func within(n int, d time.Duration) string {
	switch n {
	case 0:
		return ""
	case 1:
		return " in " + Short(d)
	}
	return " in max " + Short(d)
}

// List is the result of meshctl trace without an ID.
type List struct {
	Traces []TraceInfo `json:"traces"`
	// Query and Now shape the table (ages, the hint when empty).
	Query Query     `json:"-"`
	Now   time.Time `json:"-"`
}

// WriteTable prints one row per trace, newest first; an empty list says
// how to widen the query.
func (l List) WriteTable(w io.Writer) error {
	if len(l.Traces) == 0 {
		msg := "no traces in the store"
		switch {
		case l.Query.Name != "" && l.Query.Service != "":
			msg = fmt.Sprintf("no traces with root span %q and service %q in the store (meshctl trace --all lists every trace)", l.Query.Name, l.Query.Service)
		case l.Query.Name != "":
			msg = fmt.Sprintf("no traces with root span %q in the store (meshctl trace --all lists every trace)", l.Query.Name)
		case l.Query.Service != "":
			msg = fmt.Sprintf("no traces with service %q in the store", l.Query.Service)
		}
		_, err := fmt.Fprintln(w, msg)
		return err
	}
	t := output.Rows{Header: []string{"TRACE ID", "ROOT", "AGE", "DURATION", "SPANS", "SERVICES"}}
	for _, tr := range l.Traces {
		t.Add(tr.TraceID, output.Dash(tr.RootName), age(l.Now.Sub(tr.Start)), Short(tr.End.Sub(tr.Start)), fmt.Sprint(tr.SpanCount), output.Dash(strings.Join(tr.Services, ",")))
	}
	return t.Write(w)
}

// age is kubectl's style of age: 45s, 12m, 3h, 2d.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
