package xdstest

import (
	"maps"
	"slices"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// runDelta speaks incremental ADS: responses carry only changed and removed
// resources, acknowledged by nonce.
func (c *Client) runDelta(st discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient) error {
	send := func(r *discoveryv3.DeltaDiscoveryRequest) error {
		if err := st.Send(r); err != nil {
			// io.EOF means the server ended the stream; its status
			// comes from Recv.
			_, rerr := st.Recv()
			return c.recvErr(cmpErr(rerr, err))
		}
		return nil
	}
	if err := send(&discoveryv3.DeltaDiscoveryRequest{Node: c.node(), TypeUrl: resource.ClusterType}); err != nil {
		return err
	}
	if err := send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resource.ListenerType}); err != nil {
		return err
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			return c.recvErr(err)
		}
		url := resp.GetTypeUrl()
		anys := make([]*anypb.Any, 0, len(resp.GetResources()))
		for _, r := range resp.GetResources() {
			anys = append(anys, r.GetResource())
		}
		c.mu.Lock()
		c.responses[url]++
		c.bytes += size(anys)
		c.mu.Unlock()

		if nack := c.check(url, anys); nack != nil {
			if err := send(&discoveryv3.DeltaDiscoveryRequest{
				TypeUrl: url, ResponseNonce: resp.GetNonce(), ErrorDetail: nack,
			}); err != nil {
				return err
			}
			c.mu.Lock()
			c.notifyLocked()
			c.mu.Unlock()
			continue
		}
		c.mu.Lock()
		cur := maps.Clone(c.resources[url])
		if cur == nil {
			cur = map[string]*anypb.Any{}
		}
		for _, r := range resp.GetResources() {
			cur[r.GetName()] = r.GetResource()
		}
		for _, name := range resp.GetRemovedResources() {
			delete(cur, name)
		}
		c.resources[url] = cur
		c.versions[url] = resp.GetSystemVersionInfo()
		c.mu.Unlock()
		if err := send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: url, ResponseNonce: resp.GetNonce()}); err != nil {
			return err
		}
		c.acked(url, resp.GetSystemVersionInfo())
		if err := c.resubscribeDelta(url, cur, send); err != nil {
			return err
		}
		c.mu.Lock()
		c.notifyLocked()
		c.mu.Unlock()
	}
}

// resubscribeDelta subscribes to newly referenced EDS or RDS names and
// unsubscribes from ones no longer referenced, then asks for SRDS the
// first time listeners use it.
func (c *Client) resubscribeDelta(url string, got map[string]*anypb.Any, send func(*discoveryv3.DeltaDiscoveryRequest) error) error {
	refs, err := referenced(url, got)
	if err != nil || refs.child == "" {
		return err
	}
	c.mu.Lock()
	old := c.subs[refs.child]
	c.subs[refs.child] = refs.names
	c.mu.Unlock()
	oldSet := map[string]bool{}
	for _, n := range old {
		oldSet[n] = true
	}
	var add []string
	for _, n := range refs.names {
		if !oldSet[n] {
			add = append(add, n)
		}
		delete(oldSet, n)
	}
	if remove := slices.Sorted(maps.Keys(oldSet)); len(add) > 0 || len(remove) > 0 {
		if err := send(&discoveryv3.DeltaDiscoveryRequest{
			TypeUrl: refs.child, ResourceNamesSubscribe: add, ResourceNamesUnsubscribe: remove,
		}); err != nil {
			return err
		}
	}
	if c.firstSRDS(refs) {
		return send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resource.ScopedRouteType})
	}
	return nil
}
