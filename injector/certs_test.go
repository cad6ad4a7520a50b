package injector

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

var (
	t0    = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	names = ServingDNSNames("weft-injector", "weft-system")
)

func mustExecute(t *testing.T, now time.Time, b Bundle) (Bundle, CertPlan) {
	t.Helper()
	plan := PlanCerts(now, b, names)
	out, err := plan.Execute(now, b, names)
	require.NoError(t, err)
	return out, plan
}

func TestPlanCertsLifecycle(t *testing.T) {
	b, plan := mustExecute(t, t0, Bundle{})
	assert.Equal(t, CertNewCA, plan.Action)
	assert.Contains(t, plan.Reason, "no usable CA")

	keep := PlanCerts(t0, b, names)
	require.Equal(t, CertKeep, keep.Action, keep.Reason)
	// Renewal is due when a third of the (backdated) year remains.
	life := ServingLifetime + backdate
	wantRenew := t0.Add(-backdate).Add(life - life/3)
	assert.Equal(t, wantRenew, keep.RenewAt)

	assert.Equal(t, CertKeep, PlanCerts(keep.RenewAt.Add(-time.Second), b, names).Action)
	due := PlanCerts(keep.RenewAt, b, names)
	assert.Equal(t, CertRenew, due.Action)
	assert.Contains(t, due.Reason, "renewal due")

	renewed, _ := mustExecute(t, keep.RenewAt, b)
	assert.Equal(t, b.CACert, renewed.CACert, "renewal keeps the CA so caBundle stays valid")
	assert.Equal(t, b.CAKey, renewed.CAKey)
	assert.NotEqual(t, b.Cert, renewed.Cert)
	assert.Equal(t, CertKeep, PlanCerts(keep.RenewAt, renewed, names).Action)

	// The CA itself is replaced when a third of its ten years remains.
	caDue := t0.Add(-backdate).Add((CALifetime + backdate) * 2 / 3)
	assert.Equal(t, CertNewCA, PlanCerts(caDue.Add(time.Minute), renewed, names).Action)
}

func TestPlanCertsRepairsDamage(t *testing.T) {
	b, _ := mustExecute(t, t0, Bundle{})
	other, _ := mustExecute(t, t0, Bundle{})
	cases := map[string]struct {
		b    Bundle
		want CertAction
		why  string
	}{
		"CA key missing":         {Bundle{CACert: b.CACert, Cert: b.Cert, Key: b.Key}, CertNewCA, "no PEM private key"},
		"CA key from another CA": {Bundle{CACert: b.CACert, CAKey: other.CAKey, Cert: b.Cert, Key: b.Key}, CertNewCA, "does not match"},
		"leaf as CA":             {Bundle{CACert: b.Cert, CAKey: b.Key, Cert: b.Cert, Key: b.Key}, CertNewCA, "not a CA"},
		"garbage cert":           {Bundle{CACert: b.CACert, CAKey: b.CAKey, Cert: []byte("junk"), Key: b.Key}, CertRenew, "no PEM certificate"},
		"leaf key mismatch":      {Bundle{CACert: b.CACert, CAKey: b.CAKey, Cert: b.Cert, Key: other.Key}, CertRenew, "does not match"},
		"leaf from another CA":   {Bundle{CACert: b.CACert, CAKey: b.CAKey, Cert: other.Cert, Key: other.Key}, CertRenew, "not signed"},
		"intact":                 {b, CertKeep, "valid"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			p := PlanCerts(t0, c.b, names)
			assert.Equal(t, c.want, p.Action, p.Reason)
			assert.Contains(t, p.Reason, c.why)
		})
	}
	p := PlanCerts(t0, b, ServingDNSNames("weft-injector", "mesh"))
	assert.Equal(t, CertRenew, p.Action)
	assert.Contains(t, p.Reason, "names")
	p = PlanCerts(t0.Add(-time.Hour), b, names)
	assert.Equal(t, CertRenew, p.Action)
	assert.Contains(t, p.Reason, "not valid yet")
}

func TestIssuedServingCertVerifies(t *testing.T) {
	b, _ := mustExecute(t, t0, Bundle{})
	ca, err := parseKeyPair(b.CACert, b.CAKey)
	require.NoError(t, err)
	leaf, err := parseKeyPair(b.Cert, b.Key)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, n := range []string{"weft-injector.weft-system.svc", "weft-injector.weft-system.svc.cluster.local"} {
		_, err = leaf.Verify(x509.VerifyOptions{DNSName: n, Roots: pool, CurrentTime: t0,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		assert.NoError(t, err, n)
	}
	assert.Equal(t, t0.Add(CALifetime), ca.NotAfter)
	assert.Equal(t, t0.Add(ServingLifetime), leaf.NotAfter)
	assert.Equal(t, []string{"keep", "renew", "new-ca"}, []string{CertKeep.String(), CertRenew.String(), CertNewCA.String()})
}

func TestWebhooksNeedingCABundle(t *testing.T) {
	ca := []byte("ca")
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{Webhooks: []admissionregistrationv1.MutatingWebhook{
		{Name: "a.weft.dev", ClientConfig: admissionregistrationv1.WebhookClientConfig{CABundle: ca}},
		{Name: "b.weft.dev"},
		{Name: "c.weft.dev", ClientConfig: admissionregistrationv1.WebhookClientConfig{CABundle: []byte("old")}},
	}}
	assert.Equal(t, []string{"b.weft.dev", "c.weft.dev"}, WebhooksNeedingCABundle(cfg, ca))
	assert.Empty(t, WebhooksNeedingCABundle(&admissionregistrationv1.MutatingWebhookConfiguration{}, ca))
}
