package xds

import (
	"context"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

type rawClient struct {
	stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
}

// rawSotW opens an ADS stream with no client logic, for protocol abuse.
func rawSotW(t *testing.T, h *harness, id string) *rawClient {
	t.Helper()
	conn, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(), idHeader, id))
	t.Cleanup(cancel)
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &rawClient{stream: st}
}

func (c *rawClient) send(nodeID, typeURL string) error {
	return c.stream.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: nodeID}, TypeUrl: typeURL})
}
