package xds

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/weftmesh/weft/pilot/model"
	"github.com/weftmesh/weft/pilot/telemetry/netprog"
)

// Pilot's xDS metrics, in OpenTelemetry naming (the Prometheus exporter
// turns weft.pilot.xds.pushes into weft_pilot_xds_pushes_total and adds
// the unit suffix to histograms: weft_pilot_xds_push_duration_seconds).
const (
	MetricConnectedProxies = "weft.pilot.xds.connected_proxies"
	MetricPushes           = "weft.pilot.xds.pushes"
	MetricNACKs            = "weft.pilot.xds.nacks"
	MetricPushDuration     = "weft.pilot.xds.push.duration"
	MetricGenerateDuration = "weft.pilot.xds.generate.duration"
	MetricConvergence      = "weft.pilot.convergence.duration"
	MetricSnapshotSize     = "weft.pilot.xds.snapshot.size"
)

// latencyBuckets cover a 1 ms ACK on an idle node up to a minute-long
// convergence in a large, busy cluster.
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// telemetry is the xDS server's metrics and network-programming tracing:
// go-control-plane callbacks, the push loop and model events report here,
// and netprog turns them into spans and latencies.
type telemetry struct {
	s     *Server
	np    *netprog.Pushes
	model *model.Store

	pushes, nacks             metric.Int64Counter
	pushDuration, generate    metric.Float64Histogram
	convergence, snapshotSize metric.Float64Histogram

	mu    sync.Mutex
	known map[model.Key]netprog.Change // last version of each slice, for deletes

	targets targetCache
}

func newTelemetry(s *Server) (*telemetry, error) {
	mp := s.cfg.MeterProvider
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter("github.com/weftmesh/weft/pilot/xds")
	t := &telemetry{s: s, model: s.cfg.Model, known: map[model.Key]netprog.Change{}}
	var errs [7]error
	t.pushes, errs[0] = m.Int64Counter(MetricPushes, metric.WithUnit("{response}"),
		metric.WithDescription("xDS responses sent to proxies, by type (CDS, EDS, LDS, RDS)."))
	t.nacks, errs[1] = m.Int64Counter(MetricNACKs, metric.WithUnit("{nack}"),
		metric.WithDescription("Configs proxies rejected, by type."))
	t.pushDuration, errs[2] = m.Float64Histogram(MetricPushDuration, metric.WithUnit("s"),
		metric.WithDescription("Time from setting a proxy's new snapshot until the proxy answered every changed type, by status (ACK, NACK, TIMEOUT, DISCONNECTED)."),
		metric.WithExplicitBucketBoundaries(latencyBuckets...))
	t.generate, errs[3] = m.Float64Histogram(MetricGenerateDuration, metric.WithUnit("s"),
		metric.WithDescription("Time one push round took to generate and set the snapshots of every connected proxy."),
		metric.WithExplicitBucketBoundaries(latencyBuckets...))
	t.convergence, errs[4] = m.Float64Histogram(MetricConvergence, metric.WithUnit("s"),
		metric.WithDescription("Time from pilot seeing an EndpointSlice change until every proxy it affected answered, by status (the worst of the proxies')."),
		metric.WithExplicitBucketBoundaries(latencyBuckets...))
	t.snapshotSize, errs[5] = m.Float64Histogram(MetricSnapshotSize, metric.WithUnit("By"),
		metric.WithDescription("Size of each snapshot set for a proxy (serialized resources)."),
		metric.WithExplicitBucketBoundaries(1<<10, 4<<10, 16<<10, 64<<10, 256<<10, 1<<20, 4<<20, 16<<20))
	_, errs[6] = m.Int64ObservableGauge(MetricConnectedProxies, metric.WithUnit("{proxy}"),
		metric.WithDescription("Proxies connected to this pilot, by API (delta or sotw)."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			delta, sotw := s.countProxies()
			o.Observe(int64(delta), metric.WithAttributes(attribute.String("api", "delta")))
			o.Observe(int64(sotw), metric.WithAttributes(attribute.String("api", "sotw")))
			return nil
		}))
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("xds metrics: %w", err)
		}
	}
	t.np = netprog.NewPushes(netprog.PushConfig{
		TracerProvider: s.cfg.TracerProvider,
		OnPush: func(d time.Duration, r netprog.Result) {
			t.pushDuration.Record(context.Background(), d.Seconds(), statusOption(r))
		},
		OnConverged: func(d time.Duration, r netprog.Result) {
			t.convergence.Record(context.Background(), d.Seconds(), statusOption(r))
		},
	})
	return t, nil
}

// start follows EndpointSlice changes from now on (the model is complete
// when Run starts, so the initial list is not mistaken for changes), emits
// spans and expires unanswered pushes until ctx ends.
func (t *telemetry) start(ctx context.Context) {
	v := t.model.View()
	t.mu.Lock()
	for _, svc := range v.Services() {
		for _, es := range v.EndpointSlices(svc.Key()) {
			t.known[es.Key()] = sliceChange(es, time.Time{})
		}
	}
	t.mu.Unlock()
	t.model.Subscribe(t.modelChanged)
	t.np.Start(ctx) // spans and push metrics off the streams' goroutines
	go func() {
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				t.np.Expire()
			}
		}
	}()
}

func sliceChange(es *model.EndpointSlice, seen time.Time) netprog.Change {
	return netprog.Change{Namespace: es.Namespace, Name: es.Name, Service: es.Service,
		UID: es.UID, ResourceVersion: es.ResourceVersion, Trigger: es.TriggerTime, Seen: seen}
}

// modelChanged runs on the model writer's goroutine: it only records.
func (t *telemetry) modelChanged(ev model.Event) {
	if ev.Kind != model.KindEndpointSlice {
		return
	}
	now := time.Now()
	gen := t.model.Generation()
	es, ok := t.model.EndpointSlice(ev.Key)
	t.mu.Lock()
	defer t.mu.Unlock()
	prev, known := t.known[ev.Key]
	var c netprog.Change
	switch {
	case ok && known && prev.UID == es.UID && prev.ResourceVersion == es.ResourceVersion:
		return // a newer write was read already, or a no-op update
	case ok:
		c = sliceChange(es, now)
		t.known[ev.Key] = c
	case known:
		c = prev
		c.Deleted, c.Seen, c.Trigger = true, now, time.Time{}
		delete(t.known, ev.Key)
	default:
		c = netprog.Change{Namespace: ev.Key.Namespace, Name: ev.Key.Name, Deleted: true, Seen: now}
	}
	t.np.Seen(c, gen)
}

// pushed records a snapshot about to be set for a proxy; prev is the one
// it replaces (nil for the first). The push calls it before SetSnapshot so
// that the proxy's ACK cannot arrive before the push is known.
func (t *telemetry) pushed(v *model.View, nodeID string, built, prev *builtSnapshot) {
	t.snapshotSize.Record(context.Background(), float64(built.bytes))
	changed := 0
	for i, url := range awaitOrder {
		if built.counts[url] == 0 {
			continue // an empty type is never requested, so never ACKed
		}
		if prev == nil || prev.versions[url] != built.versions[url] {
			changed |= 1 << i
		}
	}
	t.np.Pushed(nodeID, v.Generation(), built.versions, awaitSets[changed], func(c netprog.Change) bool {
		return t.affects(v, c, built, prev)
	})
}

func (t *telemetry) unchanged(nodeID string, gen uint64) { t.np.Unchanged(nodeID, gen) }

func (t *telemetry) roundDone(gen uint64, took time.Duration) {
	t.generate.Record(context.Background(), took.Seconds())
	t.np.RoundDone(gen)
}

func (t *telemetry) gone(nodeID string) { t.np.Gone(nodeID) }

// sent counts a response; it runs on the stream's goroutine, after the
// status tracker released its lock.
func (t *telemetry) sent(typeURL string) {
	t.pushes.Add(context.Background(), 1, typeOption(typeURL))
}

// answered records an ACK or NACK of version; it runs on the stream's
// goroutine (so in order for one proxy), after the status tracker
// released its lock.
func (t *telemetry) answered(nodeID, typeURL, version string, nack bool, detail string) {
	if nack {
		t.nacks.Add(context.Background(), 1, typeOption(typeURL))
	}
	t.np.Answered(nodeID, typeURL, version, nack, detail)
}

func typeName(url string) string {
	if short, ok := shortTypes[url]; ok {
		return short
	}
	return url
}

// affects reports whether a change of an EndpointSlice reached this proxy:
// the EDS resource of one of its Service's ports (outbound|<port>||<host>,
// which carries every endpoint, so a subset's change shows there too)
// differs from the previous snapshot. A headless Service has no EDS
// resource (its endpoints are filter chains of the outbound listener), and
// a Service that is gone took its chains with it: for both, a listener
// change counts. The names to compare are the same for every proxy of a
// round, so they come from targetCache; the lookups are O(ports).
func (t *telemetry) affects(v *model.View, c netprog.Change, built, prev *builtSnapshot) bool {
	if prev == nil {
		return false
	}
	tg := t.targets.get(v, model.Key{Namespace: c.Namespace, Name: c.Service})
	if tg.listener {
		return built.versions[resource.ListenerType] != prev.versions[resource.ListenerType]
	}
	now, before := built.snap.VersionMap[resource.EndpointType], prev.snap.VersionMap[resource.EndpointType]
	for _, name := range tg.clusters {
		if now[name] != before[name] {
			return true
		}
	}
	return false
}

// countProxies counts connected proxies by API.
func (s *Server) countProxies() (delta, sotw int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.proxies {
		if p.delta {
			delta++
		} else {
			sotw++
		}
	}
	return delta, sotw
}
