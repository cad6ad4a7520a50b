package injector

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

func freePort(t *testing.T) int {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := lis.Addr().(*net.TCPAddr).Port
	require.NoError(t, lis.Close())
	return port
}

// TestWebhookServerOverTLS runs the real controller-runtime webhook server
// on loopback with the certificates CertSync wrote, verifies it the way the
// API server does (caBundle + Service DNS name), and checks that a rotated
// serving certificate is picked up without a restart.
func TestWebhookServerOverTLS(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kube := fake.NewClientBuilder().WithObjects(webhookConfig()).Build()
	certs := newTestCertSync(t, kube, &clock{now: time.Now()})
	_, err := certs.Sync(ctx)
	require.NoError(t, err)
	first := observe(t, kube, certs)

	ns, pod := readCase(t, "testdata/in/plain.yaml")
	h := newTestHandler(t, HandlerConfig{Namespaces: fakeReader(ns)})
	port := freePort(t)
	srv := webhook.NewServer(webhook.Options{Host: "127.0.0.1", Port: port, CertDir: certs.cfg.CertDir})
	srv.Register(InjectPath, &admission.Webhook{Handler: h})
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()

	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(first.caBundles[0]))
	tlsCfg := &tls.Config{RootCAs: roots, ServerName: "weft-injector.weft-system.svc", MinVersion: tls.VersionTLS12}
	httpc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	url := "https://127.0.0.1:" + strconv.Itoa(port) + InjectPath

	req := podRequest(t, pod, ns.Name)
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  &req.AdmissionRequest,
	}
	body, err := json.Marshal(review)
	require.NoError(t, err)
	var resp *http.Response
	require.Eventually(t, func() bool {
		resp, err = httpc.Post(url, "application/json", bytes.NewReader(body))
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "webhook server did not come up: %v", err)
	var out admissionv1.AdmissionReview
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	require.NoError(t, resp.Body.Close())
	require.NotNil(t, out.Response)
	assert.Equal(t, review.Request.UID, out.Response.UID)
	assert.True(t, out.Response.Allowed)
	require.NotNil(t, out.Response.PatchType)
	assert.Contains(t, string(out.Response.Patch), "weft-sidecar")

	// Rotate (the stored leaf is lost, so a new one is issued now, from the
	// same CA): the server must present it, valid under the unchanged
	// caBundle, without a restart.
	var sec corev1.Secret
	require.NoError(t, kube.Get(ctx, types.NamespacedName{Namespace: "weft-system", Name: "weft-injector-tls"}, &sec))
	delete(sec.Data, SecretCert)
	require.NoError(t, kube.Update(ctx, &sec))
	_, err = certs.Sync(ctx)
	require.NoError(t, err)
	renewed := observe(t, kube, certs)
	require.NotEqual(t, first.fileCert, renewed.fileCert)
	require.Equal(t, first.caBundles, renewed.caBundles)
	wantLeaf, err := parseCert(renewed.fileCert)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port), tlsCfg)
		if err != nil {
			return false
		}
		defer func() { assert.NoError(t, conn.Close()) }()
		return conn.ConnectionState().PeerCertificates[0].Equal(wantLeaf)
	}, 20*time.Second, 100*time.Millisecond, "rotated certificate not served")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(70 * time.Second):
		t.Fatal("webhook server did not stop")
	}
}
