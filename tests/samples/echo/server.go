package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// ServerConfig is the server's command line. The flags are named as Istio's
// echo server names them because the Gateway API conformance manifests pass
// them (--port=8080 --grpc=7070 --tcp=9090 --port=8443 --tls=8443
// --crt=/cert.crt --key=/cert.key); with no flags it serves HTTP on 8080
// and gRPC on 7070, Istio's defaults.
type ServerConfig struct {
	HTTPPorts, GRPCPorts, TCPPorts []int
	// TLSPorts are HTTP or gRPC ports that speak TLS with Crt/Key.
	TLSPorts []int
	Crt, Key string
	Version  string
}

// ParseServerFlags reads the server's flags; anything unknown, or a port
// that is not in 1..65535, served twice, or TLS on a port that serves
// neither HTTP nor gRPC, is an error that names it.
func ParseServerFlags(args []string) (ServerConfig, error) {
	var c ServerConfig
	fs := pflag.NewFlagSet("echo", pflag.ContinueOnError)
	fs.IntSliceVar(&c.HTTPPorts, "port", []int{8080}, "HTTP port (repeatable)")
	fs.IntSliceVar(&c.GRPCPorts, "grpc", []int{7070}, "gRPC port (repeatable)")
	fs.IntSliceVar(&c.TCPPorts, "tcp", nil, "TCP port: describes the connection, then echoes (repeatable)")
	fs.IntSliceVar(&c.TLSPorts, "tls", nil, "HTTP or gRPC port that speaks TLS (repeatable)")
	fs.StringVar(&c.Crt, "crt", "/cert.crt", "TLS certificate (PEM) for the --tls ports")
	fs.StringVar(&c.Key, "key", "/cert.key", "TLS private key (PEM) for the --tls ports")
	fs.StringVar(&c.Version, "version", "", "reported as ServiceVersion")
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("echo: %w", err)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("echo: unexpected arguments %q (the client is `echo client URL`)", fs.Args())
	}
	return c, c.validate()
}

func (c ServerConfig) validate() error {
	seen := map[int]string{}
	for kind, ports := range map[string][]int{"--port": c.HTTPPorts, "--grpc": c.GRPCPorts, "--tcp": c.TCPPorts} {
		for _, p := range ports {
			if p < 1 || p > 65535 {
				return fmt.Errorf("echo: %s %d is not a port (1..65535)", kind, p)
			}
			if other, dup := seen[p]; dup {
				return fmt.Errorf("echo: port %d given to both %s and %s", p, other, kind)
			}
			seen[p] = kind
		}
	}
	for _, p := range c.TLSPorts {
		if !slices.Contains(c.HTTPPorts, p) && !slices.Contains(c.GRPCPorts, p) {
			return fmt.Errorf("echo: --tls %d is not an HTTP (--port) or gRPC (--grpc) port", p)
		}
	}
	return nil
}

// Serve runs every listener of c until ctx ends, then shuts them down; the
// first listener that fails stops them all.
func Serve(ctx context.Context, c ServerConfig, id Identity, log *slog.Logger) error {
	var tlsConf *tls.Config
	if len(c.TLSPorts) > 0 {
		cert, generated, err := serverCertificate(c.Crt, c.Key, id.Hostname, time.Now())
		if err != nil {
			return err
		}
		if generated {
			log.Warn("no --crt/--key files: the TLS ports serve a self-signed certificate", "crt", c.Crt, "key", c.Key)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ls, err := listenAll(ctx, c)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	for _, l := range ls {
		conf := tlsConfFor(l.port, c.TLSPorts, tlsConf)
		switch l.protocol {
		case "http":
			g.Go(func() error { return serveHTTP(ctx, l, NewHandler(id, log), conf, log) })
		case "grpc":
			var opts []grpc.ServerOption
			if conf != nil {
				opts = append(opts, grpc.Creds(credentials.NewTLS(conf)))
			}
			srv := NewGRPCServer(id, strconv.Itoa(l.port), opts...)
			g.Go(func() error { return serveGRPC(ctx, l, srv) })
		case "tcp":
			g.Go(func() error { return ServeTCP(ctx, l, id, log) })
		}
		log.Info("serving", "protocol", l.protocol, "port", l.port, "tls", conf != nil)
	}
	return g.Wait()
}

// portListener is a listening socket and what it serves.
type portListener struct {
	net.Listener
	protocol string
	port     int
}

// listenAll opens every port before anything is served, so a port that
// is taken fails the start cleanly (the others are closed again).
func listenAll(ctx context.Context, c ServerConfig) ([]portListener, error) {
	var out []portListener
	var lc net.ListenConfig
	for _, set := range []struct {
		protocol string
		ports    []int
	}{{"http", c.HTTPPorts}, {"grpc", c.GRPCPorts}, {"tcp", c.TCPPorts}} {
		for _, p := range set.ports {
			l, err := lc.Listen(ctx, "tcp", ":"+strconv.Itoa(p))
			if err != nil {
				err = fmt.Errorf("listen on %d (%s): %w", p, set.protocol, err)
				for _, o := range out {
					err = errors.Join(err, o.Close())
				}
				return nil, err
			}
			out = append(out, portListener{Listener: l, protocol: set.protocol, port: p})
		}
	}
	return out, nil
}

func tlsConfFor(port int, tlsPorts []int, conf *tls.Config) *tls.Config {
	if slices.Contains(tlsPorts, port) {
		return conf.Clone()
	}
	return nil
}

// serveHTTP serves HTTP/1.1 and HTTP/2 (h2c in clear text, h2 over TLS),
// as a mesh may send either.
func serveHTTP(ctx context.Context, l net.Listener, h http.Handler, conf *tls.Config, log *slog.Logger) error {
	srv := &http.Server{
		Handler: h, ReadHeaderTimeout: 10 * time.Second, TLSConfig: conf,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetHTTP2(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	errc := make(chan error, 1)
	go func() {
		if conf != nil {
			errc <- srv.ServeTLS(l, "", "")
			return
		}
		errc <- srv.Serve(l)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http on %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down http on %s: %w", l.Addr(), err)
	}
	return nil
}

func serveGRPC(ctx context.Context, l net.Listener, srv *grpc.Server) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve grpc on %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		srv.Stop()
	}
	return nil
}
