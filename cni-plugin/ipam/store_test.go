package ipam

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The test binary doubles as a helper process, so parallel allocations run
// in separate processes exactly as parallel plugin invocations do.
const helperEnv = "WEFT_IPAM_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		if err := runHelper(mode); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runHelper allocates or releases HELPER_COUNT attachments named
// HELPER_PREFIX-<i>, one Store operation each, printing allocated addresses.
func runHelper(mode string) error {
	count, err := strconv.Atoi(os.Getenv("HELPER_COUNT"))
	if err != nil {
		return err
	}
	store, err := Open(os.Getenv("HELPER_DIR"), "weft")
	if err != nil {
		return err
	}
	r, err := NewRange(netip.MustParsePrefix(os.Getenv("HELPER_SUBNET")), netip.Addr{})
	if err != nil {
		return err
	}
	for i := range count {
		id := fmt.Sprintf("%s-%d", os.Getenv("HELPER_PREFIX"), i)
		switch mode {
		case "allocate":
			ip, _, err := store.Allocate(r, Attachment{ContainerID: id, IfName: "eth0", Netns: "/var/run/netns/" + id})
			if err != nil {
				return err
			}
			fmt.Println(ip)
		case "release":
			if _, err := store.Release(id, "eth0"); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown helper mode %q", mode)
		}
	}
	return nil
}

func startHelpers(t *testing.T, mode, dir string, procs, count int) []*exec.Cmd {
	t.Helper()
	var cmds []*exec.Cmd
	for p := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"="+mode, "HELPER_DIR="+dir, "HELPER_SUBNET=10.244.1.0/24",
			"HELPER_COUNT="+strconv.Itoa(count), fmt.Sprintf("HELPER_PREFIX=p%d", p))
		cmd.Stdout, cmd.Stderr = &bytes.Buffer{}, &bytes.Buffer{}
		require.NoError(t, cmd.Start())
		cmds = append(cmds, cmd)
	}
	return cmds
}

func TestStoreParallelProcesses(t *testing.T) {
	const procs, perProc = 8, 30 // 240 of the 253 addresses of a /24
	dir := t.TempDir()

	seen := map[string]string{}
	for p, cmd := range startHelpers(t, "allocate", dir, procs, perProc) {
		require.NoError(t, cmd.Wait(), "helper %d: %s", p, cmd.Stderr)
		sc := bufio.NewScanner(cmd.Stdout.(*bytes.Buffer))
		for sc.Scan() {
			who := fmt.Sprintf("p%d", p)
			if prev, dup := seen[sc.Text()]; dup {
				t.Fatalf("%s allocated to both %s and %s", sc.Text(), prev, who)
			}
			seen[sc.Text()] = who
		}
	}
	assert.Len(t, seen, procs*perProc)

	store, err := Open(dir, "weft")
	require.NoError(t, err)
	st, err := store.View()
	require.NoError(t, err)
	require.Len(t, st.Allocations, procs*perProc)
	for ip := range st.Allocations {
		assert.Contains(t, seen, ip.String())
	}

	for p, cmd := range startHelpers(t, "release", dir, procs, perProc) {
		require.NoError(t, cmd.Wait(), "helper %d: %s", p, cmd.Stderr)
	}
	st, err = store.View()
	require.NoError(t, err)
	assert.Empty(t, st.Allocations, "every address released")
	assert.NoFileExists(t, filepath.Join(dir, "weft", stateFile+".tmp"))
}

func TestStoreAllocateReleaseRoundTrip(t *testing.T) {
	store, err := Open(t.TempDir(), "weft")
	require.NoError(t, err)
	r := mustRange(t, "10.244.1.0/24")
	ip, fresh, err := store.Allocate(r, att("a"))
	require.NoError(t, err)
	assert.True(t, fresh)
	again, fresh, err := store.Allocate(r, att("a"))
	require.NoError(t, err)
	assert.False(t, fresh)
	assert.Equal(t, ip, again)

	freed, err := store.Release("a", "eth0")
	require.NoError(t, err)
	assert.Equal(t, []netip.Addr{ip}, freed)
	freed, err = store.Release("a", "eth0")
	require.NoError(t, err)
	assert.Empty(t, freed, "second release is a no-op")

	next, _, err := store.Allocate(r, att("b"))
	require.NoError(t, err)
	assert.Equal(t, ip.Next(), next, "round robin survives across processes via the state file")
}

func TestStoreGC(t *testing.T) {
	store, err := Open(t.TempDir(), "weft")
	require.NoError(t, err)
	r := mustRange(t, "10.244.1.0/24")
	for _, id := range []string{"a", "b", "c"} {
		_, _, err := store.Allocate(r, att(id))
		require.NoError(t, err)
	}
	freed, err := store.GC([]Attachment{{ContainerID: "b", IfName: "eth0"}, {ContainerID: "c", IfName: "net1"}})
	require.NoError(t, err)
	assert.Equal(t, []netip.Addr{addr("10.244.1.2"), addr("10.244.1.4")}, freed, "c holds eth0, not net1")
	st, err := store.View()
	require.NoError(t, err)
	assert.Equal(t, map[netip.Addr]Attachment{addr("10.244.1.3"): att("b")}, st.Allocations)
}

func TestStoreGCStaleNetns(t *testing.T) {
	store, err := Open(t.TempDir(), "weft")
	require.NoError(t, err)
	netnsDir := t.TempDir()
	r := mustRange(t, "10.244.1.0/24")
	alive, gone := filepath.Join(netnsDir, "alive"), filepath.Join(netnsDir, "gone")
	require.NoError(t, os.WriteFile(alive, nil, 0o644))
	for _, a := range []Attachment{
		{ContainerID: "alive", IfName: "eth0", Netns: alive},
		{ContainerID: "gone", IfName: "eth0", Netns: gone},
		{ContainerID: "unknown", IfName: "eth0"},
		{ContainerID: "elsewhere", IfName: "eth0", Netns: "/proc/999999999/ns/net"},
	} {
		_, _, err := store.Allocate(r, a)
		require.NoError(t, err)
	}
	freed, err := store.GCStaleNetns()
	require.NoError(t, err)
	assert.Equal(t, []netip.Addr{addr("10.244.1.3")}, freed, "only the attachment whose netns file is missing")
	st, err := store.View()
	require.NoError(t, err)
	assert.Len(t, st.Allocations, 3)
}

func TestStoreAllocateReclaimsStaleWhenExhausted(t *testing.T) {
	store, err := Open(t.TempDir(), "weft")
	require.NoError(t, err)
	netnsDir := t.TempDir()
	r := mustRange(t, "10.0.0.0/29") // 5 usable addresses
	for i := range r.Size() {
		path := filepath.Join(netnsDir, strconv.Itoa(i))
		require.NoError(t, os.WriteFile(path, nil, 0o644))
		_, _, err := store.Allocate(r, Attachment{ContainerID: strconv.Itoa(i), IfName: "eth0", Netns: path})
		require.NoError(t, err)
	}
	_, _, err = store.Allocate(r, att("late"))
	require.EqualError(t, err, "range 10.0.0.0/29 exhausted")

	require.NoError(t, os.Remove(filepath.Join(netnsDir, "2"))) // sandbox gone, DEL lost
	ip, fresh, err := store.Allocate(r, att("late"))
	require.NoError(t, err)
	assert.True(t, fresh)
	assert.Equal(t, addr("10.0.0.4"), ip)
}

func TestStoreErrors(t *testing.T) {
	_, err := Open("relative/dir", "weft")
	require.EqualError(t, err, `ipam data dir "relative/dir" is not an absolute path`)
	_, err = Open(t.TempDir(), "../escape")
	require.EqualError(t, err, `network name "../escape" cannot name a directory`)

	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	_, err = Open(file, "weft")
	require.ErrorContains(t, err, "create ipam dir: mkdir "+file+": not a directory")

	store, err := Open(t.TempDir(), "weft")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(store.Dir(), stateFile), []byte(`{"version":2}`), 0o644))
	_, _, err = store.Allocate(mustRange(t, "10.244.1.0/24"), att("a"))
	require.EqualError(t, err, "ipam state "+filepath.Join(store.Dir(), stateFile)+" has version 2, want 1")
}

func TestStoreRecoversFromTornState(t *testing.T) {
	store, err := Open(t.TempDir(), "weft")
	require.NoError(t, err)
	path := filepath.Join(store.Dir(), stateFile)
	require.NoError(t, os.WriteFile(path, nil, 0o644)) // what a power loss can leave
	st, err := store.View()
	require.NoError(t, err)
	assert.Empty(t, st.Allocations)

	ip, _, err := store.Allocate(mustRange(t, "10.244.1.0/24"), att("a"))
	require.NoError(t, err)
	assert.Equal(t, addr("10.244.1.2"), ip)
	assert.FileExists(t, path+".corrupt", "the remains are kept")
	st, err = store.View()
	require.NoError(t, err)
	assert.Len(t, st.Allocations, 1)
}
