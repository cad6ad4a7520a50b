package opstats

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAppendAndDrain(t *testing.T) {
	dir := t.TempDir()
	recs, bad, err := Drain(dir)
	require.NoError(t, err)
	assert.Empty(t, recs)
	assert.Zero(t, bad)

	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	require.NoError(t, Append(dir, Record{Plugin: "weft-bridge", Command: "ADD", Start: start, Seconds: 0.25}))
	require.NoError(t, Append(dir, Record{Plugin: "weft-bridge", Command: "DEL", Start: start, Seconds: 0.01, Error: "11"}))
	// A torn line from a crashed writer is skipped, not fatal.
	f, err := os.OpenFile(filepath.Join(dir, FileName), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"plugin":"weft-br` + "\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())

	recs, bad, err = Drain(dir)
	require.NoError(t, err)
	assert.Equal(t, []Record{
		{Plugin: "weft-bridge", Command: "ADD", Start: start, Seconds: 0.25},
		{Plugin: "weft-bridge", Command: "DEL", Start: start, Seconds: 0.01, Error: "11"},
	}, recs)
	assert.Equal(t, 1, bad)
	recs, _, err = Drain(dir)
	require.NoError(t, err)
	assert.Empty(t, recs, "a drain empties the spool")
}

// TestConcurrentAppendsDuringDrains: plugins run in parallel with the
// drain; every record is read exactly once.
func TestConcurrentAppendsDuringDrains(t *testing.T) {
	dir := t.TempDir()
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				assert.NoError(t, Append(dir, Record{Plugin: "p", Command: "ADD", Seconds: float64(w*each + i)}))
			}
		})
	}
	seen := map[float64]int{}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		recs, bad, err := Drain(dir)
		require.NoError(t, err)
		assert.Zero(t, bad)
		for _, r := range recs {
			seen[r.Seconds]++
		}
		time.Sleep(100 * time.Microsecond) // weft-cni-node drains every few seconds, not in a busy loop
	}
	assert.Len(t, seen, writers*each)
	for v, n := range seen {
		assert.Equal(t, 1, n, "record %v", v)
	}
}

func TestSpoolIsBounded(t *testing.T) {
	dir := t.TempDir()
	big := Record{Plugin: strings.Repeat("x", 1000)}
	for range MaxBytes/1000 + 10 {
		require.NoError(t, Append(dir, big))
	}
	fi, err := os.Stat(filepath.Join(dir, FileName))
	require.NoError(t, err)
	assert.LessOrEqual(t, fi.Size(), int64(MaxBytes))
}

func TestWrap(t *testing.T) {
	dir := t.TempDir()
	cniErr := types.NewError(types.ErrTryAgainLater, "busy", "")
	for _, tc := range []struct {
		err  error
		code string
	}{{nil, ""}, {cniErr, "11"}, {errors.New("boom"), "error"}} {
		cmd := Wrap("weft-bridge", "ADD", func([]byte) string { return dir }, func(*skel.CmdArgs) error { return tc.err })
		assert.Equal(t, tc.err, cmd(&skel.CmdArgs{}), "the command's error passes through")
		recs, _, err := Drain(dir)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		assert.Equal(t, tc.code, recs[0].Error)
		assert.Equal(t, "ADD", recs[0].Command)
	}
	// No directory: nothing recorded, nothing fails.
	cmd := Wrap("weft-bridge", "DEL", func([]byte) string { return "" }, func(*skel.CmdArgs) error { return nil })
	assert.NoError(t, cmd(&skel.CmdArgs{}))
}
