package xds

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"

	"github.com/weftmesh/weft/pilot/model"
)

// SyncState is a proxy's sync state for one resource type, the vocabulary
// of istioctl proxy-status that meshctl proxy-status shows.
type SyncState string

const (
	// Synced: the proxy ACKed the current version.
	Synced SyncState = "SYNCED"
	// Stale: the current version was not ACKed yet (not sent, or in
	// flight).
	Stale SyncState = "STALE"
	// NACKed: the proxy rejected the current version; Error says why.
	NACKed SyncState = "NACK"
)

// TypeStatus is the sync status of one xDS type for one proxy.
type TypeStatus struct {
	// Type is the short name (CDS, EDS, LDS, RDS); TypeURL the full one.
	Type    string    `json:"type"`
	TypeURL string    `json:"typeUrl"`
	State   SyncState `json:"state"`
	// Version is the version pilot wants the proxy to have; Sent the last
	// one sent; Acked the last one the proxy accepted.
	Version string `json:"version"`
	Sent    string `json:"sent,omitempty"`
	Acked   string `json:"acked,omitempty"`
	// Error is Envoy's error_detail message from the last NACK of the
	// current version.
	Error string `json:"error,omitempty"`
	// Resources is how many resources of the type the proxy should have.
	Resources int       `json:"resources"`
	LastPush  time.Time `json:"lastPush,omitzero"`
	LastAck   time.Time `json:"lastAck,omitzero"`
	LastNack  time.Time `json:"lastNack,omitzero"`
}

// ProxyStatus is the sync status of one connected proxy.
type ProxyStatus struct {
	NodeID    string `json:"nodeId"`
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	Identity  string `json:"identity"`
	// Delta is true for incremental xDS streams.
	Delta       bool         `json:"delta"`
	ConnectedAt time.Time    `json:"connectedAt"`
	ConfigBytes int          `json:"configBytes"`
	Types       []TypeStatus `json:"types"`
}

var shortTypes = map[string]string{
	resource.ClusterType:  "CDS",
	resource.EndpointType: "EDS",
	resource.ListenerType: "LDS",
	resource.RouteType:    "RDS",
	// Scoped routes: the traced outbound listener's (tracing on only).
	resource.ScopedRouteType: "SRDS",
}

type typeState struct {
	short                        string // CDS, EDS, ...: shortTypes[url], looked up once
	count                        int
	desired, sent, acked, nacked string
	nonce, errMsg                string
	lastPush, lastAck, lastNack  time.Time
}

type nodeState struct {
	pod       model.Key
	identity  string
	delta     bool
	connected time.Time
	bytes     int
	types     map[string]*typeState
}

// tracker records what was sent to and acknowledged by each proxy, from
// go-control-plane's callbacks.
type tracker struct {
	mu      sync.Mutex
	nodes   map[string]*nodeState
	streams map[streamKey]string // stream → node ID

	// onSent and onAnswer, if set, observe responses and ACKs/NACKs for
	// metrics and tracing (telemetry.go). They run after mu is released,
	// so telemetry never lengthens the critical section every ACK and
	// push waits on, on the goroutine go-control-plane runs the stream's
	// callbacks on (requests and responses of one stream, in order).
	onSent   func(typeURL string)
	onAnswer func(nodeID, typeURL, version string, nack bool, detail string)
}

// streamKey identifies a stream: go-control-plane numbers SotW and delta
// streams independently, so the IDs alone collide.
type streamKey struct {
	delta bool
	id    int64
}

func newTracker() *tracker {
	return &tracker{nodes: map[string]*nodeState{}, streams: map[streamKey]string{}}
}

func (t *tracker) addNode(nodeID string, pod model.Key, identity string, delta bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.nodes[nodeID] = &nodeState{pod: pod, identity: identity, delta: delta, connected: time.Now(), types: map[string]*typeState{}}
}

func (t *tracker) removeNode(nodeID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.nodes, nodeID)
}

func (t *tracker) setDesired(nodeID string, b *builtSnapshot) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.nodes[nodeID]
	if n == nil {
		return
	}
	n.bytes = b.bytes
	for url, v := range b.versions {
		ts := n.typeState(url)
		ts.desired, ts.count = v, b.counts[url]
	}
}

// state derives the SyncState of a type from what was wanted, sent and
// acknowledged.
func (ts *typeState) state() SyncState {
	switch {
	case ts.nacked != "" && ts.nacked == ts.desired:
		return NACKed
	case ts.acked == ts.desired, ts.count == 0 && ts.nacked == "":
		// An empty type is never requested (no EDS clusters or RDS
		// names): nothing to be out of sync about.
		return Synced
	}
	return Stale
}

func (n *nodeState) typeState(url string) *typeState {
	ts := n.types[url]
	if ts == nil {
		ts = &typeState{short: shortTypes[url]}
		n.types[url] = ts
	}
	return ts
}

// stateFor finds the node of a stream, learning it from the request's
// node on the stream's first request.
func (t *tracker) stateFor(streamID streamKey, node *corev3.Node) *nodeState {
	id, ok := t.streams[streamID]
	if !ok && node.GetId() != "" {
		id = node.GetId()
		t.streams[streamID] = id
	}
	return t.nodes[id]
}

func (t *tracker) sent(streamID streamKey, typeURL, nonce, version string) {
	t.mu.Lock()
	n := t.nodes[t.streams[streamID]]
	if n == nil {
		t.mu.Unlock()
		return
	}
	ts := n.typeState(typeURL)
	ts.sent, ts.nonce, ts.lastPush = version, nonce, time.Now()
	t.mu.Unlock()
	if t.onSent != nil {
		t.onSent(typeURL)
	}
}

// received records an ACK or NACK. It returns the version a NACK rejected,
// or "" for anything else.
func (t *tracker) received(streamID streamKey, node *corev3.Node, typeURL, nonce, errMsg string, isNack bool) string {
	t.mu.Lock()
	n := t.stateFor(streamID, node)
	if n == nil || nonce == "" {
		t.mu.Unlock()
		return ""
	}
	ts := n.typeState(typeURL)
	if nonce != ts.nonce {
		t.mu.Unlock()
		return "" // a reply to an older response; a newer one is in flight
	}
	nodeID, version := t.streams[streamID], ts.sent
	rejected := ""
	if isNack {
		ts.nacked, ts.errMsg, ts.lastNack = version, errMsg, time.Now()
		rejected = version
	} else {
		ts.acked, ts.lastAck = version, time.Now()
		ts.nacked, ts.errMsg = "", ""
	}
	t.mu.Unlock()
	if t.onAnswer != nil {
		t.onAnswer(nodeID, typeURL, version, isNack, errMsg)
	}
	return rejected
}

func (t *tracker) nodeOf(k streamKey) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.streams[k]
}

func (t *tracker) closeStream(streamID streamKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.streams, streamID)
}

// callbacks adapts the tracker to go-control-plane's server callbacks.
func (t *tracker) callbacks(s *Server) serverv3.Callbacks {
	return serverv3.CallbackFuncs{
		StreamClosedFunc:      func(id int64, _ *corev3.Node) { t.closeStream(streamKey{false, id}) },
		DeltaStreamClosedFunc: func(id int64, _ *corev3.Node) { t.closeStream(streamKey{true, id}) },
		StreamRequestFunc: func(id int64, req *discoveryv3.DiscoveryRequest) error {
			nack := req.GetErrorDetail() != nil
			rejected := t.received(streamKey{false, id}, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail().GetMessage(), nack)
			if nack {
				s.log.Info("proxy rejected config", "node", req.GetNode().GetId(), "type", req.GetTypeUrl(),
					"version", rejected, "error", req.GetErrorDetail().GetMessage())
			}
			if rejected != "" {
				// A NACK carries the last accepted version, which the
				// snapshot cache would answer by resending the rejected
				// version at once, forever. Claim the rejected version so
				// the watch waits for the next snapshot instead.
				req.VersionInfo = rejected
			}
			return nil
		},
		StreamResponseFunc: func(_ context.Context, id int64, req *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
			t.sent(streamKey{false, id}, resp.GetTypeUrl(), resp.GetNonce(), resp.GetVersionInfo())
		},
		StreamDeltaRequestFunc: func(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
			nack := req.GetErrorDetail() != nil
			rejected := t.received(streamKey{true, id}, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail().GetMessage(), nack)
			if nack {
				s.log.Info("proxy rejected config", "node", t.nodeOf(streamKey{true, id}), "type", req.GetTypeUrl(),
					"version", rejected, "error", req.GetErrorDetail().GetMessage())
			}
			return nil
		},
		StreamDeltaResponseFunc: func(id int64, _ *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
			t.sent(streamKey{true, id}, resp.GetTypeUrl(), resp.GetNonce(), resp.GetSystemVersionInfo())
		},
	}
}

// SyncStatus reports, for every connected proxy, whether it has the config
// pilot wants it to have, per xDS type. meshctl proxy-status reads it via
// DebugHandler.
func (s *Server) SyncStatus() []ProxyStatus {
	t := s.status
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]ProxyStatus, 0, len(t.nodes))
	for id, n := range t.nodes {
		ps := ProxyStatus{
			NodeID: id, Namespace: n.pod.Namespace, Pod: n.pod.Name, Identity: n.identity,
			Delta: n.delta, ConnectedAt: n.connected, ConfigBytes: n.bytes,
		}
		for url, ts := range n.types {
			if ts.count == 0 && ts.sent == "" && ts.acked == "" && ts.nacked == "" {
				continue // a type the proxy never needed (SRDS without tracing)
			}
			st := TypeStatus{
				Type: ts.short, TypeURL: url, Version: ts.desired, Sent: ts.sent, Acked: ts.acked, Resources: ts.count,
				LastPush: ts.lastPush, LastAck: ts.lastAck, LastNack: ts.lastNack,
			}
			if st.State = ts.state(); st.State == NACKed {
				st.Error = ts.errMsg
			}
			ps.Types = append(ps.Types, st)
		}
		slices.SortFunc(ps.Types, func(a, b TypeStatus) int { return strings.Compare(a.Type, b.Type) })
		out = append(out, ps)
	}
	slices.SortFunc(out, func(a, b ProxyStatus) int { return strings.Compare(a.NodeID, b.NodeID) })
	return out
}

// SyncSummary condenses SyncStatus for metrics and load tests, without
// building the per-proxy report.
type SyncSummary struct {
	// Proxies is the number of connected proxies; Synced have every type
	// SYNCED; NACKed have at least one type NACKed.
	Proxies, Synced, NACKed int
	// OldestAck and NewestAck are the earliest and latest "last ACK" of
	// the given type across proxies: once OldestAck is after a change,
	// every proxy has acknowledged something since.
	OldestAck, NewestAck time.Time
}

// Summary computes a SyncSummary, with ACK times of typ ("EDS", "CDS",
// "LDS" or "RDS").
func (s *Server) Summary(typ string) SyncSummary {
	t := s.status
	t.mu.Lock()
	defer t.mu.Unlock()
	out := SyncSummary{Proxies: len(t.nodes)}
	for _, n := range t.nodes {
		synced, nacked := len(n.types) == len(shortTypes), false
		for _, ts := range n.types {
			st := ts.state()
			synced = synced && st == Synced
			nacked = nacked || st == NACKed
			if ts.short != typ {
				continue
			}
			if out.OldestAck.IsZero() || ts.lastAck.Before(out.OldestAck) {
				out.OldestAck = ts.lastAck
			}
			if ts.lastAck.After(out.NewestAck) {
				out.NewestAck = ts.lastAck
			}
		}
		if synced {
			out.Synced++
		}
		if nacked {
			out.NACKed++
		}
	}
	return out
}
