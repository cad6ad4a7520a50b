package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/weftmesh/weft/cni-plugin/internal/nstest"
)

// stage is one plugin of a subject's chain with its configuration.
type stage struct {
	plugin string
	conf   []byte
}

// subject is one plugin chain under test with its own node and pod
// namespaces. Chained stages get the previous stage's result as
// prevResult, as a runtime does with a conflist.
type subject struct {
	name, cniPath string
	stages        []stage
	args          string // CNI_ARGS
	// reset, if set, runs untimed after every round; stop, if set, when
	// the subject is closed.
	reset          func(*subject) error
	stop           func()
	node, pod      *nstest.NS
	add, del, both []time.Duration
}

func newSubject(name, cniPath string, stages ...stage) (s *subject, err error) {
	for _, st := range stages {
		if _, err := os.Stat(st.plugin); err != nil {
			return nil, fmt.Errorf("%s plugin: %w", name, err)
		}
	}
	s = &subject{name: name, cniPath: cniPath, stages: stages}
	if s.node, err = nstest.New("benchnode"); err != nil {
		return nil, err
	}
	if s.pod, err = nstest.New("benchpod"); err != nil {
		return nil, errors.Join(err, s.node.Delete())
	}
	return s, nil
}

func (s *subject) close() error {
	if s.stop != nil {
		s.stop()
	}
	return errors.Join(s.pod.Delete(), s.node.Delete())
}

// exec runs one plugin from a thread inside the node namespace, so the
// child process starts there, as it would under a runtime on that node.
func (s *subject) exec(ctx context.Context, st stage, command, containerID string) ([]byte, time.Duration, error) {
	env := append(os.Environ(),
		"CNI_COMMAND="+command, "CNI_CONTAINERID="+containerID, "CNI_NETNS="+s.pod.Path(),
		"CNI_IFNAME=eth0", "CNI_PATH="+s.cniPath, "CNI_ARGS="+s.args)
	var stderr bytes.Buffer
	var out []byte
	var took time.Duration
	err := s.node.Do(func(ns.NetNS) (err error) {
		start := time.Now()
		out, err = (&invoke.RawExec{Stderr: &stderr}).ExecPlugin(ctx, st.plugin, st.conf, env)
		took = time.Since(start)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("%s %s %s: %w (stderr: %s)", s.name, command, containerID, err, strings.TrimSpace(stderr.String()))
	}
	return out, took, nil
}

// withPrevResult adds prevResult to a plugin configuration.
func withPrevResult(conf, prev []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(conf, &m); err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	m["prevResult"] = prev
	return json.Marshal(m)
}

// round does one ADD and one DEL of the whole chain (DEL in reverse
// order); record says whether to keep the timings, summed over stages.
func (s *subject) round(ctx context.Context, containerID string, record bool) error {
	var add, del time.Duration
	var out []byte
	for i, st := range s.stages {
		if i > 0 {
			conf, err := withPrevResult(st.conf, out)
			if err != nil {
				return err
			}
			st.conf = conf
		}
		var took time.Duration
		var err error
		if out, took, err = s.exec(ctx, st, "ADD", containerID); err != nil {
			return err
		}
		add += took
	}
	var res struct {
		IPs []struct{ Address string } `json:"ips"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.IPs) != 1 {
		return fmt.Errorf("%s ADD %s: unexpected result %q", s.name, containerID, out)
	}
	for i := len(s.stages) - 1; i >= 0; i-- {
		_, took, err := s.exec(ctx, s.stages[i], "DEL", containerID)
		if err != nil {
			return err
		}
		del += took
	}
	if s.reset != nil {
		if err := s.reset(s); err != nil {
			return fmt.Errorf("%s reset after %s: %w", s.name, containerID, err)
		}
	}
	if record {
		s.add, s.del, s.both = append(s.add, add), append(s.del, del), append(s.both, add+del)
	}
	return nil
}

// verifyClean checks that every round released its address and veth.
func (s *subject) verifyClean() error {
	out, err := s.node.Run("ip", "-o", "link", "show", "master", "weft0")
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) != "" {
		return fmt.Errorf("%s left ports on the bridge: %s", s.name, out)
	}
	var conf struct {
		DataDir string `json:"dataDir"`
		IPAM    struct {
			DataDir string `json:"dataDir"`
		} `json:"ipam"`
	}
	if err := json.Unmarshal(s.stages[0].conf, &conf); err != nil {
		return fmt.Errorf("decode %s config: %w", s.name, err)
	}
	dir := filepath.Join(cmp.Or(conf.DataDir, conf.IPAM.DataDir), "bench")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("%s data dir: %w", s.name, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "10.") { // host-local keeps one file per address
			return fmt.Errorf("%s leaked address %s", s.name, e.Name())
		}
	}
	if data, err := os.ReadFile(filepath.Join(dir, "state.json")); err == nil && !bytes.Contains(data, []byte(`"allocations":{}`)) {
		return fmt.Errorf("%s leaked addresses: %s", s.name, data)
	}
	return nil
}
