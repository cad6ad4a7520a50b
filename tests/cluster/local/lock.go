package local

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// LockPath serialises commands that change the cluster (up, down, install,
// load-images): there is one cluster per machine, and two of them
// interleaving leave, say, a kubeconfig from one run and an API server from
// the other. It lives outside the state dir, which `down` deletes.
const LockPath = "/run/weft-cluster.lock"

// Lock takes the cluster lock, waiting (and saying so) while another command
// holds it. The returned func releases it.
func Lock(out io.Writer) (func(), error) {
	f, err := os.OpenFile(LockPath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", LockPath, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", LockPath, err)
		}
		holder, _ := os.ReadFile(LockPath)
		fmt.Fprintf(out, "waiting for another cluster command (pid %s) to finish\n", strings.TrimSpace(string(holder)))
		start := time.Now()
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", LockPath, err)
		}
		fmt.Fprintf(out, "waited %v for the cluster lock\n", time.Since(start).Round(time.Second))
	}
	// The holder's PID, so a waiting command can say whom it waits for.
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s: %w", LockPath, err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s: %w", LockPath, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
