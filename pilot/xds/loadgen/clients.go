package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/weftmesh/weft/pilot/xds/xdstest"
)

// clientSpec is what the parent tells the client process.
type clientSpec struct {
	Addr   string     `json:"addr"`
	RootCA []byte     `json:"rootCA"`
	Delta  bool       `json:"delta"`
	Certs  []certSpec `json:"certs"` // one per service account
	Nodes  []nodeSpec `json:"nodes"`
}

type certSpec struct {
	Cert []byte `json:"cert"`
	Key  []byte `json:"key"`
}

type nodeSpec struct {
	ID   string `json:"id"`
	Cert int    `json:"cert"`
}

// runClients is the child process: one TLS connection and ADS stream per
// simulated proxy, until the parent closes stdin or ctx ends.
func runClients(ctx context.Context, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read spec: %w", err)
	}
	var spec clientSpec
	if err := json.Unmarshal(data, &spec); err != nil {
		return fmt.Errorf("decode spec: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(spec.RootCA) {
		return fmt.Errorf("no root certificate in spec")
	}
	certs := make([]tls.Certificate, len(spec.Certs))
	for i, c := range spec.Certs {
		if certs[i], err = tls.X509KeyPair(c.Cert, c.Key); err != nil {
			return fmt.Errorf("key pair %d: %w", i, err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // the parent closes stdin to stop us
		buf := make([]byte, 1)
		_, _ = os.Stdin.Read(buf)
		cancel()
	}()
	var wg sync.WaitGroup
	for _, n := range spec.Nodes {
		tc := &tls.Config{RootCAs: roots, ServerName: "pilot.weft-system.svc", Certificates: []tls.Certificate{certs[n.Cert]}, MinVersion: tls.VersionTLS12}
		conn, err := grpc.NewClient(spec.Addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
		if err != nil {
			return fmt.Errorf("dial: %w", err)
		}
		defer conn.Close()
		c, err := xdstest.Start(ctx, conn, xdstest.Config{NodeID: n.ID, Delta: spec.Delta})
		if err != nil {
			return fmt.Errorf("start %s: %w", n.ID, err)
		}
		wg.Go(func() {
			<-c.Done()
			if err := c.Err(); err != nil && ctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "client %s: %v\n", n.ID, err)
			}
		})
	}
	<-ctx.Done()
	wg.Wait()
	return nil
}
