package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/weftmesh/weft/pilot/telemetry/tracestore"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	// OTLP exporters compress with gzip by default.
	_ "google.golang.org/grpc/encoding/gzip"
)

// maxExportBytes bounds one OTLP export request; the collector's batch
// processor sends at most a few MB.
const maxExportBytes = 32 << 20

// run serves the OTLP receiver and the query API over one store until ctx
// is done or a server fails.
func run(ctx context.Context, o options) error {
	log := logr.FromContextOrDiscard(ctx)
	store, err := tracestore.New(o.store)
	if err != nil {
		return err
	}
	otlpLis, err := net.Listen("tcp", o.otlpAddr)
	if err != nil {
		return fmt.Errorf("listen otlp %s: %w", o.otlpAddr, err)
	}
	httpLis, err := net.Listen("tcp", o.httpAddr)
	if err != nil {
		return errors.Join(fmt.Errorf("listen http %s: %w", o.httpAddr, err), otlpLis.Close())
	}
	return serve(ctx, log, store, otlpLis, httpLis)
}

// serve runs both servers on the given listeners (tests use port 0).
func serve(ctx context.Context, log logr.Logger, store *tracestore.Store, otlpLis, httpLis net.Listener) error {
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(maxExportBytes))
	coltracepb.RegisterTraceServiceServer(gs, &tracestore.Receiver{Store: store})
	hs := &http.Server{Handler: tracestore.NewHandler(store, log), ReadHeaderTimeout: 10 * time.Second}
	log.Info("serving", "otlp", otlpLis.Addr().String(), "http", httpLis.Addr().String())

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := gs.Serve(otlpLis); err != nil {
			return fmt.Errorf("serve otlp: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := hs.Serve(httpLis); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		gs.GracefulStop()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := hs.Shutdown(shutdownCtx); err != nil {
			return fmt.Errorf("shutdown http: %w", err)
		}
		return nil
	})
	return g.Wait()
}
