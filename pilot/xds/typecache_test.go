package xds

import (
	"slices"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"

	mt "github.com/weftmesh/weft/pilot/model/modeltest"
)

// A push hands go-control-plane only the types whose content changed, and
// those in ADS order, through the one channel a stream has for all its
// watches: a new Service changes every type; an EndpointSlice change
// only EDS, and go-control-plane is not even asked to diff the others.
func TestPushSetsOnlyChangedTypesInOrder(t *testing.T) {
	s, st, proxies := telemetryWorld(t)
	p := proxies["a"]
	responses := make(chan cache.DeltaResponse, 16)
	// watch opens a wildcard delta watch of url, as a stream does after
	// the proxy ACKed these versions.
	watch := func(url string, versions map[string]string) {
		t.Helper()
		req := &cache.DeltaRequest{TypeUrl: url, Node: &corev3.Node{Id: p.nodeID}, ResponseNonce: "acked"}
		cancel, err := s.caches.mux.CreateDeltaWatch(req, stream.NewDeltaSubscription(nil, nil, versions, true), responses)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cancel)
	}
	// sent is the type URLs of the responses the push sent, in order.
	sent := func() []string {
		t.Helper()
		var urls []string
		for {
			select {
			case r := <-responses:
				url := r.GetDeltaRequest().GetTypeUrl()
				urls = append(urls, url)
				watch(url, r.GetNextVersionMap())
			case <-time.After(50 * time.Millisecond):
				return urls
			}
		}
	}
	all := []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.ScopedRouteType, resource.RouteType}
	for _, url := range all {
		watch(url, p.last.snap.VersionMap[url])
	}
	if got := sent(); len(got) != 0 {
		t.Fatalf("watches in sync with the snapshot were answered: %v", got)
	}

	pod := mt.Pod("a", "cart-1", "cart", "10.0.1.1", "cart", true)
	svc := mt.Service("a", "cart", "10.96.1.1", "cart", mt.Port("http", 80, 8080))
	st.UpsertPod(pod)
	st.UpsertService(svc)
	st.UpsertEndpointSlice(mt.Slice(svc, pod))
	s.pushAll(t.Context())
	if got := sent(); !slices.Equal(got, all) {
		t.Fatalf("a new Service sent %v, want every type in ADS order %v", got, all)
	}

	held := func() map[string]cache.ResourceSnapshot {
		out := map[string]cache.ResourceSnapshot{}
		for _, url := range all {
			snap, err := s.caches.byURL[url].GetSnapshot(p.nodeID)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := snap.GetVersion(url), p.last.versions[url]; got != want {
				t.Errorf("%s: cache holds version %s, proxy's last snapshot %s", url, got, want)
			}
			out[url] = snap
		}
		return out
	}
	before := held()
	extra := mt.Pod("a", "cart-2", "cart", "10.0.1.2", "cart", true)
	st.UpsertPod(extra)
	st.UpsertEndpointSlice(mt.Slice(svc, pod, extra))
	s.pushAll(t.Context())
	if got := sent(); !slices.Equal(got, []string{resource.EndpointType}) {
		t.Fatalf("an EndpointSlice change sent %v, want only EDS", got)
	}
	for url, snap := range held() {
		if set := snap != before[url]; set != (url == resource.EndpointType) {
			t.Errorf("%s: snapshot set again: %v", url, set)
		}
	}
}
