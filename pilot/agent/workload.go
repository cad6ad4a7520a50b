package agent

import (
	"crypto/x509"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// workloadAPI implements the X.509 part of the SPIFFE Workload API
// (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE_Workload_API.md)
// for the pod's single identity; JWT-SVIDs are not offered (Unimplemented).
type workloadAPI struct {
	workload.UnimplementedSpiffeWorkloadAPIServer
	store *svidStore
}

func newWorkloadServer(store *svidStore) *grpc.Server {
	g := grpc.NewServer()
	workload.RegisterSpiffeWorkloadAPIServer(g, &workloadAPI{store: store})
	return g
}

// checkHeader enforces the spec's "workload.spiffe.io: true" request
// metadata, which keeps browsers and SSRF-style proxies out.
func checkHeader(md metadata.MD) error {
	if v := md.Get("workload.spiffe.io"); len(v) != 1 || v[0] != "true" {
		return status.Error(codes.InvalidArgument, "security header missing from request")
	}
	return nil
}

// FetchX509SVID streams the SVID now and after every rotation.
func (w *workloadAPI) FetchX509SVID(_ *workload.X509SVIDRequest, stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	return w.stream(stream, func(s *SVID) error {
		key, err := x509.MarshalPKCS8PrivateKey(s.Key)
		if err != nil {
			return status.Errorf(codes.Internal, "marshal key: %v", err)
		}
		return stream.Send(&workload.X509SVIDResponse{Svids: []*workload.X509SVID{{
			SpiffeId:    s.ID.String(),
			X509Svid:    rawConcat(s.Chain),
			X509SvidKey: key,
			Bundle:      rawConcat(s.Bundle),
		}}})
	})
}

// FetchX509Bundles streams the trust domain's bundle now and on change.
func (w *workloadAPI) FetchX509Bundles(_ *workload.X509BundlesRequest, stream grpc.ServerStreamingServer[workload.X509BundlesResponse]) error {
	return w.stream(stream, func(s *SVID) error {
		return stream.Send(&workload.X509BundlesResponse{Bundles: map[string][]byte{
			s.ID.TrustDomain().IDString(): rawConcat(s.Bundle),
		}})
	})
}

// stream waits for the first SVID, sends it, then sends every update until
// the client goes away.
func (w *workloadAPI) stream(ss grpc.ServerStream, send func(*SVID) error) error {
	md, _ := metadata.FromIncomingContext(ss.Context())
	if err := checkHeader(md); err != nil {
		return err
	}
	for {
		cur, changed := w.store.get()
		if cur != nil {
			if err := send(cur); err != nil {
				return fmt.Errorf("send: %w", err)
			}
		}
		select {
		case <-ss.Context().Done():
			return nil
		case <-changed:
		}
	}
}
