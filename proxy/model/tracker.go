package model

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/weftmesh/weft/pilot/telemetry/netprog"
)

// TriggerTimeAnnotation is set by the EndpointSlice controller to the time of
// the change (pod ready, pod deleted, …) that caused the slice update; the
// network-programming-latency metric is measured from it, as kube-proxy does.
const TriggerTimeAnnotation = "endpoints.kubernetes.io/last-change-trigger-time"

// Tracker records Service, EndpointSlice and Node changes as informer
// handlers deliver them and hands the sync loop a consistent state plus the
// names of the Services that changed since the last Take. Handlers only store
// objects; the (cheap) conversion happens lazily in Take, on the sync
// goroutine, so a burst of events costs one rebuild per Service.
type Tracker struct {
	nodeName string
	protos   Protocols
	started  time.Time

	mu       sync.Mutex
	services map[types.NamespacedName]*v1.Service
	slices   map[types.NamespacedName]map[string]*discovery.EndpointSlice
	node     Node
	changed  map[types.NamespacedName]bool
	triggers map[types.NamespacedName][]time.Time
	nodeGen  int
	// tracing is set once the informers' initial lists are in; from then
	// on slice changes are kept for network-programming traces.
	tracing bool
	traced  []netprog.Change
	now     func() time.Time

	// state and errs are only touched by Take, i.e. by the sync goroutine.
	state map[types.NamespacedName]*Service
	errs  map[types.NamespacedName]error
}

// TrackerConfig configures a Tracker.
type TrackerConfig struct {
	// NodeName decides which endpoints are local.
	NodeName string
	// Protocols says what the kernel supports; see Protocols.
	Protocols Protocols
	// Now is read at start-up (only EndpointSlice changes triggered later
	// count for network-programming latency) and when a slice change is
	// recorded for tracing. time.Now if nil.
	Now func() time.Time
}

// NewTracker returns an empty Tracker.
func NewTracker(cfg TrackerConfig) *Tracker {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Tracker{
		nodeName: cfg.NodeName,
		protos:   cfg.Protocols,
		started:  cfg.Now(),
		now:      cfg.Now,
		services: map[types.NamespacedName]*v1.Service{},
		slices:   map[types.NamespacedName]map[string]*discovery.EndpointSlice{},
		node:     Node{Name: cfg.NodeName, Eligible: true},
		changed:  map[types.NamespacedName]bool{},
		triggers: map[types.NamespacedName][]time.Time{},
		state:    map[types.NamespacedName]*Service{},
		errs:     map[types.NamespacedName]error{},
	}
}

// SetService records an added or updated Service.
func (t *Tracker) SetService(svc *v1.Service) {
	name := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.services[name] = svc
	t.changed[name] = true
}

// DeleteService records a deleted Service.
func (t *Tracker) DeleteService(namespace, name string) {
	n := types.NamespacedName{Namespace: namespace, Name: name}
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.services, n)
	t.changed[n] = true
}

// SetSlice records an added or updated EndpointSlice; slices without the
// kubernetes.io/service-name label belong to no Service and are ignored.
func (t *Tracker) SetSlice(s *discovery.EndpointSlice) {
	t.updateSlice(s, false)
}

// DeleteSlice records a deleted EndpointSlice.
func (t *Tracker) DeleteSlice(s *discovery.EndpointSlice) {
	t.updateSlice(s, true)
}

func (t *Tracker) updateSlice(s *discovery.EndpointSlice, deleted bool) {
	svc := s.Labels[discovery.LabelServiceName]
	if svc == "" {
		return
	}
	name := types.NamespacedName{Namespace: s.Namespace, Name: svc}
	// Like kube-proxy, only annotated changes made after start-up count:
	// the initial list says nothing about programming latency.
	var trigger time.Time
	if v, ok := s.Annotations[TriggerTimeAnnotation]; ok && !deleted {
		if ts, err := time.Parse(time.RFC3339Nano, v); err == nil && ts.After(t.started) {
			trigger = ts
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	set := t.slices[name]
	if deleted {
		delete(set, s.Name)
		if len(set) == 0 {
			delete(t.slices, name)
		}
	} else {
		if set == nil {
			set = map[string]*discovery.EndpointSlice{}
			t.slices[name] = set
		}
		set[s.Name] = s
	}
	t.changed[name] = true
	if !trigger.IsZero() {
		t.triggers[name] = append(t.triggers[name], trigger)
	}
	if t.tracing {
		t.traced = append(t.traced, netprog.FromEndpointSlice(s, deleted, t.now()))
	}
}

// TraceChanges starts recording EndpointSlice changes for
// network-programming traces (Changes.Slices). Call it once the informers
// delivered their initial lists, which are state, not changes.
func (t *Tracker) TraceChanges() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tracing = true
}

// SetNode records this node's object: its addresses and whether it should
// still receive load-balancer traffic. A change of addresses needs a full
// sync, which Take reports through NodeChanged.
func (t *Tracker) SetNode(n *v1.Node) {
	node := Node{Name: n.Name, Eligible: n.DeletionTimestamp == nil}
	for _, taint := range n.Spec.Taints {
		if taint.Key == "ToBeDeletedByClusterAutoscaler" {
			node.Eligible = false
		}
	}
	for _, a := range n.Status.Addresses {
		if a.Type != v1.NodeInternalIP && a.Type != v1.NodeExternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() && !slices.Contains(node.IPs, ip) {
			node.IPs = append(node.IPs, ip)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !slices.Equal(node.IPs, t.node.IPs) {
		t.nodeGen++
	}
	t.node = node
}

// Node returns the last recorded state of this node.
func (t *Tracker) Node() Node {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.node
}

// Changes is what one sync works from.
type Changes struct {
	// Services is the complete state. It is owned by the Tracker and valid
	// until the next Take; callers must not modify it.
	Services map[types.NamespacedName]*Service
	// Changed names every Service (present or deleted) whose rules may differ
	// from the previous Take.
	Changed []types.NamespacedName
	// Triggers holds, per changed Service, the times of the EndpointSlice
	// changes this sync programs, for the network-programming-latency metric.
	Triggers map[types.NamespacedName][]time.Time
	// Errors holds the Services (or ports) left out because the node cannot
	// program them.
	Errors map[types.NamespacedName]error
	// NodeGeneration changes whenever this node's addresses change.
	NodeGeneration int
	// Slices are the EndpointSlice changes recorded since the last Take,
	// in arrival order, once TraceChanges was called.
	Slices []netprog.Change
}

// Take converts the Services that changed since the last call and returns
// the new state. Only the sync goroutine may call it.
func (t *Tracker) Take() Changes {
	t.mu.Lock()
	changed := make([]types.NamespacedName, 0, len(t.changed))
	type input struct {
		svc    *v1.Service
		slices []*discovery.EndpointSlice
	}
	inputs := make([]input, 0, len(t.changed))
	for name := range t.changed {
		changed = append(changed, name)
		in := input{svc: t.services[name]}
		for _, s := range t.slices[name] {
			in.slices = append(in.slices, s)
		}
		inputs = append(inputs, in)
	}
	triggers := t.triggers
	nodeGen := t.nodeGen
	traced := t.traced
	t.traced = nil
	t.changed = map[types.NamespacedName]bool{}
	t.triggers = map[types.NamespacedName][]time.Time{}
	t.mu.Unlock()

	for i, name := range changed {
		delete(t.errs, name)
		ports, err := ServicePorts(inputs[i].svc, t.protos)
		if err != nil {
			t.errs[name] = err
		}
		if len(ports) == 0 {
			delete(t.state, name)
			continue
		}
		t.state[name] = &Service{Name: name, Ports: ports, Endpoints: EndpointsByPort(inputs[i].slices, t.nodeName)}
	}
	slices.SortFunc(changed, CompareNames)
	return Changes{Services: t.state, Changed: changed, Triggers: triggers, Errors: t.errs, NodeGeneration: nodeGen, Slices: traced}
}

// CompareNames orders Services by namespace, then name: the order of their
// rules in the dispatch chains.
func CompareNames(a, b types.NamespacedName) int {
	return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
}
