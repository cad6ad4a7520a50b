package check

import (
	"fmt"
	"io"
	"strings"
)

// Report is the output of meshctl check.
type Report struct {
	// Mode is "pre-install" or "post-install".
	Mode    string   `json:"mode"`
	Results []Result `json:"results"`
	Summary Summary  `json:"summary"`
}

// Summary counts results by status.
type Summary struct {
	Passed   int `json:"passed"`
	Warnings int `json:"warnings"`
	Failed   int `json:"failed"`
	Skipped  int `json:"skipped"`
}

// NewReport evaluates f.
func NewReport(f Facts) Report {
	r := Report{Mode: "post-install", Results: Evaluate(f)}
	if f.Pre {
		r.Mode = "pre-install"
	}
	for _, x := range r.Results {
		switch x.Status {
		case StatusOK:
			r.Summary.Passed++
		case StatusWarn:
			r.Summary.Warnings++
		case StatusFail:
			r.Summary.Failed++
		case StatusSkip:
			r.Summary.Skipped++
		}
	}
	return r
}

// Failed is true when any check failed (meshctl check exits 1).
func (r Report) Failed() bool { return r.Summary.Failed > 0 }

var marks = map[Status]string{StatusOK: "✓", StatusWarn: "⚠", StatusFail: "✗", StatusSkip: "-"}

// WriteTable prints the results grouped by category, each problem with
// its fix on the next line.
func (r Report) WriteTable(w io.Writer) error {
	cat := ""
	for _, x := range r.Results {
		if x.Category != cat {
			if cat != "" {
				fmt.Fprintln(w)
			}
			cat = x.Category
			fmt.Fprintln(w, cat)
		}
		line := fmt.Sprintf("  %s %s", marks[x.Status], x.Check)
		if x.Detail != "" {
			line += ": " + x.Detail
		}
		fmt.Fprintln(w, line)
		if x.Fix != "" {
			fmt.Fprintf(w, "      fix: %s\n", x.Fix)
		}
	}
	s := r.Summary
	verdict := "all checks passed"
	switch {
	case s.Failed > 0:
		verdict = "FAILED"
	case s.Warnings > 0:
		verdict = "passed with warnings"
	}
	parts := []string{fmt.Sprintf("%d passed", s.Passed)}
	if s.Warnings > 0 {
		parts = append(parts, fmt.Sprintf("%d warning(s)", s.Warnings))
	}
	if s.Failed > 0 {
		parts = append(parts, fmt.Sprintf("%d failed", s.Failed))
	}
	if s.Skipped > 0 {
		parts = append(parts, fmt.Sprintf("%d skipped", s.Skipped))
	}
	_, err := fmt.Fprintf(w, "\n%s check: %s (%s)\n", r.Mode, verdict, strings.Join(parts, ", "))
	return err
}
