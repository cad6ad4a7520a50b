package dashboard

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/weftmesh/weft/pilot/telemetry/envoystats"
)

var inf = math.Inf(1)

// Envoy's request stats as Prometheus names them (docs/observability.md):
// a counter per response code and the request-time histogram (ms), both
// tagged with the reporting workload, the direction and, outbound, the
// destination Service.
const (
	metricRequests    = "envoy_cluster_upstream_rq"
	metricTimeBuckets = "envoy_cluster_upstream_rq_time_bucket"
	labelCode         = "envoy_response_code"
	labelLE           = "le"
)

// The request metrics a server's sidecar records (pilot/telemetry/
// envoystats): what it served, by the Service the caller addressed.
var (
	metricServed        = envoystats.PrometheusName(envoystats.MetricRequests)
	metricServedBuckets = envoystats.PrometheusName(envoystats.MetricRequestDuration) + "_bucket"
)

// StatsFilter is the query of /stats/prometheus (unencoded) that makes
// Envoy print only the stats ParsePodStats reads: a regular expression
// over Envoy's stat names (matched before tags are extracted), and
// usedonly to skip stats never written. 15-50 KB instead of 1 MB per
// sidecar; an Envoy that ignored it would still be parsed right.
const StatsFilter = `usedonly&filter=^cluster\.(in|out)bound\|.*\.upstream_rq_(\d\d\d|time)$|^weft\.request(s_total|_duration_milliseconds)`

// Service is a Kubernetes Service.
type Service struct{ Namespace, Name string }

// Counts are cumulative request counts of one sidecar, to one destination
// Service or into its own workload.
type Counts struct {
	Requests float64
	// Errors are the 5xx responses.
	Errors float64
	// Buckets are the request-time histogram, cumulative, by bound.
	Buckets []Bucket
}

// Bucket is a histogram bucket: Count requests took at most LE ms.
type Bucket struct{ LE, Count float64 }

// PodStats are one sidecar's request counts.
type PodStats struct {
	// Workload and Namespace are the sidecar's own (its fixed-value
	// tags); empty when the stats carry none.
	Workload, Namespace string
	Outbound            map[Service]*Counts
	Inbound             Counts
	// Served are the requests the sidecar's workload served, by the
	// Service the caller addressed (destination_service of the request
	// metrics); empty where its namespace records none.
	Served map[Service]*Counts
}

// ParsePodStats reads one sidecar's /stats/prometheus.
func ParsePodStats(text []byte) (*PodStats, error) {
	samples, err := ParseText(text, func(n string) bool {
		return n == metricRequests || n == metricTimeBuckets || n == metricServed || n == metricServedBuckets
	})
	if err != nil {
		return nil, err
	}
	ps := &PodStats{Outbound: map[Service]*Counts{}, Served: map[Service]*Counts{}}
	for _, s := range samples {
		if s.Name == metricServed || s.Name == metricServedBuckets {
			ps.addServed(s)
			continue
		}
		if ps.Workload == "" {
			ps.Workload, ps.Namespace = s.Labels[envoystats.TagWorkload], s.Labels[envoystats.TagWorkloadNamespace]
		}
		var c *Counts
		switch s.Labels[envoystats.TagDirection] {
		case "inbound":
			c = &ps.Inbound
		case "outbound":
			svc := Service{Namespace: s.Labels[envoystats.TagDestinationServiceNamespace], Name: s.Labels[envoystats.TagDestinationServiceName]}
			if svc.Name == "" {
				continue // not a Service of the cluster (passthrough)
			}
			if c = ps.Outbound[svc]; c == nil {
				c = &Counts{}
				ps.Outbound[svc] = c
			}
		default:
			continue // Envoy's own clusters (xDS, SDS, agent)
		}
		c.addSample(s, metricRequests, labelCode)
	}
	return ps, nil
}

// addServed adds a request-metrics sample to Served. Requests to a port
// several Services share, from a caller outside the mesh, name no Service
// ("unknown") and are left out.
func (ps *PodStats) addServed(s Sample) {
	svc, ok := serviceOfHost(s.Labels[envoystats.TagDestinationService])
	if !ok || s.Labels[envoystats.TagReporter] != envoystats.ReporterDestination {
		return
	}
	c := ps.Served[svc]
	if c == nil {
		c = &Counts{}
		ps.Served[svc] = c
	}
	c.addSample(s, metricServed, envoystats.TagResponseCode)
}

// addSample adds a sample to c: of the request counter named requests
// (5xx by the response code in label code), else a duration bucket.
func (c *Counts) addSample(s Sample, requests, code string) {
	if s.Name == requests {
		c.Requests += s.Value
		if strings.HasPrefix(s.Labels[code], "5") {
			c.Errors += s.Value
		}
		return
	}
	if le, err := parseValue(s.Labels[labelLE]); err == nil {
		c.addBucket(le, s.Value)
	}
}

// serviceOfHost is the Service of a host "<name>.<namespace>.svc.<domain>".
func serviceOfHost(host string) (Service, bool) {
	parts := strings.SplitN(host, ".", 4)
	if len(parts) < 3 || parts[2] != "svc" || parts[0] == "" || parts[1] == "" {
		return Service{}, false
	}
	return Service{Namespace: parts[1], Name: parts[0]}, true
}

// addBucket adds to the bucket of bound le (several subsets or ports of one
// Service add up).
func (c *Counts) addBucket(le, n float64) {
	i, found := slices.BinarySearchFunc(c.Buckets, le, func(b Bucket, le float64) int {
		switch {
		case b.LE < le:
			return -1
		case b.LE > le:
			return 1
		}
		return 0
	})
	if found {
		c.Buckets[i].Count += n
		return
	}
	c.Buckets = slices.Insert(c.Buckets, i, Bucket{LE: le, Count: n})
}

// Sub is c minus an earlier prev of the same counters. A counter that went
// down was reset (the sidecar restarted), so the whole of c is new, as
// Prometheus's rate() treats resets.
func (c Counts) Sub(prev Counts) Counts {
	if c.Requests < prev.Requests || len(c.Buckets) < len(prev.Buckets) {
		return c
	}
	out := Counts{Requests: c.Requests - prev.Requests, Errors: max(c.Errors-prev.Errors, 0)}
	old := map[float64]float64{}
	for _, b := range prev.Buckets {
		old[b.LE] = b.Count
	}
	for _, b := range c.Buckets {
		if b.Count < old[b.LE] {
			return c
		}
		out.Buckets = append(out.Buckets, Bucket{LE: b.LE, Count: b.Count - old[b.LE]})
	}
	return out
}

// Add sums two sidecars' counts.
func (c Counts) Add(o Counts) Counts {
	out := Counts{Requests: c.Requests + o.Requests, Errors: c.Errors + o.Errors}
	out.Buckets = slices.Clone(c.Buckets)
	for _, b := range o.Buckets {
		out.addBucket(b.LE, b.Count)
	}
	return out
}

// Quantile estimates the q-quantile (0..1) of request time in ms from the
// histogram by linear interpolation inside the bucket, like PromQL's
// histogram_quantile; a quantile in the +Inf bucket is the highest finite
// bound. ok is false without observations.
func (c Counts) Quantile(q float64) (ms float64, ok bool) {
	if len(c.Buckets) == 0 {
		return 0, false
	}
	total := c.Buckets[len(c.Buckets)-1].Count
	if total <= 0 {
		return 0, false
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for _, b := range c.Buckets {
		if b.Count >= rank {
			if math.IsInf(b.LE, 1) {
				return lower, true
			}
			in := b.Count - below
			if in <= 0 {
				return b.LE, true
			}
			return lower + (b.LE-lower)*(rank-below)/in, true
		}
		lower, below = b.LE, b.Count
	}
	return lower, true
}

// String is for test failures.
func (s Service) String() string { return s.Name + "." + s.Namespace }

// formatMs prints a latency for a label: 0.8ms, 12ms, 1.2s.
func formatMs(ms float64) string {
	switch {
	case ms < 10:
		return strconv.FormatFloat(ms, 'f', 1, 64) + "ms"
	case ms < 1000:
		return strconv.FormatFloat(ms, 'f', 0, 64) + "ms"
	}
	return strconv.FormatFloat(ms/1000, 'f', 1, 64) + "s"
}
