package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// childEnv marks a process compare started for one run (the test binary
// doubles as loadgen through it).
const childEnv = "WEFT_LOADGEN_RUN"

// size is one proxies × Services point of a comparison.
type size struct{ proxies, services int }

// parseSizes reads "100x100,1000x100"; empty means the -proxies and
// -services flags.
func parseSizes(s string, o options) ([]size, error) {
	if s == "" {
		return []size{{o.proxies, o.services}}, nil
	}
	var out []size
	for f := range strings.SplitSeq(s, ",") {
		p, m, ok := strings.Cut(strings.TrimSpace(f), "x")
		n1, err1 := strconv.Atoi(p)
		n2, err2 := strconv.Atoi(m)
		if !ok || err1 != nil || err2 != nil || n1 <= 0 || n2 <= 0 {
			return nil, fmt.Errorf("size %q: want <proxies>x<services>", f)
		}
		out = append(out, size{n1, n2})
	}
	return out, nil
}

// runOrder is the telemetry setting of each of 2×repeat runs: pairs in
// alternating order (off on, on off, off on, ...), so a drift of the
// machine's load over the comparison hits both settings alike.
func runOrder(repeat int) []bool {
	var out []bool
	for i := range repeat {
		out = append(out, i%2 == 1, i%2 == 0)
	}
	return out
}

// comparison collects the runs of one size by setting.
type comparison struct {
	size
	delta   bool
	off, on []result
}

// compare measures every size with telemetry off and on, repeat times
// each, interleaved, every run in a fresh process (its own heap, GC and
// client process), printing each run's row as it finishes and then the
// medians. The runs of one size are back to back, so the on/off ratio
// compares runs under the same conditions; never compare across sizes or
// invocations on a shared machine.
func compare(ctx context.Context, o options, w io.Writer) error {
	if o.cpuProfile != "" {
		return fmt.Errorf("-cpuprofile profiles one run: use it without -repeat")
	}
	sizes, err := parseSizes(o.sizes, o)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find executable: %w", err)
	}
	var all []comparison
	header := true
	for _, sz := range sizes {
		c := comparison{size: sz, delta: o.delta}
		for _, tel := range runOrder(o.repeat) {
			r, err := runChild(ctx, self, childArgs(o, sz, tel))
			if err != nil {
				return fmt.Errorf("%dx%d telemetry=%v: %w", sz.proxies, sz.services, tel, err)
			}
			if err := r.printRow(w, header); err != nil {
				return err
			}
			header = false
			if tel {
				c.on = append(c.on, r)
			} else {
				c.off = append(c.off, r)
			}
		}
		all = append(all, c)
	}
	_, err = io.WriteString(w, "\n"+summary(all))
	return err
}

func childArgs(o options, sz size, telemetry bool) []string {
	return []string{
		"-json", "-proxies", strconv.Itoa(sz.proxies), "-services", strconv.Itoa(sz.services),
		"-namespaces", strconv.Itoa(o.namespaces), "-changes", strconv.Itoa(o.changes),
		"-delta=" + strconv.FormatBool(o.delta), "-telemetry=" + strconv.FormatBool(telemetry),
		"-debounce", o.debounce.String(), "-timeout", o.timeout.String(),
	}
}

func runChild(ctx context.Context, self string, args []string) (result, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return result{}, fmt.Errorf("run %v: %w", args, err)
	}
	var r result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return result{}, fmt.Errorf("decode result %q: %w", out.String(), err)
	}
	return r, nil
}

// stat is the median and range of one measure over a setting's runs.
type stat struct{ median, lo, hi float64 }

func statOf(rs []result, f func(result) float64) stat {
	if len(rs) == 0 {
		return stat{}
	}
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return stat{med, v[0], v[len(v)-1]}
}

// summary is the comparison table: per size and measure, the median (and
// range) with telemetry off and on, and the ratio of the medians.
func summary(cs []comparison) string {
	var b strings.Builder
	b.WriteString("| proxies × services | xDS | runs off/on | change→all ACKed p50 off | on | on/off | p99 off | on | on/off | pilot cpu s/change off | on | on/off | alloc MiB/change off | on | on/off |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	measures := []struct {
		get    func(result) float64
		format string
	}{
		{func(r result) float64 { return r.P50ms }, "%.0f ms (%.0f–%.0f)"},
		{func(r result) float64 { return r.P99ms }, "%.0f ms (%.0f–%.0f)"},
		{func(r result) float64 { return r.CPUPerChange }, "%.3f (%.3f–%.3f)"},
		{func(r result) float64 { return r.AllocMiBPerChange }, "%.1f (%.1f–%.1f)"},
	}
	for _, c := range cs {
		mode := "sotw"
		if c.delta {
			mode = "delta"
		}
		fmt.Fprintf(&b, "| %d × %d | %s | %d/%d |", c.proxies, c.services, mode, len(c.off), len(c.on))
		for _, m := range measures {
			off, on := statOf(c.off, m.get), statOf(c.on, m.get)
			fmt.Fprintf(&b, " "+m.format+" | "+m.format+" | %s |", off.median, off.lo, off.hi, on.median, on.lo, on.hi, ratio(on.median, off.median))
		}
		b.WriteString("\n")
	}
	b.WriteString("\nmedian (min–max) per setting; on/off is the ratio of the medians.\n")
	return b.String()
}

func ratio(on, off float64) string {
	if off == 0 {
		return "–"
	}
	return strconv.FormatFloat(on/off, 'f', 3, 64)
}
