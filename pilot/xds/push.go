package xds

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/model"
)

// pushLoop turns bursts of model changes into pushes: after a change it
// waits for Debounce of quiet, but never longer than MaxDebounce, then
// pushes every connected proxy once.
func (s *Server) pushLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.trigger:
		}
		first := time.Now()
		quiet := time.NewTimer(s.cfg.Debounce)
	debounce:
		for {
			select {
			case <-ctx.Done():
				quiet.Stop()
				return
			case <-s.trigger:
				wait := min(s.cfg.Debounce, s.cfg.MaxDebounce-time.Since(first))
				quiet.Reset(max(wait, 0))
			case <-quiet.C:
				break debounce
			}
		}
		s.pushAll(ctx)
	}
}

// pushAll regenerates every connected proxy's snapshot from one View.
func (s *Server) pushAll(ctx context.Context) {
	start := time.Now()
	v := s.cfg.Model.View()
	proxies := s.connectedProxies()
	workers := s.cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	work := make(chan *proxy)
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	for range min(workers, max(len(proxies), 1)) {
		wg.Go(func() {
			for p := range work {
				if err := s.pushOne(v, p); err != nil {
					s.log.Error(err, "push", "node", p.nodeID)
					mu.Lock()
					failed++
					mu.Unlock()
				}
			}
		})
	}
	for _, p := range proxies {
		select {
		case work <- p:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	s.tel.roundDone(v.Generation(), time.Since(start))
	s.log.V(1).Info("pushed", "proxies", len(proxies), "failed", failed,
		"generation", v.Generation(), "duration", time.Since(start).String())
	if failed > 0 && ctx.Err() == nil {
		// Retry even if the model stays quiet: a failure may be transient.
		time.AfterFunc(retryAfterFailure, s.Trigger)
	}
}

// retryAfterFailure is how soon a push that failed for some proxy is
// tried again.
const retryAfterFailure = 5 * time.Second

// pushOne builds a proxy's snapshot from v and sets it if its content
// changed. A proxy whose pod is gone keeps its last config while it drains.
func (s *Server) pushOne(v *model.View, p *proxy) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last != nil && v.Generation() < p.lastGen {
		return nil
	}
	pod, ok := v.Pod(p.pod)
	if !ok {
		return nil
	}
	out, err := s.outbound(v, pod.Namespace)
	if err != nil {
		return err
	}
	own, err := s.inbound(v, p, pod)
	if err != nil {
		return err
	}
	built, err := buildSnapshot(out, own)
	if err != nil {
		return fmt.Errorf("snapshot for %s: %w", p.nodeID, err)
	}
	p.lastGen = v.Generation()
	if sameVersions(built, p.last) {
		s.tel.unchanged(p.nodeID, v.Generation())
		return nil
	}
	if s.cfg.FullConsistencyCheck {
		if err := built.snap.Consistent(); err != nil {
			return fmt.Errorf("inconsistent snapshot for %s: %w", p.nodeID, err)
		}
	}
	// Status and telemetry learn of the snapshot before go-control-plane
	// can send it, so the proxy's answer never finds them unprepared.
	s.status.setDesired(p.nodeID, built)
	s.tel.pushed(v, p.nodeID, built, p.last)
	if err := s.caches.set(p.nodeID, built, p.last); err != nil {
		// A later push of the same versions answers this one's span.
		return fmt.Errorf("set snapshot for %s: %w", p.nodeID, err)
	}
	p.last = built
	return nil
}

// inbound returns the proxy's own part, rebuilt only when the pod, the
// Services selecting it, the MeshTLS policies, the AuthorizationPolicies
// that select it or the Telemetries of its namespace and the root
// namespace changed (see serviceDeps for why pointer identity is enough).
func (s *Server) inbound(v *model.View, p *proxy, pod *model.Pod) (*part, error) {
	deps := []any{pod, v.TelemetryWinner(v.RootNamespace()), v.TelemetryWinner(pod.Namespace)}
	for _, svc := range v.ServicesFor(pod) {
		deps = append(deps, svc)
	}
	for _, pol := range v.Policies() {
		deps = append(deps, pol)
	}
	for _, az := range v.Authz(pod) {
		deps = append(deps, az)
	}
	hook := s.testHookInbound.Load()
	if p.own != nil && hook == nil && sameDeps(p.ownDeps, deps) {
		return p.own, nil
	}
	in, err := generator.Inbound(s.cfg.Generator, v, pod)
	if err != nil {
		return nil, fmt.Errorf("generate inbound: %w", err)
	}
	if hook != nil {
		(*hook)(in)
	}
	own, err := newPart(in, nil)
	if err != nil {
		return nil, err
	}
	p.own, p.ownDeps = own, deps
	if hook != nil {
		p.own = nil // never reuse a part a test hook edited
	}
	return own, nil
}
