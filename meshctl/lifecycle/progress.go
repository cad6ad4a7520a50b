package lifecycle

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Item is one line of the progress display.
type Item struct {
	Name string
	// State is pending, done or failed.
	State ItemState
	Text  string
	Took  time.Duration
}

// ItemState is the mark in front of an Item.
type ItemState int

// Item states.
const (
	Pending ItemState = iota
	Done
	Failed
)

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// Progress shows a list of items that become done. On a terminal it
// redraws the lines in place; otherwise it prints a line whenever an
// item's text changes, so logs of CI runs stay readable.
type Progress struct {
	out   io.Writer
	tty   bool
	drawn int
	last  map[string]string
	tick  int
}

// NewProgress writes to out; tty enables redrawing.
func NewProgress(out io.Writer, tty bool) *Progress {
	return &Progress{out: out, tty: tty, last: map[string]string{}}
}

// Update shows items.
func (p *Progress) Update(items []Item) {
	p.tick++
	if !p.tty {
		for _, it := range items {
			line := p.line(it)
			if p.last[it.Name] != line {
				p.last[it.Name] = line
				fmt.Fprintln(p.out, line)
			}
		}
		return
	}
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	for _, it := range items {
		fmt.Fprintf(&b, "\x1b[2K%s\n", p.line(it))
	}
	p.drawn = len(items)
	fmt.Fprint(p.out, b.String())
}

// Step prints one finished step (a line of its own, never redrawn).
func (p *Progress) Step(it Item) {
	p.drawn = 0
	fmt.Fprintln(p.out, p.line(it))
}

// Reset starts a new block: the lines drawn so far stay as they are.
func (p *Progress) Reset() { p.drawn = 0 }

func (p *Progress) line(it Item) string {
	mark := "…"
	switch it.State {
	case Done:
		mark = "✓"
	case Failed:
		mark = "✗"
	default:
		if p.tty {
			mark = spinner[p.tick%len(spinner)]
		}
	}
	s := fmt.Sprintf("  %s %-44s %s", mark, it.Name, it.Text)
	if it.State != Pending && it.Took > 0 {
		s += fmt.Sprintf(" (%v)", it.Took.Round(100*time.Millisecond))
	}
	return strings.TrimRight(s, " ")
}
