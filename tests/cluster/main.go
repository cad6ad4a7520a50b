// Command cluster runs Weft's local multi-node Kubernetes cluster:
//
//	go run ./tests/cluster up|down|status|install|load-images|demo [-nodes 3]
//
// See tests/cluster/local for what it builds and shared/notes/local-cluster.md
// for why it is built that way.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/weftmesh/weft/tests/cluster/local"
)

func main() {
	fs := flag.NewFlagSet("cluster", flag.ExitOnError)
	nodes := fs.Int("nodes", 3, "number of nodes")
	stateDir := fs.String("state-dir", local.DefaultStateDir, "runtime state (fixed, so leftovers are found)")
	cacheDir := fs.String("cache-dir", ".cache", "the repository's cache: bin/, images/, cluster/")
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: cluster up|down|status|install|load-images|demo [flags]")
		os.Exit(2)
	}
	cmd := os.Args[1]
	if err := fs.Parse(os.Args[2:]); err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cmd, *nodes, *stateDir, *cacheDir); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cmd string, nodes int, stateDir, cacheDir string) error {
	cache, err := filepath.Abs(cacheDir)
	if err != nil {
		return fmt.Errorf("cache dir: %w", err)
	}
	c := local.Config{Nodes: nodes, StateDir: stateDir, CacheDir: cache}
	if cmd != "status" && cmd != "demo" {
		unlock, err := local.Lock(os.Stdout)
		if err != nil {
			return err
		}
		defer unlock()
	}
	switch cmd {
	case "up":
		return local.Up(ctx, c, os.Stdout)
	case "down":
		return local.Down(ctx, c, os.Stdout)
	case "status":
		return local.Status(ctx, c, os.Stdout)
	case "install":
		return local.InstallMesh(ctx, c, os.Stdout)
	case "load-images":
		return local.LoadImages(ctx, c, os.Stdout)
	case "demo":
		return local.Demo(ctx, c, os.Stdout)
	default:
		return fmt.Errorf("unknown command %q (want up, down, status, install, load-images or demo)", cmd)
	}
}
