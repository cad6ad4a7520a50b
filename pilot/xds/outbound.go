package xds

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"

	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/model"
)

// Outbound config is built in two layers so a push costs what changed, not
// Services × namespaces:
//
//   - a fragment per Service (generator.OutboundService, hashed), rebuilt
//     only when one of the model objects it was built from was replaced;
//   - a part per scope and model generation: the visible fragments
//     assembled with the outbound listener, shared by every proxy whose
//     namespace sees the same Services (by default, all) with the same
//     effective tracing (Telemetry resources).
//
// Fragments carry the mesh-wide tracing (flags under the root namespace's
// Telemetry). A namespace whose own Telemetry changes its tracing gets a
// scope of its own, assembled with re-edited copies of the HTTP filters
// (generator.AssembleOutbound, which keeps the copies with the fragment),
// so an override costs that namespace's assembly, not every namespace's.

// fragments are the per-Service outbound configs of one model generation.
type fragments struct {
	gen    uint64
	bySvc  map[model.Key]*fragment
	hashes map[types.Resource]hashed
}

type fragment struct {
	// deps are the model objects the config was built from. The Store
	// replaces objects instead of changing them, so identical pointers mean
	// identical inputs; holding them keeps their addresses from being
	// reused.
	deps  []any
	cfg   *generator.ServiceConfig
	items []hashed
}

// namespacePart is the outbound part of one namespace for one generation,
// built once by whichever proxy needs it first.
type namespacePart struct {
	once sync.Once
	res  *part
	err  error
}

// outbound returns the namespace-scoped part of a proxy's config.
func (s *Server) outbound(v *model.View, namespace string) (*part, error) {
	tracing := s.cfg.Generator.Telemetry.TracingFor(v.Telemetry(namespace))
	s.outMu.Lock()
	if s.outGen != v.Generation() {
		if v.Generation() < s.outGen { // an older view: build without caching
			s.outMu.Unlock()
			return s.buildOutbound(v, v.VisibleServices(namespace), tracing)
		}
		s.outGen = v.Generation()
		s.outbox = map[string]*namespacePart{}
		s.scopes = map[string]*namespacePart{}
	}
	e, ok := s.outbox[namespace]
	var visible []*model.Service
	if !ok {
		// Namespaces that see the same Services with the same tracing
		// share one part.
		visible = v.VisibleServices(namespace)
		h := sha256.New()
		for _, svc := range visible {
			h.Write([]byte(svc.Namespace + "/" + svc.Name + "\x00"))
		}
		h.Write(tracingKey(tracing))
		scope := string(h.Sum(nil))
		if e, ok = s.scopes[scope]; !ok {
			e = &namespacePart{}
			s.scopes[scope] = e
		}
		s.outbox[namespace] = e
	}
	s.outMu.Unlock()
	e.once.Do(func() { e.res, e.err = s.buildOutbound(v, visible, tracing) })
	return e.res, e.err
}

// tracingKey encodes a tracing setting for the scope hash.
func tracingKey(t generator.TracingSetting) []byte {
	key := make([]byte, 0, 16+len(t.CollectorHost))
	key = append(key, 1)
	key = append(key, t.CollectorHost...)
	key = binary.BigEndian.AppendUint32(append(key, 0), t.CollectorPort)
	return binary.BigEndian.AppendUint64(key, math.Float64bits(t.SamplingPercent))
}

func (s *Server) buildOutbound(v *model.View, visible []*model.Service, tracing generator.TracingSetting) (*part, error) {
	frags, err := s.fragmentsFor(v)
	if err != nil {
		return nil, err
	}
	cfgs := make([]*generator.ServiceConfig, 0, len(visible))
	for _, svc := range visible {
		cfgs = append(cfgs, frags.bySvc[svc.Key()].cfg)
	}
	res := generator.AssembleOutbound(s.cfg.Generator, cfgs, tracing)
	if hook := s.testHookOutbound.Load(); hook != nil {
		(*hook)(res)
	}
	return newPart(res, frags.hashes)
}

// fragmentsFor returns the fragments of v's generation, rebuilding only
// Services whose inputs changed since the previous generation.
func (s *Server) fragmentsFor(v *model.View) (*fragments, error) {
	s.fragMu.Lock()
	defer s.fragMu.Unlock()
	prev := s.frags
	if prev != nil && prev.gen == v.Generation() {
		return prev, nil
	}
	next := &fragments{gen: v.Generation(), bySvc: map[model.Key]*fragment{}, hashes: map[types.Resource]hashed{}}
	for _, svc := range v.Services() {
		deps := serviceDeps(v, svc)
		f := (*fragment)(nil)
		if prev != nil {
			if old, ok := prev.bySvc[svc.Key()]; ok && sameDeps(old.deps, deps) {
				f = old
			}
		}
		if f == nil {
			var err error
			if f, err = s.buildFragment(v, svc, deps); err != nil {
				return nil, err
			}
		}
		next.bySvc[svc.Key()] = f
		for _, h := range f.items {
			next.hashes[h.res] = h
		}
	}
	if prev == nil || next.gen > prev.gen {
		s.frags = next
	}
	return next, nil
}

func (s *Server) buildFragment(v *model.View, svc *model.Service, deps []any) (*fragment, error) {
	cfg, err := generator.OutboundService(s.cfg.Generator, v, svc)
	if err != nil {
		return nil, fmt.Errorf("generate outbound for service %s: %w", svc.Key(), err)
	}
	f := &fragment{deps: deps, cfg: cfg}
	add := func(res types.Resource) error {
		h, err := hashResource(res)
		if err != nil {
			return err
		}
		f.items = append(f.items, h)
		return nil
	}
	for _, c := range cfg.Clusters {
		if err := add(c); err != nil {
			return nil, err
		}
	}
	for _, r := range cfg.Routes {
		if err := add(r); err != nil {
			return nil, err
		}
	}
	for _, e := range cfg.Endpoints {
		if err := add(e); err != nil {
			return nil, err
		}
	}
	for _, sr := range cfg.ScopedRoutes {
		if err := add(sr); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// serviceDeps lists everything generator.OutboundService reads for svc:
// the Service, its EndpointSlices, the pods behind the endpoints (sidecar,
// service account, labels), the MeshTLS policies (their modes decide
// mTLS per endpoint), the TrafficPolicy in force for it, the route
// versions attached to it and the root namespace's Telemetry (the
// mesh-wide tracing every fragment carries: changing it rebuilds them
// all, a namespace's Telemetry rebuilds none). Routes and policies of
// other Services do not matter: a route names its backends' clusters by
// name, so one Service's routes change only its own fragment.
func serviceDeps(v *model.View, svc *model.Service) []any {
	deps := []any{svc, v.TrafficTable().For(svc.Key()), v.TelemetryWinner(v.RootNamespace())}
	for _, r := range v.RouteTable().AttachedRoutes(svc.Key()) {
		deps = append(deps, r)
	}
	for _, es := range v.EndpointSlices(svc.Key()) {
		deps = append(deps, es)
		for _, ep := range es.Endpoints {
			p, _ := v.EndpointPod(es.Namespace, ep)
			deps = append(deps, p)
		}
	}
	for _, p := range v.Policies() {
		deps = append(deps, p)
	}
	return deps
}

func sameDeps(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
