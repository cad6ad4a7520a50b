// Package xdstest is a simulated Envoy for tests and the load generator: an
// ADS client (state-of-the-world or delta) that subscribes the way Envoy
// does (CDS and LDS wildcard, then the EDS and RDS names they reference),
// ACKs or NACKs every response and records what it received.
package xdstest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Config configures a Client.
type Config struct {
	// NodeID is sent as node.id ("<pod>.<namespace>").
	NodeID string
	// Delta selects incremental xDS.
	Delta bool
	// Reject, if set, is asked about every response; a non-nil error is
	// sent back as a NACK with its message, as Envoy does.
	Reject func(typeURL string, resources []*anypb.Any) error
	// OnAck is called after each ACK is sent.
	OnAck func(typeURL, version string, at time.Time)
}

// Client is one simulated proxy.
type Client struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	changed   chan struct{}
	err       error
	resources map[string]map[string]*anypb.Any
	versions  map[string]string
	responses map[string]int
	bytes     int64
	subs      map[string][]string // EDS/RDS names subscribed
	srds      bool                // SRDS requested (a wildcard, once)
}

// Start opens an ADS stream on conn and runs the client until ctx ends,
// Close is called or the stream fails (see Err).
func Start(ctx context.Context, conn grpc.ClientConnInterface, cfg Config) (*Client, error) {
	ctx, cancel := context.WithCancel(ctx)
	c := &Client{
		cfg: cfg, ctx: ctx, cancel: cancel, done: make(chan struct{}), changed: make(chan struct{}),
		resources: map[string]map[string]*anypb.Any{}, versions: map[string]string{},
		responses: map[string]int{}, subs: map[string][]string{},
	}
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(conn)
	var run func() error
	if cfg.Delta {
		st, err := ads.DeltaAggregatedResources(ctx, grpc.MaxCallRecvMsgSize(1<<30))
		if err != nil {
			cancel()
			return nil, fmt.Errorf("open delta ads stream: %w", err)
		}
		run = func() error { return c.runDelta(st) }
	} else {
		st, err := ads.StreamAggregatedResources(ctx, grpc.MaxCallRecvMsgSize(1<<30))
		if err != nil {
			cancel()
			return nil, fmt.Errorf("open ads stream: %w", err)
		}
		run = func() error { return c.runSotW(st) }
	}
	go func() {
		defer close(c.done)
		err := run()
		c.mu.Lock()
		c.err = err
		c.notifyLocked()
		c.mu.Unlock()
	}()
	return c, nil
}

// Close ends the stream and waits for the client to stop.
func (c *Client) Close() {
	c.cancel()
	<-c.done
}

// Err is why the stream ended, or nil while it runs.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Done is closed when the stream has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Resources returns a copy of the accepted resources of a type, by name.
func (c *Client) Resources(typeURL string) map[string]*anypb.Any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.resources[typeURL])
}

// Version is the last accepted version of a type (SotW) or system version
// (delta).
func (c *Client) Version(typeURL string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.versions[typeURL]
}

// Responses counts responses received for a type, accepted or not.
func (c *Client) Responses(typeURL string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.responses[typeURL]
}

// Bytes is the total size of resources received.
func (c *Client) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// WaitFor blocks until cond holds (checked after every response), the
// stream ends or ctx is done.
func (c *Client) WaitFor(ctx context.Context, cond func(*Client) bool) error {
	for {
		c.mu.Lock()
		ch, err := c.changed, c.err
		c.mu.Unlock()
		if cond(c) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("stream ended: %w", err)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *Client) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *Client) node() *corev3.Node {
	return &corev3.Node{Id: c.cfg.NodeID, Cluster: "weft", UserAgentName: "weft-xdstest"}
}

// check asks Reject about a response.
func (c *Client) check(typeURL string, res []*anypb.Any) *statuspb.Status {
	if c.cfg.Reject == nil {
		return nil
	}
	if err := c.cfg.Reject(typeURL, res); err != nil {
		return &statuspb.Status{Code: 3, Message: err.Error()}
	}
	return nil
}

func (c *Client) acked(typeURL, version string) {
	if c.cfg.OnAck != nil {
		c.cfg.OnAck(typeURL, version, time.Now())
	}
}

// references are what accepted clusters or listeners make Envoy ask for:
// the EDS or RDS names (child, sorted) and, for listeners, whether any
// connection manager uses scoped routes over SRDS.
type references struct {
	child string
	names []string
	srds  bool
}

// referenced returns the references of the accepted clusters or
// listeners res (none for other types).
func referenced(typeURL string, res map[string]*anypb.Any) (references, error) {
	names := map[string]bool{}
	switch typeURL {
	case resource.ClusterType:
		for _, a := range res {
			var cl clusterv3.Cluster
			if err := a.UnmarshalTo(&cl); err != nil {
				return references{}, err
			}
			if cl.GetType() == clusterv3.Cluster_EDS {
				names[cmpOr(cl.GetEdsClusterConfig().GetServiceName(), cl.GetName())] = true
			}
		}
		return references{child: resource.EndpointType, names: slices.Sorted(maps.Keys(names))}, nil
	case resource.ListenerType:
		srds := false
		for _, a := range res {
			var l listenerv3.Listener
			if err := a.UnmarshalTo(&l); err != nil {
				return references{}, err
			}
			for _, fc := range append(slices.Clone(l.GetFilterChains()), l.GetDefaultFilterChain()) {
				for _, f := range fc.GetFilters() {
					var h hcmv3.HttpConnectionManager
					if f.GetTypedConfig().MessageIs(&h) {
						if err := f.GetTypedConfig().UnmarshalTo(&h); err != nil {
							return references{}, err
						}
						if n := h.GetRds().GetRouteConfigName(); n != "" {
							names[n] = true
						}
						srds = srds || h.GetScopedRoutes().GetScopedRds() != nil
					}
				}
			}
		}
		return references{child: resource.RouteType, names: slices.Sorted(maps.Keys(names)), srds: srds}, nil
	}
	return references{}, nil
}

// firstSRDS reports whether refs make the client ask for SRDS now: its
// listeners use scoped routes over SRDS and it has not asked yet. Envoy
// asks once, for every scope (a wildcard), and keeps asking.
func (c *Client) firstSRDS(refs references) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !refs.srds || c.srds {
		return false
	}
	c.srds = true
	return true
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func size(res []*anypb.Any) int64 {
	var n int64
	for _, r := range res {
		n += int64(proto.Size(r))
	}
	return n
}

var errClosed = errors.New("client closed")

// recvErr turns a stream error into the client's error: errClosed when the
// client itself stopped, else the server's status.
func (c *Client) recvErr(err error) error {
	if c.ctx.Err() != nil {
		return errClosed
	}
	return err
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
