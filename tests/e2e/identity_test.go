//go:build e2e

package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	cav1 "github.com/weftmesh/weft/api/ca/v1"
	"github.com/weftmesh/weft/pilot/ca"
	"github.com/weftmesh/weft/pilot/caserver"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// TestIdentityTokenReview runs pilot's CA service in-process with the real
// TokenReview authenticator against the cluster's API server: a pod-bound
// projected token (audience weft-ca) buys exactly its own SPIFFE identity,
// and stops working once the pod is deleted.
func TestIdentityTokenReview(t *testing.T) {
	cs := clients(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := newNamespace(t, "weft-identity", nil)
	for _, sa := range []string{"a", "b"} {
		_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx,
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-a"},
		Spec: corev1.PodSpec{
			ServiceAccountName:            "a",
			TerminationGracePeriodSeconds: new(int64),
			Containers: []corev1.Container{{
				Name: "pause", Image: "weft.local/pause:dev", ImagePullPolicy: corev1.PullNever,
			}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	tokenA := podToken(ctx, t, cs, ns, "a", pod, caserver.DefaultAudience)
	tokenOtherAud := podToken(ctx, t, cs, ns, "a", pod, "not-weft-ca")

	authn := &caserver.TokenAuthenticator{Client: cs}
	caller, err := authn.Authenticate(ctx, tokenA)
	require.NoError(t, err)
	assert.Equal(t, caserver.Caller{Namespace: ns, ServiceAccount: "a", PodName: "pod-a", PodUID: string(pod.UID),
		Expiry: caller.Expiry}, caller)
	require.NoError(t, authn.CheckBinding(ctx, caller))

	conn, td := startIdentityCA(ctx, t, cs)
	idA := spiffeid.RequireFromSegments(td, "ns", ns, "sa", "a")
	idB := spiffeid.RequireFromSegments(td, "ns", ns, "sa", "b")

	// The right identity is accepted and the SVID verifies.
	resp, err := requestSVID(ctx, t, conn, tokenA, idA)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(resp.CertChainDer[0])
	require.NoError(t, err)
	assert.Equal(t, idA.String(), leaf.URIs[0].String())

	// Another ServiceAccount's identity is refused.
	_, err = requestSVID(ctx, t, conn, tokenA, idB)
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	assert.Contains(t, status.Convert(err).Message(), string(caserver.ReasonSANMismatch))

	// A token for another audience is refused by the API server.
	_, err = requestSVID(ctx, t, conn, tokenOtherAud, idA)
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)

	// Deleting the pod kills its token.
	require.NoError(t, cs.CoreV1().Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}))
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true,
		func(ctx context.Context) (bool, error) {
			_, err := cs.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		}))
	// The API server caches successful token authentications (10s by
	// default), so right after the deletion TokenReview may still accept
	// the token: the CA's live pod check is what refuses it at once.
	_, err = requestSVID(ctx, t, conn, tokenA, idA)
	require.Error(t, err)
	assert.Contains(t, []codes.Code{codes.Unauthenticated, codes.PermissionDenied}, status.Code(err), "%v", err)
	assert.ErrorContains(t, authn.CheckBinding(ctx, caller), string(caserver.ReasonPodNotFound))
	require.Eventually(t, func() bool {
		_, err := authn.Authenticate(ctx, tokenA)
		return err != nil
	}, time.Minute, time.Second, "the API server stops accepting a token bound to a deleted pod")
}

// podToken asks the TokenRequest API for a token of sa bound to pod.
func podToken(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, sa string, pod *corev1.Pod, aud string) string {
	t.Helper()
	exp := int64(600)
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{
			Audiences:         []string{aud},
			ExpirationSeconds: &exp,
			BoundObjectRef:    &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return tr.Status.Token
}

// startIdentityCA serves the CA service on loopback TLS with the real
// authenticator (no auth cache, so every call is a TokenReview).
func startIdentityCA(ctx context.Context, t *testing.T, cs kubernetes.Interface) (*grpc.ClientConn, spiffeid.TrustDomain) {
	t.Helper()
	td := spiffeid.RequireTrustDomainFromString("cluster.local")
	auth, err := ca.NewSelfSigned(ca.RootConfig{TrustDomain: td})
	require.NoError(t, err)
	authority, err := ca.New(ca.Config{TrustDomain: td, Signer: auth.Signer, Roots: auth.Roots})
	require.NoError(t, err)
	src := staticAuthority{authority}
	srv, err := caserver.New(caserver.Config{CA: src, Authenticator: &caserver.TokenAuthenticator{Client: cs},
		Rate: rate.Inf, AuthCacheTTL: -1})
	require.NoError(t, err)
	g := caserver.NewGRPCServer(srv, &caserver.ServingCert{CA: src, DNSNames: caserver.ServingNames("", "cluster.local")})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	serveCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- caserver.Serve(serveCtx, g, lis) }()
	t.Cleanup(func() { stop(); require.NoError(t, <-done) })

	pool := x509.NewCertPool()
	for _, r := range authority.Roots() {
		pool.AddCert(r)
	}
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: pool, ServerName: caserver.ServingNames("", "cluster.local")[0], MinVersion: tls.VersionTLS12,
	})))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, conn.Close()) })
	return conn, td
}

type staticAuthority struct{ c *ca.CA }

func (s staticAuthority) CA() *ca.CA { return s.c }

// requestSVID sends a CSR for id with token, as weft-agent does, and
// verifies a returned SVID against the returned bundle.
func requestSVID(ctx context.Context, t *testing.T, conn *grpc.ClientConn, token string, id spiffeid.ID) (*cav1.CreateCertificateResponse, error) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{id.URL()}}, key)
	require.NoError(t, err)
	callCtx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	resp, err := cav1.NewCertificateServiceClient(conn).CreateCertificate(callCtx, &cav1.CreateCertificateRequest{CsrDer: csr})
	if err != nil {
		return nil, err
	}
	chain, err := x509.ParseCertificates(concat(resp.CertChainDer))
	require.NoError(t, err)
	roots, err := x509.ParseCertificates(concat(resp.TrustBundleDer))
	require.NoError(t, err)
	got, _, err := x509svid.Verify(chain, bundleOf(id.TrustDomain(), roots))
	require.NoError(t, err)
	require.Equal(t, id, got)
	return resp, nil
}

func concat(ders [][]byte) []byte {
	var out []byte
	for _, d := range ders {
		out = append(out, d...)
	}
	return out
}

func bundleOf(td spiffeid.TrustDomain, roots []*x509.Certificate) *x509bundle.Bundle {
	return x509bundle.FromX509Authorities(td, roots)
}
