package node

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netlink"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/weftmesh/weft/cni-plugin/bridge"
	"github.com/weftmesh/weft/cni-plugin/ipam"
)

// stepErrors collects the errors of one sync, counting each by stage; one
// failing step does not stop the others.
type stepErrors struct {
	ctx     context.Context
	metrics *Metrics
	errs    []error
}

func (s *stepErrors) add(stage string, err error) {
	if err == nil {
		return
	}
	s.metrics.countError(s.ctx, stage)
	s.errs = append(s.errs, fmt.Errorf("%s: %w", stage, err))
}

func (s *stepErrors) err() error { return errors.Join(s.errs...) }

// sync is one reconcile. A full one also installs binaries and reclaims
// addresses of vanished sandboxes.
func (a *Agent) sync(ctx context.Context, full bool) error {
	start := time.Now()
	defer func() {
		a.metrics.observeSync(ctx, time.Since(start))
		a.lastSync.Store(time.Now().UnixNano())
	}()
	log := logr.FromContextOrDiscard(ctx)
	steps := &stepErrors{ctx: ctx, metrics: a.metrics}
	if full {
		installed, err := InstallBinaries(a.cfg.SourceBinDir, a.cfg.CNIBinDir)
		steps.add("install", err)
		if len(installed) > 0 {
			log.Info("installed CNI plugins", "dir", a.cfg.CNIBinDir, "binaries", installed)
		}
	}
	self, err := a.nodes.Get(a.cfg.NodeName)
	if err != nil {
		steps.add("node", fmt.Errorf("get node %s: %w", a.cfg.NodeName, err))
		return steps.err()
	}
	me, ok := PeerFromNode(self)
	if !ok {
		log.Info("waiting for the node's podCIDR", "node", a.cfg.NodeName)
		return steps.err()
	}
	nodes, err := a.nodes.List(labels.Everything())
	steps.add("node", err)
	peers := make([]Peer, 0, len(nodes))
	for _, n := range nodes {
		if p, ok := PeerFromNode(n); ok {
			peers = append(peers, p)
		}
	}
	a.syncNetwork(ctx, steps, me, peers)
	if full {
		steps.add("ipam-gc", a.gcIPAM(ctx))
	}
	steps.add("cni-ops", a.drainOps(ctx))
	return steps.err()
}

// syncNetwork makes the kernel and the conf dir match: forwarding sysctls,
// routes to peers, masquerade, then the conflist (written last, so the
// runtime starts pods only once their traffic can leave the node).
func (a *Agent) syncNetwork(ctx context.Context, steps *stepErrors, me Peer, peers []Peer) {
	log := logr.FromContextOrDiscard(ctx)
	err := bridge.EnableForwarding()
	if errors.Is(err, bridge.ErrNoBridgeNetfilter) {
		log.Error(err, "traffic between pods on this node bypasses iptables")
		err = nil
	}
	steps.add("sysctl", err)

	current, err := ownRoutes()
	steps.add("routes", err)
	if err == nil {
		desired := DesiredRoutes(me.Name, peers)
		add, del := PlanRoutes(desired, current)
		err := applyRoutes(add, del)
		steps.add("routes", err)
		if len(add)+len(del) > 0 {
			log.Info("routes changed", "added", len(add), "deleted", len(del), "error", err)
		}
		if now, lerr := ownRoutes(); lerr == nil {
			a.metrics.routes.Store(int64(len(now)))
		}
	}

	changed, err := applyMasquerade(a.ipt, a.cfg.ClusterCIDR)
	steps.add("masquerade", err)
	if changed {
		log.Info("masquerade rules written", "chain", MasqChain, "clusterCIDR", a.cfg.ClusterCIDR)
	}

	steps.add("conflist", a.writeConflist(ctx, me))
}

func (a *Agent) writeConflist(ctx context.Context, me Peer) error {
	mtu := a.cfg.MTU
	if mtu == 0 {
		mtu = detectMTU(me.InternalIP)
	}
	data, err := BuildConflist(ConflistConfig{
		CNIVersion: a.cfg.CNIVersion, Bridge: a.cfg.Bridge, PodCIDR: me.PodCIDR, MTU: mtu,
		DataDir: a.cfg.IPAMDataDir, Chained: a.cfg.ChainedPlugins,
	})
	if err != nil {
		return err
	}
	path := filepath.Join(a.cfg.CNIConfDir, ConflistName)
	wrote, err := writeFileIfChanged(path, data, 0o644)
	if err != nil {
		return err
	}
	if wrote {
		logr.FromContextOrDiscard(ctx).Info("wrote CNI config", "path", path, "podCIDR", me.PodCIDR, "mtu", mtu)
	}
	a.ready.Store(true)
	return nil
}

// detectMTU is the MTU of the interface holding ip, else 1500.
func detectMTU(ip netip.Addr) int {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return 1500
	}
	for _, addr := range addrs {
		if a, ok := netip.AddrFromSlice(addr.IP); ok && a.Unmap() == ip {
			if link, err := netlink.LinkByIndex(addr.LinkIndex); err == nil {
				return link.Attrs().MTU
			}
		}
	}
	return 1500
}

// gcIPAM frees addresses whose sandbox netns is gone and exports the count
// still allocated.
func (a *Agent) gcIPAM(ctx context.Context) error {
	store, err := ipam.Open(a.cfg.IPAMDataDir, NetworkName)
	if err != nil {
		return err
	}
	freed, err := store.GCStaleNetns()
	if err != nil {
		return err
	}
	if len(freed) > 0 {
		logr.FromContextOrDiscard(ctx).Info("released addresses of vanished sandboxes", "addresses", freed)
	}
	st, err := store.View()
	if err != nil {
		return err
	}
	a.metrics.ips.Store(int64(len(st.Allocations)))
	return nil
}
