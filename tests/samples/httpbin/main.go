// Command httpbin is Weft's echo service for tests and demos, modelled on
// httpbin.org: it reports who served the request (pod, node, IP), echoes the
// request headers (including x-forwarded-client-cert, which the mesh sets),
// and returns chosen statuses, delays and payload sizes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", ":8080", "HTTP listen address")
	udpAddr := flag.String("udp-addr", ":9090", "UDP echo listen address (empty: off)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *udpAddr); err != nil {
		fmt.Fprintln(os.Stderr, "httpbin:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr, udpAddr string) error {
	host, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("hostname: %w", err)
	}
	id := Identity{Hostname: host, Pod: os.Getenv("POD_NAME"), Namespace: os.Getenv("POD_NAMESPACE"), Node: os.Getenv("NODE_NAME"), IP: os.Getenv("POD_IP")}
	srv := &http.Server{Addr: addr, Handler: NewHandler(id), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- srv.ListenAndServe() }()
	if udpAddr != "" {
		go func() { errc <- serveUDP(ctx, udpAddr, id) }()
	}
	fmt.Printf("httpbin listening on %s\n", addr)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
