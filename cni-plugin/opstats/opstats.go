// Package opstats carries CNI command outcomes from the plugins to
// weft-cni-node. A plugin lives for one command and has no metrics
// endpoint, so it appends one JSON line per ADD/DEL/CHECK to a file in its
// data directory on the host, and weft-cni-node, which mounts that
// directory, drains the file on every sync into its metrics
// (weft.cni.operation.*). Recording is best effort: it never fails or
// slows a CNI command beyond a small write, and never prints (a plugin's
// stdout is its result).
//
// Concurrency: the runtime runs plugins in parallel. Appends and the drain
// take an exclusive flock on the file; the drain unlinks the file before
// reading it, and an append that waited for the lock checks that its open
// file is still the one at the path (else it reopens), so no record lands
// in a file that was already read.
package opstats

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// FileName is the spool file in a plugin's data directory.
const FileName = "cni-ops.jsonl"

// MaxBytes bounds the spool while nobody drains it (weft-cni-node down):
// appends beyond it are dropped, not the CNI command.
const MaxBytes = 1 << 20

// Record is one CNI command.
type Record struct {
	Plugin  string    `json:"plugin"`
	Command string    `json:"command"`
	Start   time.Time `json:"start"`
	Seconds float64   `json:"seconds"`
	// Error is empty on success; else the CNI error code
	// (https://github.com/containernetworking/cni/blob/main/SPEC.md#error)
	// as a string, or "error" for errors without one.
	Error string `json:"error,omitempty"`
}

// Append adds r to the spool in dir.
func Append(dir string, r Record) error {
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode cni op: %w", err)
	}
	line = append(line, '\n')
	path := filepath.Join(dir, FileName)
	for range 10 {
		done, err := appendOnce(path, line)
		if done || err != nil {
			return err
		}
	}
	return errors.New("cni op spool keeps moving; record dropped")
}

// appendOnce writes line to the file at path unless a drain renamed it
// while we waited for the lock (done false: try again).
func appendOnce(path string, line []byte) (done bool, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return false, fmt.Errorf("open cni op spool: %w", err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return false, fmt.Errorf("lock cni op spool: %w", err)
	}
	held, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat cni op spool: %w", err)
	}
	if cur, err := os.Stat(path); err != nil || !os.SameFile(held, cur) {
		return false, nil
	}
	if held.Size()+int64(len(line)) > MaxBytes {
		return true, nil
	}
	if _, err := f.Write(line); err != nil {
		return false, fmt.Errorf("write cni op spool: %w", err)
	}
	return true, nil
}

// Drain returns the records spooled in dir and empties the spool. Lines
// that do not parse (a torn write after a crash) are skipped and counted.
func Drain(dir string) (recs []Record, bad int, err error) {
	path := filepath.Join(dir, FileName)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("open cni op spool: %w", err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return nil, 0, fmt.Errorf("lock cni op spool: %w", err)
	}
	// Under the lock no append is in progress; once the file is gone from
	// the path, new appends start a new one.
	if err := os.Remove(path); err != nil {
		return nil, 0, fmt.Errorf("remove cni op spool: %w", err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			bad++
			continue
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		return recs, bad, fmt.Errorf("read cni op spool: %w", err)
	}
	return recs, bad, nil
}
