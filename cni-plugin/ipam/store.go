package ipam

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	stateFile   = "state.json"
	lockFile    = "lock"
	fileVersion = 1
)

// Store keeps one network's State in <dataDir>/<network>/state.json. Every
// operation takes an flock on <dir>/lock, so the many plugin processes a
// runtime starts in parallel (CNI SPEC, section 3 "Lifecycle & Ordering":
// plugins must lock shared resources such as IPAM databases) see each other's
// writes; writes go to a temporary file that is renamed over the state, so a
// reader never sees half a file.
type Store struct {
	dir string
}

// Open returns the store of network under dataDir, creating its directory.
func Open(dataDir, network string) (*Store, error) {
	if !filepath.IsAbs(dataDir) {
		return nil, fmt.Errorf("ipam data dir %q is not an absolute path", dataDir)
	}
	if network == "" || network == "." || network == ".." || strings.ContainsAny(network, `/\`) {
		return nil, fmt.Errorf("network name %q cannot name a directory", network)
	}
	dir := filepath.Join(dataDir, network)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create ipam dir: %w", err)
	}
	return &Store{dir: dir}, nil
}

// Dir is the directory holding the state and the lock.
func (s *Store) Dir() string { return s.dir }

// Update runs fn on the current state under the exclusive lock and saves the
// state if fn reports a change.
func (s *Store) Update(fn func(*State) (changed bool, err error)) error {
	unlock, err := s.lock(unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := s.load(true)
	if err != nil {
		return err
	}
	changed, err := fn(&st)
	if err != nil || !changed {
		return err
	}
	return s.save(st)
}

// View returns the current state under a shared lock.
func (s *Store) View() (State, error) {
	unlock, err := s.lock(unix.LOCK_SH)
	if err != nil {
		return State{}, err
	}
	defer unlock()
	return s.load(false)
}

// Allocate reserves an address of r for a (see State.Allocate). When r is
// exhausted it first reclaims addresses whose recorded netns is gone, so a
// node whose runtime lost DELs heals itself instead of refusing pods.
func (s *Store) Allocate(r Range, a Attachment) (ip netip.Addr, fresh bool, err error) {
	err = s.Update(func(st *State) (bool, error) {
		ip, fresh, err = st.Allocate(r, a)
		if errors.Is(err, ErrExhausted) && len(st.Retain(netnsAlive)) > 0 {
			ip, fresh, err = st.Allocate(r, a)
		}
		return fresh, err
	})
	return ip, fresh, err
}

// Release frees the addresses held by (containerID, ifName); releasing
// nothing is success.
func (s *Store) Release(containerID, ifName string) ([]netip.Addr, error) {
	var freed []netip.Addr
	err := s.Update(func(st *State) (bool, error) {
		freed = st.Release(containerID, ifName)
		return len(freed) > 0, nil
	})
	return freed, err
}

// GC frees every address whose (ContainerID, IfName) is not in valid: the
// IPAM part of CNI GC (CNI SPEC, section 2, GC, "cni.dev/valid-attachments").
func (s *Store) GC(valid []Attachment) ([]netip.Addr, error) {
	keep := make(map[[2]string]bool, len(valid))
	for _, a := range valid {
		keep[[2]string{a.ContainerID, a.IfName}] = true
	}
	return s.retain(func(_ netip.Addr, a Attachment) bool { return keep[[2]string{a.ContainerID, a.IfName}] })
}

// GCStaleNetns frees every address whose recorded netns path no longer
// exists. weft-cni-node runs it periodically, because containerd 1.6 never
// sends CNI GC.
func (s *Store) GCStaleNetns() ([]netip.Addr, error) { return s.retain(netnsAlive) }

func (s *Store) retain(keep func(netip.Addr, Attachment) bool) ([]netip.Addr, error) {
	var freed []netip.Addr
	err := s.Update(func(st *State) (bool, error) {
		freed = st.Retain(keep)
		return len(freed) > 0, nil
	})
	return freed, err
}

// netnsAlive is conservative: an allocation is stale only when its netns path
// is missing from a directory that exists. A path we cannot judge (no netns
// recorded, /proc/<pid>/ns/net of a process in another PID namespace, a
// directory not mounted here) keeps its address.
func netnsAlive(_ netip.Addr, a Attachment) bool {
	if a.Netns == "" {
		return true
	}
	if _, err := os.Stat(filepath.Dir(a.Netns)); err != nil {
		return true
	}
	_, err := os.Lstat(a.Netns)
	return !errors.Is(err, fs.ErrNotExist)
}

func (s *Store) lock(how int) (unlock func(), err error) {
	path := filepath.Join(s.dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open ipam lock: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close() //nolint:errcheck // the lock was never taken
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil //nolint:errcheck // closing releases the flock
}

type stateFileV1 struct {
	Version int `json:"version"`
	State
}

// load reads the state. A file that does not parse can only be the remains
// of a crash (writes are renamed into place), and a crash also ended every
// sandbox the file recorded, so the state starts empty; under the exclusive
// lock (setAside) the remains are kept as state.json.corrupt for inspection.
func (s *Store) load(setAside bool) (State, error) {
	empty := State{Allocations: map[netip.Addr]Attachment{}}
	path := filepath.Join(s.dir, stateFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return empty, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("read ipam state: %w", err)
	}
	var f stateFileV1
	if err := json.Unmarshal(data, &f); err != nil {
		if setAside {
			if rerr := os.Rename(path, path+".corrupt"); rerr != nil {
				return State{}, fmt.Errorf("set aside unreadable ipam state %s (%w): %w", path, err, rerr)
			}
		}
		return empty, nil
	}
	if f.Version != fileVersion {
		return State{}, fmt.Errorf("ipam state %s has version %d, want %d", path, f.Version, fileVersion)
	}
	if f.Allocations == nil {
		f.Allocations = map[netip.Addr]Attachment{}
	}
	return f.State, nil
}

// save writes the state atomically: temporary file, then rename; the lock
// makes a fixed temporary name safe. There is no fsync: it would put disk
// latency (milliseconds under image pulls) on every ADD and DEL, and what it
// protects against, a crash, is handled by load.
func (s *Store) save(st State) error {
	data, err := json.Marshal(stateFileV1{Version: fileVersion, State: st})
	if err != nil {
		return fmt.Errorf("encode ipam state: %w", err)
	}
	path := filepath.Join(s.dir, stateFile)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write ipam state: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close() //nolint:errcheck // the write error is the one to report
		return fmt.Errorf("write ipam state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close ipam state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace ipam state: %w", err)
	}
	return nil
}
