package xdstest

import (
	"slices"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// runSotW speaks state-of-the-world ADS: every response holds the full set
// of a type, acknowledged by echoing its version and nonce.
func (c *Client) runSotW(st discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient) error {
	send := func(r *discoveryv3.DiscoveryRequest) error {
		if err := st.Send(r); err != nil {
			// io.EOF means the server ended the stream; its status
			// comes from Recv.
			_, rerr := st.Recv()
			return c.recvErr(cmpErr(rerr, err))
		}
		return nil
	}
	if err := send(&discoveryv3.DiscoveryRequest{Node: c.node(), TypeUrl: resource.ClusterType}); err != nil {
		return err
	}
	if err := send(&discoveryv3.DiscoveryRequest{TypeUrl: resource.ListenerType}); err != nil {
		return err
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			return c.recvErr(err)
		}
		url := resp.GetTypeUrl()
		c.mu.Lock()
		c.responses[url]++
		c.bytes += size(resp.GetResources())
		prev := c.versions[url]
		names := c.subs[url]
		c.mu.Unlock()

		if nack := c.check(url, resp.GetResources()); nack != nil {
			if err := send(&discoveryv3.DiscoveryRequest{
				TypeUrl: url, VersionInfo: prev, ResponseNonce: resp.GetNonce(),
				ResourceNames: names, ErrorDetail: nack,
			}); err != nil {
				return err
			}
			c.mu.Lock()
			c.notifyLocked()
			c.mu.Unlock()
			continue
		}
		got := make(map[string]*anypb.Any, len(resp.GetResources()))
		for _, a := range resp.GetResources() {
			got[resourceName(url, a)] = a
		}
		c.mu.Lock()
		c.resources[url] = got
		c.versions[url] = resp.GetVersionInfo()
		c.mu.Unlock()
		if err := send(&discoveryv3.DiscoveryRequest{
			TypeUrl: url, VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce(), ResourceNames: names,
		}); err != nil {
			return err
		}
		c.acked(url, resp.GetVersionInfo())
		if err := c.resubscribeSotW(url, got, send); err != nil {
			return err
		}
		c.mu.Lock()
		c.notifyLocked()
		c.mu.Unlock()
	}
}

// resubscribeSotW updates the EDS or RDS subscription after clusters or
// listeners changed, then asks for SRDS the first time listeners use it.
// The nonces are left empty: these are new requests, not replies.
func (c *Client) resubscribeSotW(url string, got map[string]*anypb.Any, send func(*discoveryv3.DiscoveryRequest) error) error {
	refs, err := referenced(url, got)
	if err != nil || refs.child == "" {
		return err
	}
	c.mu.Lock()
	same := slices.Equal(c.subs[refs.child], refs.names)
	c.subs[refs.child] = refs.names
	version := c.versions[refs.child]
	c.mu.Unlock()
	if !same {
		if err := send(&discoveryv3.DiscoveryRequest{TypeUrl: refs.child, VersionInfo: version, ResourceNames: refs.names}); err != nil {
			return err
		}
	}
	if c.firstSRDS(refs) {
		return send(&discoveryv3.DiscoveryRequest{TypeUrl: resource.ScopedRouteType})
	}
	return nil
}

func resourceName(url string, a *anypb.Any) string {
	m, err := a.UnmarshalNew()
	if err != nil {
		return ""
	}
	type named interface{ GetName() string }
	type clusterNamed interface{ GetClusterName() string }
	if url == resource.EndpointType {
		if n, ok := m.(clusterNamed); ok {
			return n.GetClusterName()
		}
	}
	if n, ok := m.(named); ok {
		return n.GetName()
	}
	return ""
}
