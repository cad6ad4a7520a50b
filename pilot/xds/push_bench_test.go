package xds

import (
	"fmt"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weftmesh/weft/pilot/model"
	mt "github.com/weftmesh/weft/pilot/model/modeltest"
)

// BenchmarkPush measures one push after an EndpointSlice change: generation,
// hashing and SetSnapshot for every proxy, without the network (the
// loadgen command measures the whole path).
func BenchmarkPush(b *testing.B) {
	for _, size := range []struct {
		proxies, services int
		fullCheck         bool
	}{{100, 100, false}, {1000, 100, false}, {100, 1000, false}, {100, 100, true}, {1000, 100, true}, {100, 1000, true}} {
		b.Run(fmt.Sprintf("proxies=%d/services=%d/fullcheck=%v", size.proxies, size.services, size.fullCheck), func(b *testing.B) {
			st := model.NewStore(model.StoreConfig{})
			var svcs []*model.Service
			var pods []*model.Pod
			for i := range size.services {
				ns := fmt.Sprintf("ns-%d", i%10)
				svc := mt.Service(ns, fmt.Sprintf("svc-%d", i), fmt.Sprintf("10.96.%d.%d", i/250, i%250+1), fmt.Sprintf("app-%d", i), mt.Port("http", 80, 8080))
				st.UpsertService(svc)
				svcs = append(svcs, svc)
			}
			for k := range size.proxies {
				i := k % size.services
				p := mt.Pod(svcs[i].Namespace, fmt.Sprintf("pod-%d", k), "sa", fmt.Sprintf("10.1.%d.%d", k/250, k%250+1), fmt.Sprintf("app-%d", i), true)
				st.UpsertPod(p)
				pods = append(pods, p)
			}
			for i, svc := range svcs {
				var backing []*model.Pod
				for k := i; k < len(pods); k += size.services {
					backing = append(backing, pods[k])
				}
				st.UpsertEndpointSlice(mt.Slice(svc, backing...))
			}
			s, err := New(Config{Model: st, Authenticator: headerAuthenticator{}, FullConsistencyCheck: size.fullCheck})
			if err != nil {
				b.Fatal(err)
			}
			benchPushes(b, s, st, pods, svcs[0])
		})
	}
}

// benchPushes connects a proxy per pod, then times b.N pushes, each after
// svc's EndpointSlice gained or lost one endpoint.
func benchPushes(b *testing.B, s *Server, st *model.Store, pods []*model.Pod, svc *model.Service) {
	for _, p := range pods {
		s.connect(b.Context(), &corev3.Node{Id: p.Name + "." + p.Namespace}, p, spiffeid.RequireFromString("spiffe://cluster.local/x"), true)
	}
	b.ResetTimer()
	for n := range b.N {
		extra := mt.Pod(svc.Namespace, "extra", "sa", "10.200.0.1", "x", true)
		if n%2 == 0 {
			st.UpsertEndpointSlice(mt.Slice(svc, extra))
		} else {
			st.UpsertEndpointSlice(mt.Slice(svc))
		}
		s.pushAll(b.Context())
	}
}
