package agent

import (
	"context"
	"fmt"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/log"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	xds "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/go-logr/logr"
	"google.golang.org/grpc"
)

// sdsNode is the one snapshot key: the socket serves exactly one Envoy (the
// pod's), whatever node ID its bootstrap carries.
const sdsNode = "weft-sidecar"

type singleNode struct{}

// ID implements cache.NodeHash: every node maps to the one snapshot.
func (singleNode) ID(*corev3.Node) string { return sdsNode }

// sds serves Envoy's Secret Discovery Service from a go-control-plane
// snapshot cache; every SVID update is a new snapshot version, which the
// cache pushes to open streams.
type sds struct {
	cache   cache.SnapshotCache
	version int
}

func newSDS(ctx context.Context) (*sds, *grpc.Server) {
	l := logr.FromContextOrDiscard(ctx).WithName("sds")
	c := cache.NewSnapshotCache(false, singleNode{}, log.LoggerFuncs{
		DebugFunc: func(f string, a ...any) { l.V(2).Info(fmt.Sprintf(f, a...)) },
		InfoFunc:  func(f string, a ...any) { l.V(1).Info(fmt.Sprintf(f, a...)) },
		WarnFunc:  func(f string, a ...any) { l.Info(fmt.Sprintf(f, a...)) },
		ErrorFunc: func(f string, a ...any) { l.Error(nil, fmt.Sprintf(f, a...)) },
	})
	srv := xds.NewServer(ctx, c, nil)
	g := grpc.NewServer()
	secretv3.RegisterSecretDiscoveryServiceServer(g, srv)
	return &sds{cache: c}, g
}

// update publishes s as the secrets "default" and "ROOTCA".
func (x *sds) update(ctx context.Context, s *SVID) error {
	keyPEM, err := s.KeyPEM()
	if err != nil {
		return err
	}
	x.version++
	snap, err := cache.NewSnapshot(strconv.Itoa(x.version), map[resource.Type][]types.Resource{
		resource.SecretType: {makeTLSSecret(s.ChainPEM(), keyPEM), makeRootSecret(s.BundlePEM())},
	})
	if err != nil {
		return fmt.Errorf("sds snapshot: %w", err)
	}
	if err := snap.Consistent(); err != nil {
		return fmt.Errorf("sds snapshot: %w", err)
	}
	if err := x.cache.SetSnapshot(ctx, sdsNode, snap); err != nil {
		return fmt.Errorf("sds set snapshot: %w", err)
	}
	return nil
}

func makeTLSSecret(chainPEM, keyPEM []byte) *tlsv3.Secret {
	return &tlsv3.Secret{
		Name: SecretDefault,
		Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: inline(chainPEM),
			PrivateKey:       inline(keyPEM),
		}},
	}
}

func makeRootSecret(bundlePEM []byte) *tlsv3.Secret {
	return &tlsv3.Secret{
		Name: SecretRootCA,
		Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: inline(bundlePEM),
		}},
	}
}

func inline(b []byte) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b}}
}
