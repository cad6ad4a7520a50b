package main

import (
	"context"
	"fmt"
	"os"

	"github.com/go-logr/logr"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/weftmesh/weft/pilot/agent"
	"github.com/weftmesh/weft/pilot/telemetry"
)

// run completes cfg from the environment and telemetry, then runs the
// sidecar until ctx is done (SIGTERM drains Envoy first).
func run(ctx context.Context, cfg agent.SidecarConfig, trustDomain string) error {
	td, err := spiffeid.TrustDomainFromString(trustDomain)
	if err != nil {
		return fmt.Errorf("trust domain: %w", err)
	}
	cfg.Agent.TrustDomain = td
	cfg.Bootstrap.Pod = agent.PodFromEnv(os.Getenv)
	// The injector names the pod in OTEL_RESOURCE_ATTRIBUTES for the
	// agent's own telemetry; Envoy gets the same attributes from the pod
	// already, so only what else is there is passed on.
	cfg.Envoy.Env = agent.EnvoyResourceEnv(cfg.Bootstrap.Pod, agent.WithoutPodAttributes(cfg.Bootstrap.Pod, os.Getenv))
	cfg.Envoy.Env = append(cfg.Envoy.Env, agent.EnvoyWorkloadEnv(cfg.Bootstrap.Pod, td)...)
	if cfg.AppProbers, err = agent.AppProbersFromEnv(os.Getenv); err != nil {
		return err
	}
	tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "weft-agent", SetGlobal: true})
	if err != nil {
		return err
	}
	defer func() {
		if err := tel.Shutdown(context.WithoutCancel(ctx)); err != nil {
			logr.FromContextOrDiscard(ctx).Error(err, "shutdown telemetry")
		}
	}()
	logr.FromContextOrDiscard(ctx).Info("telemetry", "otlpTraces", tel.OTLPTraces, "otlpMetrics", tel.OTLPMetrics)
	cfg.Agent.MeterProvider, cfg.Envoy.MeterProvider, cfg.Metrics = tel.MeterProvider, tel.MeterProvider, tel.Handler
	cfg.Agent.TracerProvider = tel.TracerProvider
	s, err := agent.NewSidecar(cfg)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}
