// Package rootstore keeps the pilot CA's signing material in Kubernetes: a
// self-signed root generated on first start and stored in the Secret
// weft-system/weft-ca, or an operator's root/intermediate from the "cacerts"
// Secret (Istio's plug-in CA layout). It runs the root rotation policy of
// package ca and hands out the current *ca.CA; it is the Kubernetes edge
// around the pure signing core.
package rootstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/weftmesh/weft/pilot/ca"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Default names, fixed by the design (namespace weft-system).
const (
	DefaultNamespace     = "weft-system"
	DefaultSecret        = "weft-ca"
	DefaultPluggedSecret = "cacerts"
)

// Config configures a Store.
type Config struct {
	Client kubernetes.Interface
	// Namespace, Secret and PluggedSecret name the Secrets; defaults above.
	Namespace, Secret, PluggedSecret string
	// TrustDomain of the CA.
	TrustDomain spiffeid.TrustDomain
	// RootTTL is the lifetime of a generated root (ca.DefaultRootTTL).
	RootTTL time.Duration
	// Rotation is the self-signed root rotation policy; NewRoot is filled
	// in by the Store. Zero fields get defaults derived from RootTTL and
	// the CA's MaxTTL.
	Rotation ca.RotationPolicy
	// CA is the template of every CA built: TTLs, Clock, Serial. Signer,
	// Roots and TrustDomain are filled in by the Store.
	CA ca.Config
	// Resync is how often the Secret is re-read and the rotation stepped.
	Resync time.Duration
	// MeterProvider for the CA expiry gauge (global provider if nil).
	MeterProvider metric.MeterProvider
	// Leading reports whether this replica may write the self-signed root
	// (generate it, step its rotation): pilot's leader election
	// (package leader). Other replicas only read it. Nil means always, for
	// a single replica.
	Leading func() bool
}

// ErrNoRoot is Sync's error while the self-signed root does not exist yet
// and this replica does not lead: the leader is about to generate it.
var ErrNoRoot = errors.New("no self-signed root yet: waiting for the leading pilot to generate it")

// Store owns the CA state. CA() is safe for concurrent use.
type Store struct {
	cfg     Config
	current atomic.Pointer[ca.CA]
	mu      sync.Mutex
	subs    []chan struct{}
}

// New validates cfg and fills defaults; call Sync or Run to load the CA.
func New(cfg Config) (*Store, error) {
	if cfg.Client == nil {
		return nil, fmt.Errorf("rootstore: nil client")
	}
	if cfg.TrustDomain.IsZero() {
		return nil, fmt.Errorf("rootstore: empty trust domain")
	}
	cfg.Namespace = orDefault(cfg.Namespace, DefaultNamespace)
	cfg.Secret = orDefault(cfg.Secret, DefaultSecret)
	cfg.PluggedSecret = orDefault(cfg.PluggedSecret, DefaultPluggedSecret)
	if cfg.RootTTL <= 0 {
		cfg.RootTTL = ca.DefaultRootTTL
	}
	if cfg.CA.Clock == nil {
		cfg.CA.Clock = time.Now
	}
	maxLeaf := max(cfg.CA.MaxTTL, cfg.CA.DefaultTTL, ca.DefaultTTL)
	r := &cfg.Rotation
	if r.Overlap <= 0 {
		r.Overlap = maxLeaf
	}
	if r.RetireAfter <= 0 {
		r.RetireAfter = maxLeaf
	}
	if r.RenewBefore <= 0 {
		r.RenewBefore = max(cfg.RootTTL/5, 2*(r.Overlap+r.RetireAfter))
	}
	if r.RenewBefore >= cfg.RootTTL {
		return nil, fmt.Errorf("rootstore: rotation starts %s before expiry but roots live only %s", r.RenewBefore, cfg.RootTTL)
	}
	r.NewRoot = func(now time.Time) (ca.KeyPair, error) {
		return ca.NewRoot(ca.RootConfig{TrustDomain: cfg.TrustDomain, TTL: cfg.RootTTL, Clock: func() time.Time { return now }})
	}
	if cfg.Resync <= 0 {
		cfg.Resync = time.Minute
	}
	if cfg.MeterProvider == nil {
		cfg.MeterProvider = otel.GetMeterProvider()
	}
	s := &Store{cfg: cfg}
	if err := s.registerMetrics(); err != nil {
		return nil, err
	}
	return s, nil
}

// CA is the CA that signs now, or nil before the first successful Sync.
func (s *Store) CA() *ca.CA { return s.current.Load() }

// BundlePEM is the current trust bundle in PEM, the content of the
// weft-root-cert ConfigMap; nil before the first Sync.
func (s *Store) BundlePEM() []byte {
	c := s.CA()
	if c == nil {
		return nil
	}
	return ca.EncodeCerts(c.Roots())
}

// Subscribe returns a channel that receives (without blocking the Store)
// after every change of the CA, so the root-cert publisher and the CA
// server's serving certificate follow rotations.
func (s *Store) Subscribe() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{}, 1)
	s.subs = append(s.subs, ch)
	return ch
}

// Run syncs now and then every Resync until ctx is done. A failed sync is
// logged and retried sooner; the last good CA keeps signing meanwhile.
func (s *Store) Run(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx).WithName("rootstore")
	for {
		wait := s.cfg.Resync
		if err := s.Sync(ctx); err != nil {
			log.Error(err, "sync CA secret")
			wait = min(wait, 5*time.Second)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// Sync loads the plugged or self-signed authority (the leader creating
// the latter if missing), lets the leader step a self-signed root's
// rotation and store it, and swaps in the resulting CA.
func (s *Store) Sync(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx).WithName("rootstore")
	auth, sec, err := s.load(ctx)
	if err != nil {
		return err
	}
	plugged := sec == nil
	if !plugged && s.leading() {
		if auth, err = s.rotate(ctx, sec, auth); err != nil {
			return err
		}
	}
	cfg := s.cfg.CA
	cfg.TrustDomain, cfg.Signer, cfg.Roots = s.cfg.TrustDomain, auth.Signer, auth.Roots
	next, err := ca.New(cfg)
	if err != nil {
		return fmt.Errorf("build CA from secret: %w", err)
	}
	prev := s.current.Load()
	if prev != nil && prev.SignerCert().Equal(next.SignerCert()) && bytes.Equal(ca.EncodeCerts(prev.Roots()), ca.EncodeCerts(next.Roots())) {
		return nil
	}
	s.current.Store(next)
	log.Info("CA updated", "plugged", plugged, "signer", next.SignerCert().Subject.String(),
		"notAfter", next.NotAfter(), "roots", len(next.Roots()))
	s.notify()
	return nil
}

func (s *Store) leading() bool { return s.cfg.Leading == nil || s.cfg.Leading() }

// Both roots are read by name: the operator's cacerts and pilot's own weft-ca.
// +kubebuilder:rbac:groups="",namespace=weft-system,resources=secrets,resourceNames=weft-ca;cacerts,verbs=get

// load returns the plugged authority (and a nil Secret) or the self-signed
// one with the Secret it was read from, whose resourceVersion a rotation
// writes against.
func (s *Store) load(ctx context.Context) (ca.Authority, *corev1.Secret, error) {
	secrets := s.cfg.Client.CoreV1().Secrets(s.cfg.Namespace)
	sec, err := secrets.Get(ctx, s.cfg.PluggedSecret, metav1.GetOptions{})
	switch {
	case err == nil:
		a, err := ca.UnmarshalAuthority(sec.Data)
		if err != nil {
			return ca.Authority{}, nil, fmt.Errorf("secret %s/%s: %w", s.cfg.Namespace, s.cfg.PluggedSecret, err)
		}
		return a, nil, nil
	case !apierrors.IsNotFound(err):
		return ca.Authority{}, nil, fmt.Errorf("get secret %s/%s: %w", s.cfg.Namespace, s.cfg.PluggedSecret, err)
	}
	sec, err = secrets.Get(ctx, s.cfg.Secret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if !s.leading() {
			return ca.Authority{}, nil, fmt.Errorf("secret %s/%s: %w", s.cfg.Namespace, s.cfg.Secret, ErrNoRoot)
		}
		sec, err = s.create(ctx)
	}
	if err != nil {
		return ca.Authority{}, nil, fmt.Errorf("get secret %s/%s: %w", s.cfg.Namespace, s.cfg.Secret, err)
	}
	a, err := ca.UnmarshalAuthority(sec.Data)
	if err != nil {
		return ca.Authority{}, nil, fmt.Errorf("secret %s/%s: %w", s.cfg.Namespace, s.cfg.Secret, err)
	}
	return a, sec, nil
}

// +kubebuilder:rbac:groups="",namespace=weft-system,resources=secrets,verbs=create

// create generates the self-signed root on first start. When another pilot
// replica wins the race, its Secret is used.
func (s *Store) create(ctx context.Context) (*corev1.Secret, error) {
	a, err := ca.NewSelfSigned(ca.RootConfig{TrustDomain: s.cfg.TrustDomain, TTL: s.cfg.RootTTL, Clock: s.cfg.CA.Clock})
	if err != nil {
		return nil, err
	}
	data, err := a.MarshalData()
	if err != nil {
		return nil, err
	}
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: s.cfg.Secret, Namespace: s.cfg.Namespace,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "weft-pilot"}},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
	created, err := s.cfg.Client.CoreV1().Secrets(s.cfg.Namespace).Create(ctx, sec, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return s.cfg.Client.CoreV1().Secrets(s.cfg.Namespace).Get(ctx, s.cfg.Secret, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("create secret %s/%s: %w", s.cfg.Namespace, s.cfg.Secret, err)
	}
	logr.FromContextOrDiscard(ctx).WithName("rootstore").Info("generated self-signed root",
		"secret", s.cfg.Namespace+"/"+s.cfg.Secret, "notAfter", a.Signer.Cert().NotAfter)
	return created, nil
}

// +kubebuilder:rbac:groups="",namespace=weft-system,resources=secrets,resourceNames=weft-ca,verbs=update

// rotate steps the rotation policy and writes a changed authority back
// over sec, the Secret a was read from, with optimistic concurrency: when
// the Secret changed since (a pilot that led before this one was still
// finishing a step), the update fails with a conflict and the next Sync
// starts from what is stored, so no step is computed from a stale root.
func (s *Store) rotate(ctx context.Context, sec *corev1.Secret, a ca.Authority) (ca.Authority, error) {
	next, changed, err := s.cfg.Rotation.Step(a, s.cfg.CA.Clock())
	if err != nil || !changed {
		return a, err
	}
	data, err := next.MarshalData()
	if err != nil {
		return a, err
	}
	secrets := s.cfg.Client.CoreV1().Secrets(s.cfg.Namespace)
	sec = sec.DeepCopy()
	sec.Data = data
	if _, err := secrets.Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		return a, fmt.Errorf("update secret %s/%s: %w", s.cfg.Namespace, s.cfg.Secret, err)
	}
	logr.FromContextOrDiscard(ctx).WithName("rootstore").Info("root rotation step",
		"next", next.Next != nil, "signer", next.Signer.Cert().Subject.String(), "roots", len(next.Roots),
		"retireAt", next.RetireAt)
	return next, nil
}

func (s *Store) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (s *Store) registerMetrics() error {
	m := s.cfg.MeterProvider.Meter("github.com/weftmesh/weft/pilot/ca/rootstore")
	g, err := m.Float64ObservableGauge("weft_ca_cert_expiry_timestamp",
		metric.WithUnit("s"),
		metric.WithDescription("NotAfter of the CA's signing certificate (the earliest on its chain to a root), in Unix seconds."))
	if err != nil {
		return fmt.Errorf("create CA expiry gauge: %w", err)
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if c := s.CA(); c != nil {
			o.ObserveFloat64(g, float64(c.NotAfter().Unix()))
		}
		return nil
	}, g)
	if err != nil {
		return fmt.Errorf("register CA expiry gauge: %w", err)
	}
	return nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
