package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/pilot/ca"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

const wantID = "spiffe://cluster.local/ns/default/sa/sa-a"

func TestSDSServesSVIDAndRotatesBeforeExpiry(t *testing.T) {
	c := startCA(t)
	cfg := c.agentConfig(t, shortDir(t))
	cfg.CertTTL = 4 * time.Second
	a, _ := runAgent(t, cfg)

	sds := dialSDS(t, a.cfg.SDSSocket, SecretDefault, SecretRootCA)
	first := sds.next(t)
	require.Contains(t, first, SecretDefault)
	require.Contains(t, first, SecretRootCA)
	leaf := leafOf(t, first[SecretDefault])
	assert.Equal(t, wantID, leaf.URIs[0].String())
	_, err := tls.X509KeyPair(first[SecretDefault].GetTlsCertificate().GetCertificateChain().GetInlineBytes(),
		first[SecretDefault].GetTlsCertificate().GetPrivateKey().GetInlineBytes())
	require.NoError(t, err, "chain and key form a pair Envoy can load")
	roots, err := ca.ParseCerts(first[SecretRootCA].GetValidationContext().GetTrustedCa().GetInlineBytes())
	require.NoError(t, err)
	assert.True(t, roots[0].Equal(c.ca.Roots()[0]))

	// Renewal at ~50% of 4s pushes a new certificate on the open stream.
	second := sds.next(t)
	now := time.Now()
	leaf2 := leafOf(t, second[SecretDefault])
	assert.NotEqual(t, leaf.SerialNumber, leaf2.SerialNumber)
	assert.True(t, now.Before(leaf.NotAfter), "pushed before the old one expired")
	assert.Eventually(t, func() bool { return a.Current().Leaf().Equal(leaf2) }, time.Second, time.Millisecond,
		"the agent's current SVID is the one pushed")
}

func TestEnvoyStyleStreamPerSecret(t *testing.T) {
	c := startCA(t)
	a, _ := runAgent(t, c.agentConfig(t, shortDir(t)))
	// Envoy opens one subscription per secret, possibly before the SVID exists.
	def := dialSDS(t, a.cfg.SDSSocket, SecretDefault)
	root := dialSDS(t, a.cfg.SDSSocket, SecretRootCA)
	assert.Contains(t, def.next(t), SecretDefault)
	assert.Contains(t, root.next(t), SecretRootCA)
}

func TestRestartFetchesAgain(t *testing.T) {
	c := startCA(t)
	dir := shortDir(t)
	a1, stop := runAgent(t, c.agentConfig(t, dir))
	serial1 := leafOf(t, dialSDS(t, a1.cfg.SDSSocket, SecretDefault).next(t)[SecretDefault]).SerialNumber
	stop()

	a2, _ := runAgent(t, c.agentConfig(t, dir))
	got := dialSDS(t, a2.cfg.SDSSocket, SecretDefault).next(t)
	serial2 := leafOf(t, got[SecretDefault]).SerialNumber
	assert.NotEqual(t, serial1, serial2, "a restarted agent holds no state: new key, new SVID")
}

func TestRetriesWithBackoffUntilCAAnswers(t *testing.T) {
	c := startCA(t)
	c.auth.failNext = 3
	reader := sdkmetric.NewManualReader()
	cfg := c.agentConfig(t, shortDir(t))
	cfg.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	a, _ := runAgent(t, cfg)
	select {
	case <-a.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("agent never became ready")
	}
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	got := map[string]float64{}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			for _, dp := range d.DataPoints {
				r, _ := dp.Attributes.Value("result")
				got[m.Name+"/"+r.AsString()] = float64(dp.Value)
			}
		case metricdata.Gauge[float64]:
			got[m.Name] = d.DataPoints[0].Value
		}
	}
	assert.Equal(t, 3.0, got["weft_agent_svid_fetches/error"])
	assert.Equal(t, 1.0, got["weft_agent_svid_fetches/ok"])
	assert.Equal(t, float64(a.Current().Leaf().NotAfter.Unix()), got["weft_agent_svid_expiry_timestamp"])
}

func TestWorkloadAPIClientGetsSVID(t *testing.T) {
	c := startCA(t)
	a, _ := runAgent(t, c.agentConfig(t, shortDir(t)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr := workloadapi.WithAddr("unix://" + a.cfg.WorkloadSocket)

	svid, err := workloadapi.FetchX509SVID(ctx, addr)
	require.NoError(t, err)
	assert.Equal(t, wantID, svid.ID.String())
	bundles, err := workloadapi.FetchX509Bundles(ctx, addr)
	require.NoError(t, err)
	b, err := bundles.GetX509BundleForTrustDomain(td)
	require.NoError(t, err)
	assert.True(t, b.X509Authorities()[0].Equal(c.ca.Roots()[0]))

	// The X509Source (what applications use for mTLS) works too.
	src, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(addr))
	require.NoError(t, err)
	defer func() { require.NoError(t, src.Close()) }()
	got, err := src.GetX509SVID()
	require.NoError(t, err)
	assert.Equal(t, wantID, got.ID.String())
}

func TestWorkloadAPIRequiresSecurityHeader(t *testing.T) {
	c := startCA(t)
	a, _ := runAgent(t, c.agentConfig(t, shortDir(t)))
	conn, err := grpc.NewClient("unix://"+a.cfg.WorkloadSocket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer func() { require.NoError(t, conn.Close()) }()
	stream, err := workload.NewSpiffeWorkloadAPIClient(conn).FetchX509SVID(context.Background(), &workload.X509SVIDRequest{})
	require.NoError(t, err)
	_, err = stream.Recv()
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
}

func TestRenewalSchedule(t *testing.T) {
	recv := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &SVID{ReceivedAt: recv, Chain: []*x509.Certificate{{NotAfter: recv.Add(24 * time.Hour)}}}
	assert.Equal(t, recv.Add(12*time.Hour), renewAt(s, 0.5, 0.1, func() float64 { return 0.5 }))
	assert.Equal(t, recv.Add(time.Duration(float64(12*time.Hour)*0.9)), renewAt(s, 0.5, 0.1, func() float64 { return 0 }))
	assert.True(t, renewAt(s, 0.5, 0.1, func() float64 { return 0.999 }).Before(recv.Add(13*time.Hour+12*time.Minute)))

	half := func() float64 { return 0 }
	assert.Equal(t, 500*time.Millisecond, backoff(0, time.Second, 30*time.Second, half))
	assert.Equal(t, 4*time.Second, backoff(3, time.Second, 30*time.Second, half))
	assert.Equal(t, 15*time.Second, backoff(10, time.Second, 30*time.Second, half), "capped")
	assert.InDelta(t, float64(30*time.Second), float64(backoff(10, time.Second, 30*time.Second, func() float64 { return 0.9999 })), float64(10*time.Millisecond))
}

func TestIDFromToken(t *testing.T) {
	id, err := idFromToken(td, fakeJWT("shop", "web"))
	require.NoError(t, err)
	assert.Equal(t, "spiffe://cluster.local/ns/shop/sa/web", id.String())
	for _, bad := range []string{"nope", "a.b.c", fakeJWT("Shop", "web")} {
		_, err := idFromToken(td, bad)
		assert.Error(t, err, bad)
	}
}
