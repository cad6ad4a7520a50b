// Command echo is Weft's build of the echo app the Gateway API conformance
// suite deploys for its mesh (GAMMA) tests
// (sigs.k8s.io/gateway-api/conformance/mesh/manifests.yaml): a server that
// describes every request it gets, over HTTP, gRPC and TCP, and a client
// that the suite execs in the echo container (`client URL [flags]`) and
// whose output it parses. The upstream image cannot be pulled here, so this
// one is built from source and tagged with the upstream name.
//
//	echo [--port=8080]... [--grpc=7070]... [--tcp=9090]... [--tls=PORT --crt=F --key=F]
//	echo client URL [--method=M] [-H Name:value]... [--count=N] [--timeout=D]
//	client URL ...                 (the same binary under the name client)
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, filepath.Base(os.Args[0]), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}

// run dispatches like a multi-call binary: under the name "client", or
// with "client" as first argument, it is the client; otherwise the server.
func run(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	if name != "client" && len(args) > 0 && args[0] == "client" {
		name, args = "client", args[1:]
	}
	if name == "client" {
		c, err := ParseClientFlags(args)
		if err != nil {
			return err
		}
		return RunClient(ctx, c, stdout)
	}
	c, err := ParseServerFlags(args)
	if err != nil {
		return err
	}
	host, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("hostname: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	return Serve(ctx, c, Identity{Hostname: host, Version: c.Version}, log)
}
