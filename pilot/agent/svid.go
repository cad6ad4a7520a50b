package agent

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/weftmesh/weft/pilot/ca"
)

// SVID is the workload's current X.509-SVID with its key and trust bundle.
// It is immutable once published.
type SVID struct {
	ID spiffeid.ID
	// Chain is the leaf followed by intermediates.
	Chain []*x509.Certificate
	// Key is the leaf's private key; it exists only in this process.
	Key crypto.Signer
	// Bundle holds every root of the trust domain (two during rotation).
	Bundle []*x509.Certificate
	// ReceivedAt is when the agent got it; renewal is scheduled from here
	// because the CA backdates NotBefore for clock skew.
	ReceivedAt time.Time
}

// Leaf is the SVID certificate.
func (s *SVID) Leaf() *x509.Certificate { return s.Chain[0] }

// ChainPEM is the certificate chain in PEM, as Envoy's SDS expects.
func (s *SVID) ChainPEM() []byte { return ca.EncodeCerts(s.Chain) }

// BundlePEM is the trust bundle in PEM.
func (s *SVID) BundlePEM() []byte { return ca.EncodeCerts(s.Bundle) }

// KeyPEM is the private key in PKCS#8 PEM.
func (s *SVID) KeyPEM() ([]byte, error) { return ca.EncodeKey(s.Key) }

// rawConcat concatenates DER certificates, the Workload API's encoding.
func rawConcat(certs []*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		b.Write(c.Raw)
	}
	return b.Bytes()
}

// svidStore publishes the current SVID to the SDS and Workload API servers.
// Readers wait on the returned channel, which is closed at the next update.
type svidStore struct {
	mu      sync.Mutex
	cur     *SVID
	changed chan struct{}
	ready   chan struct{}
}

func newSVIDStore() *svidStore {
	return &svidStore{changed: make(chan struct{}), ready: make(chan struct{})}
}

func (s *svidStore) set(v *SVID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		close(s.ready)
	}
	s.cur = v
	close(s.changed)
	s.changed = make(chan struct{})
}

// get returns the current SVID (nil before the first) and a channel closed
// when it is replaced.
func (s *svidStore) get() (*SVID, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur, s.changed
}
