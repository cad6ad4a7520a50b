package xds

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/model"
	mt "github.com/weftmesh/weft/pilot/model/modeltest"
	"github.com/weftmesh/weft/pilot/xds/xdstest"
)

const reviewsCluster = "outbound|9080||reviews.shop.svc.cluster.local"

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func hasResource(url, name string) func(*xdstest.Client) bool {
	return func(c *xdstest.Client) bool { _, ok := c.Resources(url)[name]; return ok }
}

func endpointsOf(t *testing.T, c *xdstest.Client, cluster string) []string {
	t.Helper()
	a, ok := c.Resources(resource.EndpointType)[cluster]
	if !ok {
		return nil
	}
	var cla endpointv3.ClusterLoadAssignment
	if err := a.UnmarshalTo(&cla); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range cla.GetEndpoints() {
		for _, e := range l.GetLbEndpoints() {
			out = append(out, e.GetEndpoint().GetAddress().GetSocketAddress().GetAddress())
		}
	}
	return out
}

func TestSotWAndDeltaGetConfigAndUpdates(t *testing.T) {
	h := startServer(t, nil)
	sotw := h.client("productpage-1", spiffe(ns, "productpage"), false, nil)
	delta := h.client("reviews-1", spiffe(ns, "reviews"), true, nil)
	ctx := ctxT(t)
	for _, c := range []*xdstest.Client{sotw, delta} {
		if err := c.WaitFor(ctx, hasResource(resource.EndpointType, reviewsCluster)); err != nil {
			t.Fatalf("no reviews endpoints: %v", err)
		}
		for _, want := range []struct{ url, name string }{
			{resource.ClusterType, reviewsCluster},
			{resource.RouteType, reviewsCluster},
			{resource.ListenerType, generator.ListenerOutbound},
			{resource.ListenerType, generator.ListenerInbound},
		} {
			if err := c.WaitFor(ctx, hasResource(want.url, want.name)); err != nil {
				t.Fatalf("missing %s %s: %v", want.url, want.name, err)
			}
		}
	}
	h.waitSynced("productpage-1.shop")
	st := h.waitSynced("reviews-1.shop")
	if !st.Delta || st.ConfigBytes == 0 || st.Identity != spiffe(ns, "reviews") {
		t.Errorf("status = %+v", st)
	}

	// An endpoint change reaches both proxies; only EDS is resent.
	cdsBefore := sotw.Responses(resource.ClusterType)
	r3 := mt.Pod(ns, "reviews-3", "reviews", "10.0.2.12", "reviews", true)
	h.store.UpsertPod(r3)
	svc, _ := h.store.View().Service(model.Key{Namespace: ns, Name: "reviews"})
	r1, _ := h.store.Pod(model.Key{Namespace: ns, Name: "reviews-1"})
	r2, _ := h.store.Pod(model.Key{Namespace: ns, Name: "reviews-2"})
	h.store.UpsertEndpointSlice(mt.Slice(svc, r1, r2, r3))
	for _, c := range []*xdstest.Client{sotw, delta} {
		if err := c.WaitFor(ctx, func(c *xdstest.Client) bool {
			return len(endpointsOf(t, c, reviewsCluster)) == 3
		}); err != nil {
			t.Fatalf("endpoint update not received: %v", err)
		}
	}
	h.waitSynced("productpage-1.shop")
	if got := sotw.Responses(resource.ClusterType); got != cdsBefore {
		t.Errorf("CDS resent on an endpoint-only change: %d responses, was %d", got, cdsBefore)
	}
}

func TestAuthorization(t *testing.T) {
	h := startServer(t, nil)
	ctx := ctxT(t)
	for _, tc := range []struct {
		name, pod, id string
		code          codes.Code
		msg           string
	}{
		{"foreign identity", "productpage-1", spiffe(ns, "reviews"), codes.PermissionDenied, "runs as spiffe://cluster.local/ns/shop/sa/productpage"},
		{"other namespace", "productpage-1", spiffe("evil", "productpage"), codes.PermissionDenied, "may not receive config"},
		{"other trust domain", "productpage-1", "spiffe://evil.example/ns/shop/sa/productpage", codes.PermissionDenied, "may not receive config"},
		{"unknown pod", "ghost-1", spiffe(ns, "productpage"), codes.PermissionDenied, "not known to pilot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := h.client(tc.pod, tc.id, false, nil)
			select {
			case <-c.Done():
			case <-ctx.Done():
				t.Fatal("stream was not refused")
			}
			st, _ := status.FromError(c.Err())
			if st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
				t.Fatalf("got %v, want %v containing %q", c.Err(), tc.code, tc.msg)
			}
			if len(c.Resources(resource.ClusterType)) != 0 {
				t.Fatal("refused proxy received config")
			}
		})
	}
	if n := len(h.srv.SyncStatus()); n != 0 {
		t.Errorf("refused proxies in status: %d", n)
	}
}

func TestNoIdentityIsUnauthenticated(t *testing.T) {
	h := startServer(t, nil)
	c := h.client("productpage-1", "", false, nil)
	<-c.Done()
	if status.Code(c.Err()) != codes.Unauthenticated {
		t.Fatalf("got %v, want Unauthenticated", c.Err())
	}
}

func TestNACKIsRecordedAndIsolated(t *testing.T) {
	h := startServer(t, nil)
	ctx := ctxT(t)
	reject := func(url string, _ []*anypb.Any) error {
		if url == resource.ListenerType {
			return errors.New("Error adding/updating listener(s) virtualInbound: bad config")
		}
		return nil
	}
	bad := h.client("productpage-1", spiffe(ns, "productpage"), false, reject)
	badDelta := h.client("db-1", spiffe(ns, "db"), true, reject)
	good := h.client("reviews-1", spiffe(ns, "reviews"), false, nil)
	h.waitSynced("reviews-1.shop")

	for _, node := range []string{"productpage-1.shop", "db-1.shop"} {
		deadline := time.Now().Add(5 * time.Second)
		for {
			ts := typeStatus(h.srv.SyncStatus(), node, "LDS")
			if ts.State == NACKed {
				if !strings.Contains(ts.Error, "bad config") || ts.LastNack.IsZero() {
					t.Errorf("%s: NACK status = %+v", node, ts)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: NACK not recorded: %+v", node, ts)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// The rejected version is not resent in a loop.
	n := bad.Responses(resource.ListenerType)
	time.Sleep(300 * time.Millisecond)
	if got := bad.Responses(resource.ListenerType); got != n {
		t.Errorf("rejected LDS resent %d times without a change", got-n)
	}
	_ = badDelta

	// Others keep getting updates.
	slice := mt.Slice(mt.Service(ns, "reviews", "10.96.0.20", "reviews", mt.Port("http", 9080, 9080)),
		mt.Pod(ns, "reviews-9", "reviews", "10.0.2.99", "reviews", true))
	h.store.UpsertEndpointSlice(slice)
	if err := good.WaitFor(ctx, func(c *xdstest.Client) bool {
		eps := endpointsOf(t, c, reviewsCluster)
		return len(eps) == 1 && eps[0] == "10.0.2.99"
	}); err != nil {
		t.Fatalf("healthy proxy stopped receiving updates: %v", err)
	}
	h.waitSynced("reviews-1.shop")
}

func typeStatus(all []ProxyStatus, node, typ string) TypeStatus {
	for _, ps := range all {
		if ps.NodeID == node {
			for _, ts := range ps.Types {
				if ts.Type == typ {
					return ts
				}
			}
		}
	}
	return TypeStatus{}
}

func TestNodeSwitchMidStreamRefused(t *testing.T) {
	h := startServer(t, nil)
	// xdstest sends the node on the first request only; a hostile client
	// could name another node later. Simulate it with a raw stream.
	c := rawSotW(t, h, spiffe(ns, "productpage"))
	if err := c.send("productpage-1.shop", resource.ClusterType); err != nil {
		t.Fatal(err)
	}
	if _, err := c.stream.Recv(); err != nil {
		t.Fatalf("first response: %v", err)
	}
	if err := c.send("reviews-1.shop", resource.ListenerType); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := c.stream.Recv()
		if err == nil {
			continue
		}
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "bound to node") {
			t.Fatalf("got %v, want PermissionDenied", err)
		}
		return
	}
}

func TestDebouncedPushes(t *testing.T) {
	h := startServer(t, func(c *Config) { c.Debounce = 50 * time.Millisecond; c.MaxDebounce = time.Second })
	c := h.client("productpage-1", spiffe(ns, "productpage"), false, nil)
	h.waitSynced("productpage-1.shop")
	before := c.Responses(resource.EndpointType)
	svc := mt.Service(ns, "reviews", "10.96.0.20", "reviews", mt.Port("http", 9080, 9080))
	for i := range 20 {
		ip := netip.AddrFrom4([4]byte{10, 0, 9, byte(i + 1)}).String()
		h.store.UpsertEndpointSlice(mt.Slice(svc, mt.Pod(ns, "r", "reviews", ip, "reviews", true)))
	}
	ctx := ctxT(t)
	if err := c.WaitFor(ctx, func(c *xdstest.Client) bool {
		eps := endpointsOf(t, c, reviewsCluster)
		return len(eps) == 1 && eps[0] == "10.0.9.20"
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if got := c.Responses(resource.EndpointType) - before; got > 2 {
		t.Errorf("20 changes in a burst caused %d EDS pushes, want 1 (or 2 at a debounce edge)", got)
	}
}

func TestDebugHandler(t *testing.T) {
	h := startServer(t, nil)
	h.client("productpage-1", spiffe(ns, "productpage"), false, nil)
	h.waitSynced("productpage-1.shop")
	rec := httptest.NewRecorder()
	h.srv.DebugHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/syncz?proxy=productpage-1.shop", nil))
	var got []ProxyStatus
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("decode %s: %v", rec.Body, err)
	}
	if len(got) != 1 || got[0].Pod != "productpage-1" || len(got[0].Types) != 4 || got[0].Types[0].State != Synced {
		t.Fatalf("syncz = %s", rec.Body)
	}
}

func TestConfigValidation(t *testing.T) {
	st := model.NewStore(model.StoreConfig{})
	for _, cfg := range []Config{
		{},
		{Model: st},
		{Model: st, Authenticator: TLSAuthenticator{}},
		{Model: st, Authenticator: headerAuthenticator{}, Generator: generator.Options{TrustDomain: "Bad Domain"}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
