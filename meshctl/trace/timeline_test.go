package trace_test

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/meshctl/internal/fakestore"
	"github.com/weftmesh/weft/meshctl/internal/golden"
	"github.com/weftmesh/weft/meshctl/output"
	"github.com/weftmesh/weft/meshctl/trace"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func fixture(t *testing.T, id string) trace.Trace {
	t.Helper()
	for _, tr := range fakestore.Fixture() {
		if tr.TraceID == id {
			return tr
		}
	}
	t.Fatalf("no fixture trace %s", id)
	return trace.Trace{}
}

func render(t *testing.T, f output.Format, v output.Tabular) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, output.Print(&b, f, v))
	return b.String()
}

func TestTimelineGolden(t *testing.T) {
	for name, id := range map[string]string{"netprog": fakestore.NetprogID, "request": fakestore.RequestID, "delete": fakestore.DeleteID} {
		t.Run(name, func(t *testing.T) {
			tl := trace.Build(fixture(t, id))
			table := render(t, output.Table, tl)
			golden.Check(t, name+".txt", []byte(table))
			golden.Check(t, name+".json", []byte(render(t, output.JSON, tl)))
			for _, l := range strings.Split(table, "\n") {
				if strings.HasPrefix(l, "trace ") || strings.Contains(l, "programmed") {
					continue // the header and the sentence may wrap
				}
				assert.LessOrEqual(t, utf8.RuneCountInString(l), trace.Width, "line wider than the terminal: %q", l)
			}
		})
	}
}

func TestTimelineNetprog(t *testing.T) {
	tl := trace.Build(fixture(t, fakestore.NetprogID))
	require.Len(t, tl.Spans, 9)
	root := tl.Spans[0]
	assert.Equal(t, trace.SpanChange, root.Name)
	assert.Equal(t, 0, root.Depth)
	assert.Equal(t, "shop/httpbin-7xq2k", root.Detail)
	for _, r := range tl.Spans[1:] {
		assert.Equal(t, 1, r.Depth, "%s is a child of the root", r.Detail)
		assert.GreaterOrEqual(t, r.Start, tl.Spans[0].Start)
	}
	// Children by start: the node-3 sync started first.
	assert.Equal(t, "weft-node-3", tl.Spans[1].Detail)
	assert.InDelta(t, 1.207, float64(tl.Duration), 1e-9)

	c := tl.Convergence
	require.NotNil(t, c)
	assert.Equal(t, trace.Convergence{Nodes: 3, NodesMax: 0.412, Proxies: 5, ACKed: 4, ACKedMax: 1.2, NACKed: 1, Affected: 5}, withoutPrivate(*c))
	assert.Equal(t, "3 nodes programmed in max 412ms, 4 proxies ACKed in max 1.2s, 1 NACKed", c.Sentence(tl.Change))
	assert.Equal(t, &trace.Change{Namespace: "shop", Slice: "httpbin-7xq2k", Service: "httpbin", ResourceVersion: "48213"}, tl.Change)

	var nack trace.Row
	for _, r := range tl.Spans {
		if strings.Contains(r.Detail, "NACK") {
			nack = r
		}
	}
	assert.True(t, nack.Error, "a NACKed push is a failed span")
	assert.Contains(t, render(t, output.Table, tl), "xxxxx", "failed spans are drawn with x")
}

func withoutPrivate(c trace.Convergence) trace.Convergence {
	return trace.Convergence{Nodes: c.Nodes, NodesMax: c.NodesMax, Proxies: c.Proxies, ACKed: c.ACKed, ACKedMax: c.ACKedMax,
		NACKed: c.NACKed, TimedOut: c.TimedOut, Disconnected: c.Disconnected, Affected: c.Affected}
}

func TestTimelineRootMissingAndTimeout(t *testing.T) {
	tl := trace.Build(fixture(t, fakestore.DeleteID))
	require.NotNil(t, tl.Change)
	assert.True(t, tl.Change.RootMissing)
	assert.True(t, tl.Change.Deleted)
	for _, r := range tl.Spans {
		assert.Equal(t, 0, r.Depth, "orphans are roots")
	}
	assert.Equal(t, "1 node programmed in 84ms, 0 proxies ACKed, 0 NACKed, 1 timed out; the root span is not in the store yet (pilot ends it when the last proxy answered)",
		tl.Convergence.Sentence(tl.Change))
}

func TestTimelineTree(t *testing.T) {
	at := func(ms int) time.Time { return now.Add(time.Duration(ms) * time.Millisecond) }
	span := func(id, parent, name string, from, to int) trace.Span {
		return trace.Span{SpanID: id, ParentSpanID: parent, Name: name, Service: "svc", Start: at(from), End: at(to)}
	}
	tl := trace.Build(trace.Trace{TraceID: "t", Spans: []trace.Span{
		span("a", "", "a", 0, 100), span("b", "a", "b", 10, 50), span("c", "b", "c", 20, 30),
		span("d", "a", "d", 60, 90), span("x", "y", "x", 5, 6), span("loop1", "loop2", "l1", 1, 2), span("loop2", "loop1", "l2", 1, 2),
	}})
	var got []string
	for _, r := range tl.Spans {
		got = append(got, strings.Repeat(".", r.Depth)+r.Name)
	}
	assert.Equal(t, []string{"a", ".b", "..c", ".d", "x", "l1", ".l2"}, got, "depth-first, children by start; orphans and cycles still shown")
	assert.Nil(t, tl.Convergence, "no sync or push spans")
	assert.Nil(t, tl.Change)
	table := render(t, output.Table, tl)
	assert.Contains(t, table, "├─ b")
	assert.Contains(t, table, "│  └─ c")
	assert.Contains(t, table, "└─ d")

	empty := trace.Build(trace.Trace{TraceID: "e"})
	assert.Equal(t, "trace e\nno spans\n", render(t, output.Table, empty))
}

func TestBar(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		off, dur, total time.Duration
		want            string
	}{
		{0, 100 * ms, 100 * ms, "=========="},
		{0, 50 * ms, 100 * ms, "=====     "},
		{50 * ms, 50 * ms, 100 * ms, "     ====="},
		{42 * ms, 0, 100 * ms, "    =     "}, // an instant still shows
		{99 * ms, 1 * ms, 100 * ms, "         ="},
		{10 * ms, 12 * ms, 100 * ms, " ==       "}, // partial cells round outwards
		{0, 0, 0, "=========="},
	} {
		assert.Equal(t, c.want, trace.Bar(c.off, c.dur, c.total, 10, false), "%v+%v of %v", c.off, c.dur, c.total)
	}
	assert.Equal(t, "  xx", trace.Bar(50*ms, 50*ms, 100*ms, 4, true))
}

func TestShort(t *testing.T) {
	for d, want := range map[time.Duration]string{
		850 * time.Microsecond: "850µs", 412 * time.Millisecond: "412ms", 1200 * time.Millisecond: "1.2s",
		1250 * time.Millisecond: "1.25s", 12345 * time.Millisecond: "12.3s", 125 * time.Second: "2m05s", 0: "0", time.Nanosecond * 5: "5ns", 2 * time.Second: "2s",
	} {
		assert.Equal(t, want, trace.Short(d))
	}
}

func TestListTable(t *testing.T) {
	var infos []trace.TraceInfo
	for _, tr := range fakestore.Fixture() {
		infos = append(infos, fakestore.Info(tr))
	}
	l := trace.List{Traces: infos, Now: now}
	golden.Check(t, "list.txt", []byte(render(t, output.Table, l)))
	golden.Check(t, "list.json", []byte(render(t, output.JSON, l)))

	empty := trace.List{Traces: []trace.TraceInfo{}, Query: trace.Query{Name: trace.SpanChange}}
	assert.Equal(t, "no traces with root span \"endpointslice.change\" in the store (meshctl trace --all lists every trace)\n", render(t, output.Table, empty))
	assert.JSONEq(t, `{"traces":[]}`, render(t, output.JSON, empty))
}
