package explain

import (
	"fmt"
	"io"
	"strings"
)

// Verdict is the one-word answer.
type Verdict string

// Verdicts.
const (
	// Allowed: the request reaches the application.
	Allowed Verdict = "ALLOWED"
	// Denied: mTLS mode or authorization refuses it.
	Denied Verdict = "DENIED"
	// Partial: some endpoints allow it, others deny or fail, so it
	// depends on which one the load balancer picks.
	Partial Verdict = "PARTIAL"
	// Fails: nothing is there to serve it (no endpoints, no route, a
	// transport mismatch).
	Fails Verdict = "FAILS"
)

// Outcome marks a step.
type Outcome string

// Step outcomes.
const (
	OK   Outcome = "ok"
	Info Outcome = "info"
	Warn Outcome = "warning"
	Deny Outcome = "denied"
	Fail Outcome = "failed"
)

// Step is one stage the request goes through.
type Step struct {
	Step    string   `json:"step"`
	Outcome Outcome  `json:"outcome"`
	Summary string   `json:"summary"`
	Details []string `json:"details,omitempty"`
}

// EndpointVerdict is the outcome at one endpoint.
type EndpointVerdict struct {
	Address string  `json:"address"`
	Pod     string  `json:"pod,omitempty"`
	Verdict Verdict `json:"verdict"`
	// Transport is "mTLS" or "plaintext" on the wire to this endpoint.
	Transport string `json:"transport"`
	MTLSMode  string `json:"mtlsMode,omitempty"`
	Reason    string `json:"reason"`
}

// Explanation is the output of meshctl explain.
type Explanation struct {
	Source      string            `json:"source"`
	Destination string            `json:"destination"`
	Verdict     Verdict           `json:"verdict"`
	Reason      string            `json:"reason"`
	Steps       []Step            `json:"steps"`
	Endpoints   []EndpointVerdict `json:"endpoints,omitempty"`
}

var marks = map[Outcome]string{OK: "✓", Info: "·", Warn: "⚠", Deny: "✗", Fail: "✗"}

// WriteTable prints the verdict, then each step with its details.
func (e Explanation) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "%s → %s\n\n%s: %s\n\n", e.Source, e.Destination, e.Verdict, e.Reason)
	for i, s := range e.Steps {
		fmt.Fprintf(w, "%2d %-14s %s %s\n", i+1, s.Step, marks[s.Outcome], s.Summary)
		for _, d := range s.Details {
			fmt.Fprintf(w, "   %-14s   %s\n", "", d)
		}
	}
	_, err := fmt.Fprintln(w)
	return err
}

func (e *Explanation) add(step string, o Outcome, summary string, details ...string) {
	e.Steps = append(e.Steps, Step{Step: step, Outcome: o, Summary: summary, Details: details})
}

// fail ends the walk with a verdict.
func (e *Explanation) finish(v Verdict, reason string) Explanation {
	e.Verdict, e.Reason = v, reason
	return *e
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

func list(items []string, max int) string {
	if len(items) > max {
		return strings.Join(items[:max], ", ") + fmt.Sprintf(" and %d more", len(items)-max)
	}
	return strings.Join(items, ", ")
}
