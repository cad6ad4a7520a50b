package local

import (
	"fmt"
	"io"
	"time"
)

// progress prints each step as it finishes, with how long it took, so a
// user watching `up` sees what is starting and where time goes.
type progress struct {
	out   io.Writer
	start time.Time
}

func newProgress(out io.Writer) *progress { return &progress{out: out, start: time.Now()} }

// step runs fn and reports it; a failure is handed to onErr (which may be
// nil) and returned.
func (p *progress) step(what string, fn func() error, onErr func(error)) error {
	start := time.Now()
	err := fn()
	took := time.Since(start).Round(10 * time.Millisecond)
	if err != nil {
		fmt.Fprintf(p.out, "  ✗ %-52s %8v\n      %v\n", what, took, err)
		if onErr != nil {
			onErr(err)
		}
		return err
	}
	fmt.Fprintf(p.out, "  ✓ %-52s %8v\n", what, took)
	return nil
}

func (p *progress) done(what string) {
	fmt.Fprintf(p.out, "%s in %v\n", what, time.Since(p.start).Round(10*time.Millisecond))
}
