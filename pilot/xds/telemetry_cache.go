package xds

import (
	"sync"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/model"
	"github.com/weftmesh/weft/pilot/telemetry/netprog"
)

// Telemetry runs for every response, ACK and push of every proxy, so what
// does not depend on the proxy is computed once: metric attribute sets (an
// attribute set hashes its members; building one per call cost more than
// recording), the sets of types a push waits for, and a changed Service's
// cluster names per round.

// awaitOrder is the xDS type URLs in a fixed order; bit i of a push's changed types
// stands for awaitOrder[i].
var awaitOrder = []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType, resource.ScopedRouteType}

// awaitSets[mask] lists the type URLs of mask's bits, in awaitOrder.
var awaitSets = func() (out [1 << 5][]string) {
	for mask := range out {
		for i, url := range awaitOrder {
			if mask&(1<<i) != 0 {
				out[mask] = append(out[mask], url)
			}
		}
	}
	return out
}()

var (
	typeOptions   = map[string]metric.MeasurementOption{}
	statusOptions = map[netprog.Result]metric.MeasurementOption{}
)

func init() {
	for url, short := range shortTypes {
		typeOptions[url] = metric.WithAttributeSet(attribute.NewSet(attribute.String("type", short)))
	}
	for _, r := range []netprog.Result{netprog.ACK, netprog.NACK, netprog.Timeout, netprog.Disconnected} {
		statusOptions[r] = metric.WithAttributeSet(attribute.NewSet(attribute.String("status", string(r))))
	}
}

// typeOption is the metric attribute type=CDS|EDS|LDS|RDS (the URL for
// any other type).
func typeOption(url string) metric.MeasurementOption {
	if o, ok := typeOptions[url]; ok {
		return o
	}
	return metric.WithAttributes(attribute.String("type", typeName(url)))
}

// statusOption is the metric attribute status=<result>.
func statusOption(r netprog.Result) metric.MeasurementOption {
	if o, ok := statusOptions[r]; ok {
		return o
	}
	return metric.WithAttributes(attribute.String("status", string(r)))
}

// target is where a Service's endpoints show in a proxy's config.
type target struct {
	// listener: headless or gone, so the outbound listener carries them.
	listener bool
	// clusters are the EDS resources of the Service's ports otherwise.
	clusters []string
}

// targetCache remembers the targets of changed Services for one View
// (model generation): every proxy of a push round asks about the same
// Services, and formatting their cluster names per proxy showed in
// profiles.
type targetCache struct {
	mu      sync.Mutex
	view    *model.View
	targets map[model.Key]target
}

func (c *targetCache) get(v *model.View, svcKey model.Key) target {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.view != v {
		c.view, c.targets = v, map[model.Key]target{}
	}
	if tg, ok := c.targets[svcKey]; ok {
		return tg
	}
	var tg target
	svc, ok := v.Service(svcKey)
	if !ok || svc.Headless {
		tg.listener = true
	} else {
		host := svc.Hostname(v.ClusterDomain())
		for _, sp := range svc.Ports {
			tg.clusters = append(tg.clusters, generator.OutboundClusterName(sp.Port, host))
		}
	}
	c.targets[svcKey] = tg
	return tg
}
