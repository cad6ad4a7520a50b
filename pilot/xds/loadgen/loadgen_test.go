package main

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestMain lets the test binary double as the client process, since run
// re-executes os.Executable with -clients, and as loadgen itself for
// compare's runs.
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "-clients" {
		if err := runClients(context.Background(), os.Args[2]); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(childEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSmoke runs a tiny load test end to end (both xDS variants, telemetry
// off and on: with tracing the clients must take SRDS too) so the load
// generator keeps working; the real table is run by hand.
func TestSmoke(t *testing.T) {
	for _, delta := range []bool{false, true} {
		for _, telemetry := range []bool{false, true} {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			o := options{proxies: 6, services: 4, namespaces: 2, changes: 2, delta: delta, telemetry: telemetry,
				debounce: 10 * time.Millisecond, json: true}
			if err := run(ctx, o); err != nil {
				t.Fatalf("delta=%v telemetry=%v: %v", delta, telemetry, err)
			}
			cancel()
		}
	}
}

// TestCompareSmoke runs the off/on comparison end to end at a tiny size:
// every run in its own process, rows and the summary printed.
func TestCompareSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	o := options{namespaces: 2, changes: 2, delta: true, debounce: 10 * time.Millisecond, timeout: time.Minute,
		repeat: 1, sizes: "6x4"}
	if err := compare(ctx, o, &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"| 6 | 4 | delta | false |", "| 6 | 4 | delta | true |", "| 6 × 4 | delta | 1/1 |"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

func TestParseSizes(t *testing.T) {
	got, err := parseSizes("100x100, 1000x10", options{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]size{{100, 100}, {1000, 10}}, got, cmp.AllowUnexported(size{})); diff != "" {
		t.Errorf("sizes (-want +got):\n%s", diff)
	}
	if got, _ := parseSizes("", options{proxies: 7, services: 3}); !slices.Equal(got, []size{{7, 3}}) {
		t.Errorf("default size: %v", got)
	}
	for _, bad := range []string{"100", "x100", "100x", "0x5", "ax1"} {
		if _, err := parseSizes(bad, options{}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestRunOrderInterleaves(t *testing.T) {
	want := []bool{false, true, true, false, false, true}
	if got := runOrder(3); !slices.Equal(got, want) {
		t.Errorf("runOrder(3) = %v, want %v", got, want)
	}
}

func TestSummary(t *testing.T) {
	off := []result{{P50ms: 100, P99ms: 200, CPUPerChange: 0.30, AllocMiBPerChange: 40}, {P50ms: 120, P99ms: 260, CPUPerChange: 0.32, AllocMiBPerChange: 42},
		{P50ms: 110, P99ms: 220, CPUPerChange: 0.34, AllocMiBPerChange: 41}}
	on := []result{{P50ms: 115, P99ms: 230, CPUPerChange: 0.33, AllocMiBPerChange: 43}, {P50ms: 121, P99ms: 210, CPUPerChange: 0.31, AllocMiBPerChange: 43}}
	if s := statOf(off, func(r result) float64 { return r.P50ms }); s != (stat{110, 100, 120}) {
		t.Errorf("odd count: %+v", s)
	}
	if s := statOf(on, func(r result) float64 { return r.P50ms }); s != (stat{118, 115, 121}) {
		t.Errorf("even count: %+v", s)
	}
	got := summary([]comparison{{size: size{1000, 100}, delta: true, off: off, on: on}})
	want := "| 1000 × 100 | delta | 3/2 | 110 ms (100–120) | 118 ms (115–121) | 1.073 | 220 ms (200–260) | 220 ms (210–230) | 1.000 | 0.320 (0.300–0.340) | 0.320 (0.310–0.330) | 1.000 | 41.0 (40.0–42.0) | 43.0 (43.0–43.0) | 1.049 |"
	if !strings.Contains(got, want) {
		t.Errorf("summary lacks\n%s\ngot\n%s", want, got)
	}
}
