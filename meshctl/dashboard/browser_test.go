package dashboard

import (
	"bytes"
	"context"
	"flag"
	"image"
	"image/png"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/meshctl/internal/fakestore"
)

var screenshotOut = flag.String("screenshot", "", "also write the dashboard's screenshot to this file")

// TestDashboardInChromium loads the page in headless Chromium (Debian's
// chromium, which `make deps` installs from tools/packages.txt) against
// the fake bookinfo and trace store, and checks the DOM the page's script
// built — service graph nodes, edge rates, the trace's timeline — and that
// the screenshot is a real picture.
func TestDashboardInChromium(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed: make deps installs it (tools/packages.txt), or apt-get install chromium")
	}
	s, _ := dashboard(t)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	dir := t.TempDir()
	shot := filepath.Join(dir, "shot.png")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--window-size=1200,800",
		"--screenshot="+shot, "--dump-dom", "--virtual-time-budget=5000", srv.URL+"/")
	// Chromium forks renderers: kill the whole group on timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	t.Logf("chromium ran %v", time.Since(start).Round(time.Millisecond))
	require.NoError(t, err, "chromium: %s", tail(stderr.String(), 2000))
	dom := stdout.String()

	// The graph: every bookinfo workload and Service, and measured rates.
	for _, id := range []string{"workload:bookinfo/productpage-v1", "workload:bookinfo/reviews-v3", "service:bookinfo/reviews", "service:bookinfo/ratings"} {
		assert.Contains(t, dom, `data-id="`+id+`"`, "node %s drawn", id)
	}
	assert.Contains(t, dom, ">productpage-v1</text>")
	assert.Contains(t, dom, `data-label="20 rps · 10.0% 5xx · p99 50ms"`, "productpage → reviews edge label")
	assert.Contains(t, dom, ">p99 50ms</tspan>")
	assert.Contains(t, dom, `class="edge bad"`, "10% 5xx is drawn red")
	assert.Contains(t, dom, `class="edge backend"`)
	assert.Contains(t, dom, `data-label="6.0 rps · 0.0% 5xx"`, "reviews → reviews-v1: what v1 served, from its request metrics")
	// The trace.
	assert.Contains(t, dom, `data-trace-id="`+fakestore.NetprogID+`"`)
	assert.Contains(t, dom, "3 nodes programmed in max 412ms, 4 proxies ACKed in max 1.2s, 1 NACKed")
	assert.Contains(t, dom, ">reviews-v2-7c8d9e0f1-qrstu.bookinfo</span><span class=\"outcome error\">NACK</span>")
	assert.Contains(t, dom, `class="bar error"`)
	assert.NotContains(t, dom, "cannot reach meshctl dashboard")
	assert.Contains(t, dom, "namespace bookinfo")

	b, err := os.ReadFile(shot)
	require.NoError(t, err, "screenshot written")
	img, err := png.Decode(bytes.NewReader(b))
	require.NoError(t, err)
	assert.Equal(t, image.Rect(0, 0, 1200, 800), img.Bounds())
	assert.GreaterOrEqual(t, colours(img), 50, "a drawn page has many colours, a blank one few")
	if *screenshotOut != "" {
		require.NoError(t, os.WriteFile(*screenshotOut, b, 0o644))
	}
}

// colours counts the distinct colours of img (sampled every 2nd pixel).
func colours(img image.Image) int {
	seen := map[[4]uint32]bool{}
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y += 2 {
		for x := r.Min.X; x < r.Max.X; x += 2 {
			cr, cg, cb, ca := img.At(x, y).RGBA()
			seen[[4]uint32{cr, cg, cb, ca}] = true
		}
	}
	return len(seen)
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
