// Command bookinfo is Weft's version of Istio's Bookinfo sample: one binary
// whose subcommands are the four apps (productpage, details, reviews v1/v2/v3,
// ratings), so a single image serves every Deployment of
// tests/samples/bookinfo/bookinfo.yaml. Settings come from the environment
// (see README.md); each app listens on :9080 and logs one line per request.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" {
		fmt.Fprintln(os.Stderr, "usage: bookinfo {productpage|details|reviews|ratings} [-addr :9080]")
		os.Exit(2)
	}
	app := os.Args[1]
	fs := flag.NewFlagSet("bookinfo "+app, flag.ExitOnError)
	addr := fs.String("addr", ":9080", "HTTP listen address")
	if err := fs.Parse(os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "bookinfo:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, app, *addr); err != nil {
		fmt.Fprintf(os.Stderr, "bookinfo %s: %v\n", app, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, app, addr string) error {
	cfg, err := loadConfig(app, os.Getenv)
	if err != nil {
		return err
	}
	if cfg.PodName == "" {
		if cfg.PodName, err = os.Hostname(); err != nil {
			return fmt.Errorf("hostname: %w", err)
		}
		cfg.Reviews.PodName = cfg.PodName
	}
	h, err := newHandler(cfg)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stdout, nil)).With("app", app, "pod", cfg.PodName)
	if app == "reviews" {
		log = log.With("version", cfg.Reviews.Version)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: logRequests(log, cfg.PodName, h), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
