// Package healthcheck serves the two kinds of health endpoints load
// balancers and kubelets probe on a kube-proxy node, with kube-proxy's
// semantics (pkg/proxy/healthcheck) so existing cloud load-balancer
// configurations keep working: the node's /healthz and /livez (default
// :10256), and one port per externalTrafficPolicy: Local Service
// (spec.healthCheckNodePort) that answers 200 only while the node has local
// endpoints for it.
package healthcheck

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Node tracks whether this node's rules are current. It is healthy once the
// first sync succeeded and as long as no change has waited longer than
// Timeout for a successful sync.
type Node struct {
	clock   clock.Clock
	timeout time.Duration

	mu       sync.Mutex
	updated  time.Time // last successful sync
	queued   time.Time // oldest change not yet applied; zero if none
	eligible bool
}

// NewNode returns a Node health tracker; timeout is usually twice the sync
// period (kube-proxy's choice). A nil clock means the real one.
func NewNode(timeout time.Duration, c clock.Clock) *Node {
	if c == nil {
		c = clock.RealClock{}
	}
	return &Node{clock: c, timeout: timeout, eligible: true}
}

// Queued records that a change is waiting for a sync.
func (n *Node) Queued() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.queued.IsZero() {
		n.queued = n.clock.Now()
	}
}

// Updated records a successful sync covering every queued change.
func (n *Node) Updated() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.updated, n.queued = n.clock.Now(), time.Time{}
}

// SetEligible records whether the node should still get load-balancer
// traffic (false while it is deleted or drained).
func (n *Node) SetEligible(ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.eligible = ok
}

// Healthy reports whether the rules are current.
func (n *Node) Healthy() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.healthyLocked(n.clock.Now())
}

func (n *Node) healthyLocked(now time.Time) bool {
	if n.updated.IsZero() {
		return false
	}
	return n.queued.IsZero() || now.Sub(n.queued) < n.timeout
}

type nodeStatus struct {
	LastUpdated  string `json:"lastUpdated"`
	CurrentTime  string `json:"currentTime"`
	NodeEligible *bool  `json:"nodeEligible,omitempty"`
}

// Handler serves /healthz (rules current and node eligible) and /livez
// (rules current).
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	serve := func(withEligibility bool) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			n.mu.Lock()
			now := n.clock.Now()
			ok := n.healthyLocked(now)
			st := nodeStatus{LastUpdated: n.updated.Format(time.RFC3339Nano), CurrentTime: now.Format(time.RFC3339Nano)}
			if withEligibility {
				eligible := n.eligible
				st.NodeEligible = &eligible
				ok = ok && eligible
			}
			n.mu.Unlock()
			writeJSON(w, ok, st)
		}
	}
	mux.Handle("/healthz", serve(true))
	mux.Handle("/livez", serve(false))
	return mux
}

func writeJSON(w http.ResponseWriter, ok bool, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if ok {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	// The status line is already out; a write error only means the prober
	// went away.
	if err := json.NewEncoder(w).Encode(body); err != nil {
		return
	}
}
