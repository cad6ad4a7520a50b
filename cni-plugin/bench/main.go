// Command bench compares weft-bridge with the CNI reference plugins
// (bridge + host-local) doing the same job: ADD then DEL of a pod on a
// bridge with an address from a /24 and a default route. With -redirect it
// also times weft-bridge chained with weft-redirect for a meshed pod (see
// newMeshedSubject), to show what traffic capture adds to a pod's ADD. Each plugin gets
// its own throwaway node and pod network namespaces; both are run exactly as
// a runtime runs them (exec of the binary, config on stdin, CNI_* env), and
// the two alternate which goes first in every iteration, so machine noise
// hits both alike.
//
//	go run ./cni-plugin/bench -weft-bin .cache/build -ref-bin /usr/lib/cni -iterations 300
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	weftBin := flag.String("weft-bin", ".cache/build", "directory holding the weft-bridge binary")
	refBin := flag.String("ref-bin", "/usr/lib/cni", "directory holding the reference bridge and host-local plugins")
	iterations := flag.Int("iterations", 300, "ADD+DEL rounds per plugin (at least 200 for a meaningful p99)")
	warmup := flag.Int("warmup", 10, "untimed rounds per plugin first")
	redirect := flag.Bool("redirect", true, "also time weft-bridge chained with weft-redirect for a meshed pod (needs weft-redirect in -weft-bin)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *weftBin, *refBin, *iterations, *warmup, *redirect); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, weftBin, refBin string, iterations, warmup int, redirect bool) (err error) {
	if iterations < 1 {
		return errors.New("-iterations must be positive")
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root: creates network namespaces")
	}
	work, err := os.MkdirTemp("", "weft-cni-bench")
	if err != nil {
		return fmt.Errorf("create work dir: %w", err)
	}
	defer func() { err = errors.Join(err, os.RemoveAll(work)) }()

	bridgeConf := func(dir string) string {
		return fmt.Sprintf(`{"cniVersion":"1.0.0","name":"bench","type":"weft-bridge","bridge":"weft0","podCIDR":"10.244.1.0/24",`+
			`"mtu":1500,"hairpinMode":true,"dataDir":%q}`, filepath.Join(work, dir))
	}
	weft, err := newSubject("weft-bridge", weftBin, stage{filepath.Join(weftBin, "weft-bridge"), []byte(bridgeConf("weft"))})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, weft.close()) }()
	ref, err := newSubject("bridge+host-local", refBin, stage{filepath.Join(refBin, "bridge"), fmt.Appendf(nil,
		`{"cniVersion":"1.0.0","name":"bench","type":"bridge","bridge":"weft0","isGateway":true,"ipMasq":false,`+
			`"hairpinMode":true,"mtu":1500,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.244.1.0/24"}]],`+
			`"routes":[{"dst":"0.0.0.0/0"}],"dataDir":%q}}`, filepath.Join(work, "host-local"))})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, ref.close()) }()
	subjects := []*subject{weft, ref}
	if redirect {
		meshed, err := newMeshedSubject(weftBin, bridgeConf("meshed"), work)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, meshed.close()) }()
		subjects = append(subjects, meshed)
	}

	fmt.Fprintf(os.Stderr, "warming up (%d rounds each), then %d timed rounds each\n", warmup, iterations)
	for i := range warmup + iterations {
		if err := ctx.Err(); err != nil {
			return err
		}
		for j := range subjects { // rotate who goes first
			s := subjects[(i+j)%len(subjects)]
			if err := s.round(ctx, fmt.Sprintf("bench-%d", i), i >= warmup); err != nil {
				return err
			}
		}
	}
	for _, s := range subjects {
		if err := s.verifyClean(); err != nil {
			return err
		}
	}
	printTable(os.Stdout, subjects)
	return nil
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}
