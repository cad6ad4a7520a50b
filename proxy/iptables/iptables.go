// Package iptables is weft-proxy's kernel edge for packet-filter rules: it
// runs iptables-restore and iptables-save and nothing else, so that all rule
// decisions stay in the pure planner (proxy/rules) and tests can swap in the
// in-memory Fake.
package iptables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// Interface is what the proxier needs from iptables.
type Interface interface {
	// Restore applies restore input with --noflush: chains it declares are
	// flushed and rewritten, everything else is left alone. Each table
	// section is one kernel transaction.
	Restore(ctx context.Context, data []byte) error
	// Save returns `iptables-save` output for all tables.
	Save(ctx context.Context) ([]byte, error)
	// ChainExists is a cheap probe of one chain (it fetches only that
	// chain), used as a canary for rules flushed behind weft's back.
	ChainExists(ctx context.Context, table, chain string) (bool, error)
}

// RestoreError is a failed restore; Line (1-based, 0 if unknown) points into
// the input so the caller can blame the Service that wrote that line.
type RestoreError struct {
	Line   int
	Output string
	Err    error
}

// Error implements error.
func (e *RestoreError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("iptables-restore failed at line %d: %v: %s", e.Line, e.Err, e.Output)
	}
	return fmt.Sprintf("iptables-restore failed: %v: %s", e.Err, e.Output)
}

// Unwrap exposes the exec error (exit status, context cancellation).
func (e *RestoreError) Unwrap() error { return e.Err }

// Exec runs the iptables binaries found on PATH (or at the given paths).
type Exec struct {
	RestorePath string // default "iptables-restore"
	SavePath    string // default "iptables-save"
	// IPTablesPath is the iptables binary for single-chain probes.
	IPTablesPath string // default "iptables"
	// Wrapper prefixes every command, e.g. {"ip", "netns", "exec", NAME}
	// so tests and the benchmark harness work inside their own namespace.
	Wrapper []string
}

func (x Exec) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	argv := append(append(append([]string(nil), x.Wrapper...), name), args...)
	return exec.CommandContext(ctx, argv[0], argv[1:]...)
}

// Restore implements Interface. `-w 5` waits for the xtables lock (legacy
// backend; the nft backend ignores it).
func (x Exec) Restore(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	cmd := x.command(ctx, orDefault(x.RestorePath, "iptables-restore"), "-w", "5", "--noflush")
	cmd.Stdin = bytes.NewReader(data)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		return &RestoreError{Line: errorLine(msg), Output: msg, Err: err}
	}
	return nil
}

// Save implements Interface.
func (x Exec) Save(ctx context.Context) ([]byte, error) {
	cmd := x.command(ctx, orDefault(x.SavePath, "iptables-save"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("iptables-save: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// ChainExists implements Interface.
func (x Exec) ChainExists(ctx context.Context, table, chain string) (bool, error) {
	cmd := x.command(ctx, orDefault(x.IPTablesPath, "iptables"), "-w", "5", "-t", table, "-S", chain)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return true, nil
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		return false, nil // "No chain/target/match by that name."
	}
	return false, fmt.Errorf("iptables -t %s -S %s: %w: %s", table, chain, err, strings.TrimSpace(string(out)))
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// errorLine finds the failing input line in iptables-restore's message:
// "Error occurred at line: N" (parse errors) or "line N: … failed" (kernel
// errors on the nft backend).
var errorLineRE = regexp.MustCompile(`(?:Error occurred at line: |line )(\d+)`)

func errorLine(msg string) int {
	m := errorLineRE.FindStringSubmatch(msg)
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return 0
	}
	return n
}

// NFTables reports whether iptables-restore is the nf_tables variant, whose
// restore cost grows with the square of the number of chains a restore
// names unless it is told to fetch all chains (rules.Config.BulkRules).
func (x Exec) NFTables(ctx context.Context) (bool, error) {
	out, err := x.command(ctx, orDefault(x.RestorePath, "iptables-restore"), "--version").CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("iptables-restore --version: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return strings.Contains(string(out), "nf_tables"), nil
}

// sctpProbe adds and removes an SCTP-matching rule in one transaction: it
// leaves nothing behind and fails exactly when the kernel lacks SCTP match
// support.
const sctpProbe = `*filter
:WEFT-PROBE-SCTP - [0:0]
-A WEFT-PROBE-SCTP -m comment --comment "weft-proxy SCTP probe" -p sctp -m sctp --dport 1 -j RETURN
-F WEFT-PROBE-SCTP
-X WEFT-PROBE-SCTP
COMMIT
`

// SupportsSCTP reports whether SCTP Services can be programmed; when not,
// they are skipped (and logged) instead of failing every sync.
func SupportsSCTP(ctx context.Context, ipt Interface) bool {
	return ipt.Restore(ctx, []byte(sctpProbe)) == nil
}
