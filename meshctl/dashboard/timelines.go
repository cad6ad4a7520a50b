package dashboard

import (
	"math"
	"time"

	"github.com/weftmesh/weft/meshctl/trace"
)

// TimelineView is one trace as the page draws it: meshctl trace's
// timeline with every bar's place as fractions of the trace and the times
// already formatted, so the page only positions boxes.
type TimelineView struct {
	TraceID  string `json:"traceId"`
	Title    string `json:"title"`
	Start    string `json:"start"`
	Duration string `json:"duration"`
	// Sentence is the convergence ("3 nodes programmed in max 412ms, …").
	Sentence string    `json:"sentence"`
	Rows     []RowView `json:"rows"`
}

// RowView is one span of a TimelineView.
type RowView struct {
	Depth    int    `json:"depth"`
	Name     string `json:"name"`
	Detail   string `json:"detail"`
	Subject  string `json:"subject"`
	Outcome  string `json:"outcome"`
	Service  string `json:"service"`
	Offset   string `json:"offset"`
	Duration string `json:"duration"`
	// Left and Width place the bar, as fractions (0..1) of the trace.
	Left  float64 `json:"left"`
	Width float64 `json:"width"`
	Error bool    `json:"error"`
}

// minBarWidth keeps an instant span visible (0.5% of the trace).
const minBarWidth = 0.005

// View lays out a timeline for the page.
func View(tl trace.Timeline) TimelineView {
	v := TimelineView{
		TraceID: tl.TraceID, Title: tl.TraceID, Rows: []RowView{},
		Start:    tl.Start.UTC().Format("2006-01-02 15:04:05.000Z07:00"),
		Duration: trace.Short(dur(tl.Duration)),
	}
	if tl.Change != nil {
		v.Title = tl.Change.String()
	} else if len(tl.Spans) > 0 {
		v.Title = tl.Spans[0].Name
	}
	if tl.Convergence != nil {
		v.Sentence = tl.Convergence.Sentence(tl.Change)
	}
	total := float64(tl.Duration)
	for _, r := range tl.Spans {
		left, width := 0.0, 1.0
		if total > 0 {
			left = float64(r.Offset) / total
			width = float64(r.Duration) / total
		}
		left = min(max(left, 0), 1-minBarWidth)
		width = min(max(width, minBarWidth), 1-left)
		v.Rows = append(v.Rows, RowView{
			Depth: r.Depth, Name: r.Name, Detail: r.Detail, Subject: r.Subject, Outcome: r.Outcome, Service: r.Service,
			Offset: "+" + trace.Short(dur(r.Offset)), Duration: trace.Short(dur(r.Duration)),
			Left: round(left, 5), Width: round(width, 5), Error: r.Error,
		})
	}
	return v
}

func dur(s trace.Seconds) time.Duration {
	return time.Duration(math.Round(float64(s) * float64(time.Second)))
}
