package local

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is a daemon the cluster started. StartTicks (field 22 of
// /proc/<pid>/stat) tells it apart from a later process that reuses the PID,
// so teardown never signals a process it did not start.
type Process struct {
	Name       string `json:"name"`
	PID        int    `json:"pid"`
	StartTicks uint64 `json:"startTicks"`
}

// startProcess runs bin detached (own session, output to logPath), inside the
// network namespace at netns when that is set.
func startProcess(name, netns, bin string, args []string, logPath string) (Process, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return Process{}, fmt.Errorf("create log dir: %w", err)
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return Process{}, fmt.Errorf("open %s: %w", logPath, err)
	}
	defer logFile.Close()
	argv := append([]string{bin}, args...)
	if netns != "" {
		argv = append([]string{"nsenter", "--net=" + netns, "--"}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return Process{}, fmt.Errorf("start %s: %w", name, err)
	}
	// Reap it if it dies while we are still running; after we exit, init does.
	go func() { _ = cmd.Wait() }()
	ticks, err := startTicks(cmd.Process.Pid)
	if err != nil {
		return Process{}, fmt.Errorf("start %s: %w", name, err)
	}
	return Process{Name: name, PID: cmd.Process.Pid, StartTicks: ticks}, nil
}

// startTicks reads the start time of pid from /proc/<pid>/stat.
func startTicks(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read stat of %d: %w", pid, err)
	}
	return parseStartTicks(string(data))
}

// parseStartTicks extracts field 22 of a /proc/<pid>/stat line; the command
// name (field 2) may contain spaces and parentheses, so fields are counted
// after its closing parenthesis.
func parseStartTicks(stat string) (uint64, error) {
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, errors.New("malformed stat: no command")
	}
	fields := strings.Fields(stat[end+1:])
	// fields[0] is field 3 (state); field 22 is fields[19].
	if len(fields) < 20 {
		return 0, errors.New("malformed stat: too few fields")
	}
	if fields[0] == "Z" {
		return 0, errors.New("process is a zombie")
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// Alive reports whether the very process that was started still runs.
func (p Process) Alive() bool {
	ticks, err := startTicks(p.PID)
	return err == nil && ticks == p.StartTicks
}

// Stop sends SIGTERM, waits up to grace, then SIGKILLs. Stopping a process
// that is already gone is not an error.
func (p Process) Stop(grace time.Duration) error {
	if !p.Alive() {
		return nil
	}
	if err := syscall.Kill(p.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %s (pid %d): %w", p.Name, p.PID, err)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !p.Alive() {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %s (pid %d): %w", p.Name, p.PID, err)
	}
	for range 100 {
		if !p.Alive() {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s (pid %d) survived SIGKILL", p.Name, p.PID)
}
