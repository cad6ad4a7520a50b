package trace

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weftmesh/weft/pilot/telemetry/netprog"
)

// Span names and attributes of a network-programming trace
// (pilot/telemetry/netprog, docs/observability.md).
const (
	SpanChange = netprog.SpanChange
	SpanSync   = netprog.SpanSync
	SpanPush   = netprog.SpanPush

	attrNamespace  = string(netprog.AttrNamespace)
	attrNode       = string(netprog.AttrNode)
	attrSlice      = string(netprog.AttrSliceName)
	attrService    = string(netprog.AttrService)
	attrRV         = string(netprog.AttrResourceVersion)
	attrDeleted    = string(netprog.AttrDeleted)
	attrSuperseded = string(netprog.AttrSuperseded)
	attrProxyID    = string(netprog.AttrProxyID)
	attrStatus     = string(netprog.AttrStatus)
	attrAffected   = string(netprog.AttrAffected)
)

// xDS push results (netprog.Result) as the weft.xds.status attribute.
const (
	pushACK          = string(netprog.ACK)
	pushNACK         = string(netprog.NACK)
	pushTimeout      = string(netprog.Timeout)
	pushDisconnected = string(netprog.Disconnected)
)

// Seconds is a duration in JSON as a number of seconds, what scripts and
// the dashboard compute with.
type Seconds float64

func seconds(d time.Duration) Seconds { return Seconds(d.Seconds()) }

// Timeline is one trace laid out for reading: spans in tree order with
// their depth and offset from the trace start, and, for a
// network-programming trace, the change and how fast the mesh caught up.
type Timeline struct {
	TraceID  string    `json:"traceId"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Duration Seconds   `json:"durationSeconds"`
	// Change is the EndpointSlice change of a network-programming trace.
	Change *Change `json:"change,omitempty"`
	// Convergence summarises the sync and push spans (nil without any).
	Convergence *Convergence `json:"convergence,omitempty"`
	Spans       []Row        `json:"spans"`

	total time.Duration
}

// Change is the EndpointSlice change a network-programming trace follows.
type Change struct {
	Namespace       string `json:"namespace,omitempty"`
	Slice           string `json:"endpointSlice,omitempty"`
	Service         string `json:"service,omitempty"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
	Deleted         bool   `json:"deleted,omitempty"`
	// RootMissing: pilot has not exported the root span yet (it ends when
	// the last affected proxy answered), so more spans may come.
	RootMissing bool `json:"rootMissing,omitempty"`
}

// Convergence is when the mesh caught up with the change, measured from
// the trace start (the slice's last-change-trigger-time, else when pilot
// saw it) to each node's rules applied and each proxy's answer.
type Convergence struct {
	Nodes    int     `json:"nodes"`
	NodesMax Seconds `json:"nodesMaxSeconds"`
	Proxies  int     `json:"proxies"`
	ACKed    int     `json:"acked"`
	ACKedMax Seconds `json:"ackedMaxSeconds"`
	NACKed   int     `json:"nacked"`
	TimedOut int     `json:"timedOut,omitempty"`
	// Disconnected proxies went away before they answered.
	Disconnected int `json:"disconnected,omitempty"`
	// Affected is the number of proxies pilot pushed the change to (the
	// root's weft.proxies.affected); more than Proxies means push spans
	// are still missing from the store.
	Affected int `json:"affected,omitempty"`

	nodesMax, ackedMax time.Duration
}

// Row is one span of the timeline.
type Row struct {
	Span
	// Depth is the span's level in the tree (0 for a root, or for a span
	// whose parent is not in the trace).
	Depth int `json:"depth"`
	// Detail is the span's key attributes in a few words (node, proxy and
	// its answer, slice).
	Detail string `json:"detail,omitempty"`
	// Subject and Outcome make up Detail: what the span is about (a slice,
	// node or proxy; cut when the column is narrow) and how it ended (the
	// proxy's ACK or NACK, superseded; never cut).
	Subject  string  `json:"subject,omitempty"`
	Outcome  string  `json:"outcome,omitempty"`
	Offset   Seconds `json:"offsetSeconds"`
	Duration Seconds `json:"durationSeconds"`
	Error    bool    `json:"error,omitempty"`

	prefix           string
	offset, duration time.Duration
}

// Build lays t out: spans as a tree (children under their parent, by
// start), offsets from the earliest span.
func Build(t Trace) Timeline {
	tl := Timeline{TraceID: t.TraceID, Spans: []Row{}}
	if len(t.Spans) == 0 {
		return tl
	}
	tl.Start, tl.End = t.Spans[0].Start, t.Spans[0].End
	for _, s := range t.Spans {
		if s.Start.Before(tl.Start) {
			tl.Start = s.Start
		}
		if s.End.After(tl.End) {
			tl.End = s.End
		}
	}
	tl.total = tl.End.Sub(tl.Start)
	tl.Duration = seconds(tl.total)
	for _, r := range tree(t.Spans) {
		r.offset = r.Start.Sub(tl.Start)
		r.duration = max(r.End.Sub(r.Start), 0)
		r.Offset, r.Duration = seconds(r.offset), seconds(r.duration)
		r.Error = r.Status.Code == StatusError
		r.Subject, r.Outcome = detail(r.Span)
		r.Detail = strings.TrimSpace(r.Subject + " " + r.Outcome)
		tl.Spans = append(tl.Spans, r)
	}
	tl.Change = change(t.Spans)
	tl.Convergence = converge(t.Spans, tl.Start)
	return tl
}

// tree orders spans depth first, children by start time; a span whose
// parent is absent is a root. Each row gets its tree-drawing prefix.
func tree(spans []Span) []Row {
	ids := map[string]bool{}
	for _, s := range spans {
		ids[s.SpanID] = true
	}
	children := map[string][]Span{}
	var roots []Span
	for _, s := range spans {
		if s.ParentSpanID == "" || !ids[s.ParentSpanID] || s.ParentSpanID == s.SpanID {
			roots = append(roots, s)
			continue
		}
		children[s.ParentSpanID] = append(children[s.ParentSpanID], s)
	}
	byStart := func(a, b Span) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.Name, b.Name), cmp.Compare(a.SpanID, b.SpanID))
	}
	slices.SortStableFunc(roots, byStart)
	var out []Row
	seen := map[string]bool{}
	var walk func(s Span, depth int, indent string, last bool)
	walk = func(s Span, depth int, indent string, last bool) {
		if seen[s.SpanID] && s.SpanID != "" {
			return // a cycle in bad data
		}
		seen[s.SpanID] = true
		prefix, childIndent := "", ""
		if depth > 0 {
			prefix, childIndent = indent+"├─ ", indent+"│  "
			if last {
				prefix, childIndent = indent+"└─ ", indent+"   "
			}
		}
		out = append(out, Row{Span: s, Depth: depth, prefix: prefix})
		kids := children[s.SpanID]
		slices.SortStableFunc(kids, byStart)
		for i, k := range kids {
			walk(k, depth+1, childIndent, i == len(kids)-1)
		}
	}
	for _, r := range roots {
		walk(r, 0, "", true)
	}
	// Spans only reachable through a cycle.
	for _, s := range spans {
		if !seen[s.SpanID] {
			walk(s, 0, "", true)
		}
	}
	return out
}

// detail is what to know of a span at a glance: its subject (slice, node,
// proxy) and outcome (the proxy's answer; superseded).
func detail(s Span) (subject, outcome string) {
	a := s.Attributes
	var out []string
	switch s.Name {
	case SpanChange:
		subject = a[attrSlice]
		if ns := a[attrNamespace]; ns != "" && subject != "" {
			subject = ns + "/" + subject
		}
		if a[attrDeleted] == "true" {
			out = append(out, "deleted")
		}
	case SpanSync:
		subject = a[attrNode]
	case SpanPush:
		subject = a[attrProxyID]
		if st := a[attrStatus]; st != "" {
			out = append(out, st)
		}
	}
	if a[attrSuperseded] == "true" {
		out = append(out, "(superseded)")
	}
	return subject, strings.Join(out, " ")
}

// change reads the EndpointSlice from the root (or, while the root is not
// exported yet, from a span that carries the change's attributes: every
// weft-proxy.sync span, and pilot.push spans only when pilot cannot emit
// the root).
func change(spans []Span) *Change {
	var from *Span
	root := false
	for i := range spans {
		if spans[i].Name == SpanChange {
			from, root = &spans[i], true
			break
		}
		if from == nil && (spans[i].Name == SpanSync || spans[i].Name == SpanPush) && spans[i].Attributes[attrSlice] != "" {
			from = &spans[i]
		}
	}
	if from == nil {
		return nil
	}
	a := from.Attributes
	return &Change{
		Namespace: a[attrNamespace], Slice: a[attrSlice], Service: a[attrService],
		ResourceVersion: a[attrRV], Deleted: a[attrDeleted] == "true", RootMissing: !root,
	}
}

// converge counts nodes and proxies and their latest catch-up from start.
// A node or proxy with several spans (a superseded one and the one that
// ended it) counts once, by its last span.
func converge(spans []Span, start time.Time) *Convergence {
	nodes := map[string]time.Duration{}
	type answer struct {
		status string
		end    time.Time
	}
	proxies := map[string]answer{}
	c := &Convergence{}
	for _, s := range spans {
		switch s.Name {
		case SpanSync:
			node := cmp.Or(s.Attributes[attrNode], s.Resource[attrNode], s.SpanID)
			nodes[node] = max(nodes[node], s.End.Sub(start))
		case SpanPush:
			id := cmp.Or(s.Attributes[attrProxyID], s.SpanID)
			if prev, ok := proxies[id]; !ok || s.End.After(prev.end) {
				proxies[id] = answer{status: s.Attributes[attrStatus], end: s.End}
			}
		case SpanChange:
			if n, err := strconv.Atoi(s.Attributes[attrAffected]); err == nil {
				c.Affected = n
			}
		}
	}
	if len(nodes) == 0 && len(proxies) == 0 {
		return nil
	}
	c.Nodes, c.Proxies = len(nodes), len(proxies)
	for _, d := range nodes {
		c.nodesMax = max(c.nodesMax, d)
	}
	for _, a := range proxies {
		switch a.status {
		case pushACK:
			c.ACKed++
			c.ackedMax = max(c.ackedMax, a.end.Sub(start))
		case pushNACK:
			c.NACKed++
		case pushTimeout:
			c.TimedOut++
		case pushDisconnected:
			c.Disconnected++
		}
	}
	c.NodesMax, c.ACKedMax = seconds(c.nodesMax), seconds(c.ackedMax)
	return c
}
