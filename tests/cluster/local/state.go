package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// State is what a run created that teardown must undo. It is saved after
// every change, so a run killed halfway still leaves an accurate record.
type State struct {
	Nodes     []string          `json:"nodes"`
	Processes []Process         `json:"processes"`
	Sysctls   map[string]string `json:"sysctls"` // original host values, restored on teardown
	// CreatedPaths are host paths outside the state dir that did not exist
	// before the run (see runtimePaths); teardown removes them.
	CreatedPaths []string `json:"createdPaths"`
	path         string
}

func loadState(path string) (*State, error) {
	s := &State{path: path, Sysctls: map[string]string{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("parse state %s: %w", path, err)
	}
	if s.Sysctls == nil {
		s.Sysctls = map[string]string{}
	}
	return s, nil
}

func (s *State) save() error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o755); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return os.Rename(tmp, s.path)
}

// addProcess records a started process at once.
func (s *State) addProcess(p Process) error {
	s.Processes = append(s.Processes, p)
	return s.save()
}

// process finds a recorded process by name.
func (s *State) process(name string) (Process, bool) {
	for _, p := range s.Processes {
		if p.Name == name {
			return p, true
		}
	}
	return Process{}, false
}
