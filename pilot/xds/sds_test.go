package xds

import (
	"context"
	"net"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/log"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"

	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/xds/xdstest"
)

// startSDS stands in for the agent's SDS server: it serves the workload
// SVID as "default" and the root as "ROOTCA" on a Unix socket.
func startSDS(t *testing.T, path, nodeID string, svid *xdstest.Issued, ca *xdstest.CA) string {
	t.Helper()
	inline := func(b []byte) *corev3.DataSource {
		return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b}}
	}
	secrets := []types.Resource{
		&tlsv3.Secret{Name: generator.SecretDefault, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: inline(svid.CertPEM), PrivateKey: inline(svid.KeyPEM),
		}}},
		&tlsv3.Secret{Name: generator.SecretRootCA, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: inline(ca.PEM),
		}}},
	}
	sc := cache.NewSnapshotCache(false, cache.IDHash{}, log.LoggerFuncs{})
	snap, err := cache.NewSnapshot("1", map[resource.Type][]types.Resource{resource.SecretType: secrets})
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.SetSnapshot(context.Background(), nodeID, snap); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gs := grpc.NewServer()
	secretv3.RegisterSecretDiscoveryServiceServer(gs, serverv3.NewServer(ctx, sc, nil))
	lis, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(func() {
		cancel()
		gs.Stop()
	})
	return path
}
