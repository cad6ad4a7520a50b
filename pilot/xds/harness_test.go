package xds

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weftmesh/weft/pilot/model"
	mt "github.com/weftmesh/weft/pilot/model/modeltest"
	"github.com/weftmesh/weft/pilot/xds/xdstest"
)

// headerAuthenticator trusts a SPIFFE ID sent in request metadata: a
// stand-in for TLS so authorisation can be tested on its own.
type headerAuthenticator struct{}

const idHeader = "x-test-spiffe-id"

func (headerAuthenticator) Authenticate(ctx context.Context) (spiffeid.ID, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	v := md.Get(idHeader)
	if len(v) == 0 {
		return spiffeid.ID{}, errors.New("no identity header")
	}
	return spiffeid.FromString(v[0])
}

const ns = "shop"

// testWorld is a small mesh: productpage calls reviews (HTTP) and db
// (TCP); every pod has a sidecar.
func testWorld(st *model.Store) {
	pp := mt.Pod(ns, "productpage-1", "productpage", "10.0.1.10", "productpage", true)
	r1 := mt.Pod(ns, "reviews-1", "reviews", "10.0.2.10", "reviews", true)
	r2 := mt.Pod(ns, "reviews-2", "reviews", "10.0.2.11", "reviews", true)
	db := mt.Pod(ns, "db-1", "db", "10.0.3.10", "db", true)
	reviews := mt.Service(ns, "reviews", "10.96.0.20", "reviews", mt.Port("http", 9080, 9080))
	dbSvc := mt.Service(ns, "db", "10.96.0.30", "db", mt.Port("postgres", 5432, 5432))
	pageSvc := mt.Service(ns, "productpage", "10.96.0.10", "productpage", mt.Port("http", 9080, 9080))
	for _, p := range []*model.Pod{pp, r1, r2, db} {
		st.UpsertPod(p)
	}
	for _, s := range []*model.Service{reviews, dbSvc, pageSvc} {
		st.UpsertService(s)
	}
	st.UpsertEndpointSlice(mt.Slice(reviews, r1, r2))
	st.UpsertEndpointSlice(mt.Slice(dbSvc, db))
	st.UpsertEndpointSlice(mt.Slice(pageSvc, pp))
}

func spiffe(ns, sa string) string { return "spiffe://cluster.local/ns/" + ns + "/sa/" + sa }

type harness struct {
	t     *testing.T
	srv   *Server
	store *model.Store
	addr  string
	ctx   context.Context
	// cfg is the running server's config; stop stops it and waits.
	cfg  Config
	stop func()
}

// startServer runs a Server with the header authenticator on a loopback
// port until the test ends.
func startServer(t *testing.T, mutate func(*Config)) *harness {
	t.Helper()
	st := model.NewStore(model.StoreConfig{RootNamespace: "weft-system"})
	testWorld(st)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Listener: lis, Authenticator: headerAuthenticator{}, Model: st,
		Debounce: 10 * time.Millisecond, MaxDebounce: 50 * time.Millisecond, PodWait: 200 * time.Millisecond,
		FullConsistencyCheck: true,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	h := &harness{t: t, store: st, addr: lis.Addr().String()}
	h.run(cfg, nil)
	t.Cleanup(func() { h.stop() })
	return h
}

// run starts a Server with cfg; before, if set, sees it before it serves.
func (h *harness) run(cfg Config, before func(*Server)) {
	h.t.Helper()
	srv, err := New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	if before != nil {
		before(srv)
	}
	ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), testr.NewWithOptions(h.t, testr.Options{Verbosity: 1})))
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var once sync.Once
	h.srv, h.cfg, h.ctx = srv, cfg, ctx
	h.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				h.t.Errorf("server: %v", err)
			}
		})
	}
}

// restart replaces the server with a new one on the same address and
// model, as a pilot rollout does; mutate edits the new one's config.
func (h *harness) restart(mutate func(*Config), before func(*Server)) {
	h.t.Helper()
	h.stop()
	lis, err := net.Listen("tcp", h.addr)
	if err != nil {
		h.t.Fatal(err)
	}
	cfg := h.cfg
	cfg.Listener = lis
	if mutate != nil {
		mutate(&cfg)
	}
	h.run(cfg, before)
}

// client starts a simulated proxy for pod (in ns) presenting identity id.
func (h *harness) client(pod, id string, delta bool, reject func(string, []*anypb.Any) error) *xdstest.Client {
	h.t.Helper()
	conn, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = conn.Close() })
	ctx := metadata.AppendToOutgoingContext(context.Background(), idHeader, id)
	c, err := xdstest.Start(ctx, conn, xdstest.Config{NodeID: pod + "." + ns, Delta: delta, Reject: reject})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(c.Close)
	return c
}

// waitSynced waits until every type of the node is SYNCED in SyncStatus.
func (h *harness) waitSynced(nodeID string) ProxyStatus {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, ps := range h.srv.SyncStatus() {
			if ps.NodeID != nodeID || len(ps.Types) < 4 {
				continue
			}
			ok := true
			for _, ts := range ps.Types {
				ok = ok && ts.State == Synced
			}
			if ok {
				return ps
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("node %s not synced: %+v", nodeID, h.srv.SyncStatus())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
