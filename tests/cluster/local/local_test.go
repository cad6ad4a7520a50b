package local

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNodeList(t *testing.T) {
	c := Config{Nodes: 3, StateDir: "/s", CacheDir: "/c"}
	require.NoError(t, c.Validate())
	nodes := c.NodeList()
	require.Len(t, nodes, 3)
	assert.Equal(t, Node{Index: 3, Name: "weft-node-3", IP: "172.20.0.13", HostVeth: "weft-h3", Dir: "/s/nodes/weft-node-3"}, nodes[2])
	assert.Error(t, Config{Nodes: 0, StateDir: "/s", CacheDir: "/c"}.Validate())
	assert.Error(t, Config{Nodes: 21, StateDir: "/s", CacheDir: "/c"}.Validate())
	assert.Error(t, Config{Nodes: 1, StateDir: "rel", CacheDir: "/c"}.Validate())
}

func TestParseStartTicks(t *testing.T) {
	// A command name with spaces and parentheses must not shift the fields.
	stat := "4242 (weird) name)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10"
	ticks, err := parseStartTicks(stat)
	require.NoError(t, err)
	assert.Equal(t, uint64(987654), ticks)
	_, err = parseStartTicks("4242 (x) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20")
	assert.ErrorContains(t, err, "zombie")
	_, err = parseStartTicks("garbage")
	assert.Error(t, err)
}

func TestOwnProcessIsAliveAndAStaleRecordIsNot(t *testing.T) {
	ticks, err := startTicks(os.Getpid())
	require.NoError(t, err)
	assert.True(t, Process{PID: os.Getpid(), StartTicks: ticks}.Alive())
	assert.False(t, Process{PID: os.Getpid(), StartTicks: ticks + 1}.Alive(), "a reused PID must not count as ours")
	assert.NoError(t, Process{PID: os.Getpid(), StartTicks: ticks + 1}.Stop(0), "stopping a process that is not ours is a no-op")
}

func TestGuardRulesKeepClusterTrafficLocal(t *testing.T) {
	var text []string
	for _, r := range guardRules() {
		text = append(text, strings.Join(r, " "))
	}
	all := strings.Join(text, "\n")
	// Local interfaces are let through first, then every cluster CIDR is dropped both ways.
	assert.True(t, strings.HasPrefix(text[0], "-o lo "))
	for _, cidr := range []string{ClusterCIDR, ServiceCIDR, NodeCIDR} {
		assert.Contains(t, all, "-d "+cidr+" ")
		assert.Contains(t, all, "-s "+cidr+" ")
	}
	for _, r := range text {
		assert.Contains(t, r, "--comment", "every rule carries a comment")
	}
}

func TestUnescapeMount(t *testing.T) {
	assert.Equal(t, "/a b/c", unescapeMount(`/a\040b/c`))
	assert.Equal(t, "/plain", unescapeMount("/plain"))
}

func TestNodeConfigRendersPerNodePaths(t *testing.T) {
	dir := t.TempDir()
	c := Config{Nodes: 1, StateDir: dir, CacheDir: "/c"}
	n := c.NodeList()[0]
	require.NoError(t, writeNodeConfig(c, n))
	cd, err := os.ReadFile(n.containerdDir() + "/config.toml")
	require.NoError(t, err)
	assert.Contains(t, string(cd), `conf_dir = "`+n.Dir+`/cni/net.d"`)
	assert.Contains(t, string(cd), "restrict_oom_score_adj = true")
	kc, err := os.ReadFile(n.kubeletDir() + "/config.yaml")
	require.NoError(t, err)
	for _, want := range []string{"cgroupRoot: /weft-node-1", "podLogsDir: " + n.Dir + "/pod-logs", "address: 172.20.0.11", "clusterDNS: [10.96.0.10]"} {
		assert.Contains(t, string(kc), want)
	}
}

func TestProgressReportsFailures(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&out)
	var got error
	err := p.step("thing", func() error { return os.ErrPermission }, func(e error) { got = e })
	assert.ErrorIs(t, err, os.ErrPermission)
	assert.ErrorIs(t, got, os.ErrPermission)
	assert.Contains(t, out.String(), "✗ thing")
}

func TestLockIsExclusiveAcrossHolders(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the lock lives in /run; needs root")
	}
	var out bytes.Buffer
	unlock, err := Lock(&out)
	require.NoError(t, err)
	got := make(chan struct{})
	go func() {
		unlock2, err := Lock(&out)
		if err == nil {
			unlock2()
		}
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("second holder got the lock while the first held it")
	case <-time.After(200 * time.Millisecond):
	}
	unlock()
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("second holder never got the lock")
	}
}

func TestImageArchivesListsEveryTarballSorted(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"pilot_next.tar", "pilot.tar", "pilot.tar.key", "curl.tar", "x.tar.tmp"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), nil, 0o644))
	}
	got, err := ImageArchives(dir)
	require.NoError(t, err)
	assert.Equal(t, []string{filepath.Join(dir, "curl.tar"), filepath.Join(dir, "pilot.tar"), filepath.Join(dir, "pilot_next.tar")}, got)
	_, err = ImageArchives(t.TempDir())
	assert.ErrorContains(t, err, "make images")
}
