package generator

import (
	"math"
	"slices"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	previoushostsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weftmesh/weft/pilot/model"
)

// applyPolicy puts the route-level parts of the Service's TrafficPolicy —
// retries and faults — on a forwarding route. A GAMMA rule's own retry and
// backendRequest timeout take precedence over the policy's.
func applyPolicy(r *routev3.Route, tp *model.TrafficPolicy, rule *model.RouteRule) {
	action := r.GetRoute()
	if action == nil {
		return
	}
	switch {
	case rule != nil && rule.Retry != nil:
		action.RetryPolicy = retryPolicy(rule.Retry)
	case tp != nil && tp.Retry != nil:
		action.RetryPolicy = retryPolicy(tp.Retry)
	case rule != nil:
		action.RetryPolicy = defaultRetryPolicy()
	}
	if rule != nil && rule.BackendTimeout != nil {
		if action.RetryPolicy == nil {
			action.RetryPolicy = &routev3.RetryPolicy{NumRetries: wrapperspb.UInt32(0)}
		}
		action.RetryPolicy.PerTryTimeout = duration(*rule.BackendTimeout)
	}
	if tp != nil && tp.Fault != nil {
		r.TypedPerFilterConfig = map[string]*anypb.Any{wellknown.Fault: mustAny(httpFault(tp.Fault))}
	}
}

// retryPolicy translates a retry setting
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/config/route/v3/route_components.proto#envoy-v3-api-msg-config-route-v3-retrypolicy).
// Without conditions it retries what the default does plus 503s; status
// codes imply retriable-status-codes. Retries avoid the hosts already
// tried, so one broken endpoint cannot fail every try.
func retryPolicy(r *model.RetryPolicy) *routev3.RetryPolicy {
	if r.Attempts == 0 {
		return &routev3.RetryPolicy{NumRetries: wrapperspb.UInt32(0), PerTryTimeout: optDuration(r.PerTryTimeout)}
	}
	on, codes := slices.Clone(r.On), slices.Clone(r.Codes)
	if len(on) == 0 {
		on = []string{"connect-failure", "refused-stream", "unavailable", "cancelled"}
		if len(codes) == 0 {
			codes = []int32{503}
		}
	}
	if len(codes) > 0 && !slices.Contains(on, "retriable-status-codes") {
		on = append(on, "retriable-status-codes")
	}
	out := &routev3.RetryPolicy{
		RetryOn:    strings.Join(on, ","),
		NumRetries: wrapperspb.UInt32(uint32(r.Attempts)),
		RetryHostPredicate: []*routev3.RetryPolicy_RetryHostPredicate{{
			Name:       "envoy.retry_host_predicates.previous_hosts",
			ConfigType: &routev3.RetryPolicy_RetryHostPredicate_TypedConfig{TypedConfig: mustAny(&previoushostsv3.PreviousHostsPredicate{})},
		}},
		HostSelectionRetryMaxAttempts: 5,
		PerTryTimeout:                 optDuration(r.PerTryTimeout),
	}
	for _, c := range codes {
		out.RetriableStatusCodes = append(out.RetriableStatusCodes, uint32(c))
	}
	if r.Backoff != nil && *r.Backoff > 0 {
		out.RetryBackOff = &routev3.RetryPolicy_RetryBackOff{BaseInterval: duration(*r.Backoff), MaxInterval: duration(10 * *r.Backoff)}
	}
	return out
}

func optDuration(d *time.Duration) *durationpb.Duration {
	if d == nil {
		return nil
	}
	return duration(*d)
}

// httpFault is the per-route config of the outbound HCM's fault filter
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/extensions/filters/http/fault/v3/fault.proto).
func httpFault(f *model.Fault) *faultv3.HTTPFault {
	out := &faultv3.HTTPFault{}
	if f.Delay != nil {
		out.Delay = &faultcommonv3.FaultDelay{
			FaultDelaySecifier: &faultcommonv3.FaultDelay_FixedDelay{FixedDelay: duration(*f.Delay)},
			Percentage:         fractionalPercent(f.DelayPercent),
		}
	}
	if f.AbortStatus != 0 {
		out.Abort = &faultv3.FaultAbort{
			ErrorType:  &faultv3.FaultAbort_HttpStatus{HttpStatus: uint32(f.AbortStatus)},
			Percentage: fractionalPercent(f.AbortPercent),
		}
	}
	for _, h := range f.Headers {
		out.Headers = append(out.Headers, &routev3.HeaderMatcher{
			Name:                 strings.ToLower(h.Name),
			HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: stringMatcher(model.MatchExact, h.Value)},
		})
	}
	return out
}

// fractionalPercent is a percentage in millionths, so "0.5" stays exact.
func fractionalPercent(p float64) *typev3.FractionalPercent {
	return &typev3.FractionalPercent{
		Numerator:   uint32(math.Round(p * 10000)),
		Denominator: typev3.FractionalPercent_MILLION,
	}
}

var lbPolicies = map[string]clusterv3.Cluster_LbPolicy{
	"LeastRequest": clusterv3.Cluster_LEAST_REQUEST,
	"RoundRobin":   clusterv3.Cluster_ROUND_ROBIN,
	"Random":       clusterv3.Cluster_RANDOM,
}

// applyClusterPolicy puts the cluster-level parts of a TrafficPolicy on a
// Service's outbound cluster: load balancing, circuit breaker thresholds
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/config/cluster/v3/circuit_breaker.proto),
// requests per connection and outlier detection
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/config/cluster/v3/outlier_detection.proto).
func applyClusterPolicy(c *clusterv3.Cluster, tp *model.TrafficPolicy, proto model.Protocol) {
	if tp == nil {
		return
	}
	if lb, ok := lbPolicies[tp.LoadBalancer]; ok && c.GetType() == clusterv3.Cluster_EDS {
		c.LbPolicy = lb
	}
	if p := tp.Pool; p != nil {
		th := c.CircuitBreakers.Thresholds[0]
		set := func(dst **wrapperspb.UInt32Value, v *uint32) {
			if v != nil {
				*dst = wrapperspb.UInt32(*v)
			}
		}
		set(&th.MaxConnections, p.MaxConnections)
		set(&th.MaxPendingRequests, p.MaxPendingRequests)
		set(&th.MaxRequests, p.MaxRequests)
		set(&th.MaxRetries, p.MaxRetries)
		if p.MaxRequestsPerConnection != nil && proto.IsHTTP() {
			var opts upstreamhttpv3.HttpProtocolOptions
			if err := c.TypedExtensionProtocolOptions[httpProtocolOptionsKey].UnmarshalTo(&opts); err == nil {
				opts.CommonHttpProtocolOptions = &corev3.HttpProtocolOptions{MaxRequestsPerConnection: wrapperspb.UInt32(*p.MaxRequestsPerConnection)}
				c.TypedExtensionProtocolOptions[httpProtocolOptionsKey] = mustAny(&opts)
			}
		}
	}
	if o := tp.Outlier; o != nil {
		od := &clusterv3.OutlierDetection{
			Interval:         optDuration(o.Interval),
			BaseEjectionTime: optDuration(o.BaseEjectionTime),
		}
		if o.Consecutive5xx != nil {
			od.Consecutive_5Xx = wrapperspb.UInt32(*o.Consecutive5xx)
			if *o.Consecutive5xx == 0 {
				od.EnforcingConsecutive_5Xx = wrapperspb.UInt32(0)
			}
		}
		if o.MaxEjectionPercent != nil {
			od.MaxEjectionPercent = wrapperspb.UInt32(*o.MaxEjectionPercent)
		}
		c.OutlierDetection = od
	}
}
