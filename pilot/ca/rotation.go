package ca

import (
	"crypto/x509"
	"fmt"
	"slices"
	"time"
)

// Authority is the CA's persistent state: what signs now, which roots are
// trusted, and where a root rotation stands. Root rotation without downtime
// follows the usual three steps (as Istio's and SPIRE's do):
//
//  1. a new root is generated and only published: the bundle carries the old
//     and the new root, Next is set; leaves are still signed by the old one;
//  2. after the overlap window every workload has the two-root bundle, so the
//     new root starts signing; the old one stays in the bundle;
//  3. once every leaf the old root signed has expired (RetireAt) the old
//     root leaves the bundle.
type Authority struct {
	// Signer signs leaves.
	Signer KeyPair
	// Roots is the trust bundle: the signer's root, Next's root during
	// step 1, and retired roots until RetireAt.
	Roots []*x509.Certificate
	// Next is the self-signed root being published (step 1), with the time
	// it was added to the bundle.
	Next      *KeyPair
	NextSince time.Time
	// RetireAt is when roots other than the signer's and Next's are dropped.
	RetireAt time.Time
}

// RotationPolicy decides when a self-signed root is rotated. User-provided
// (cacerts) roots are rotated by their owner and never by this policy.
type RotationPolicy struct {
	// RenewBefore starts a rotation when the active root has less than
	// this much lifetime left.
	RenewBefore time.Duration
	// Overlap is how long the next root is published before it signs. It
	// must exceed the time for every agent to fetch the new bundle (agents
	// renew at ~50% of the leaf TTL, so one leaf TTL is enough).
	Overlap time.Duration
	// RetireAfter keeps the old root trusted after the switch: at least the
	// maximum leaf TTL, so every leaf it signed expires first.
	RetireAfter time.Duration
	// NewRoot creates the next root at the given time.
	NewRoot func(now time.Time) (KeyPair, error)
}

// Step advances the rotation to time now and reports whether the Authority
// changed (and so must be stored and republished). It never mutates a.
func (p RotationPolicy) Step(a Authority, now time.Time) (Authority, bool, error) {
	out := a
	out.Roots = slices.Clone(a.Roots)
	changed := false
	if out.Next == nil && out.Signer.Cert().NotAfter.Sub(now) <= p.RenewBefore {
		if p.NewRoot == nil {
			return a, false, fmt.Errorf("rotate root: no root generator")
		}
		next, err := p.NewRoot(now)
		if err != nil {
			return a, false, fmt.Errorf("rotate root: %w", err)
		}
		out.Next, out.NextSince = &next, now
		out.Roots = append(out.Roots, next.Cert())
		changed = true
	}
	if out.Next != nil && now.Sub(out.NextSince) >= p.Overlap {
		if retire := now.Add(p.RetireAfter); retire.After(out.RetireAt) {
			out.RetireAt = retire
		}
		out.Signer, out.Next, out.NextSince = *out.Next, nil, time.Time{}
		changed = true
	}
	keep := func(c *x509.Certificate) bool {
		if out.isCurrent(c) {
			return true
		}
		if !now.Before(c.NotAfter) {
			return false
		}
		return out.RetireAt.IsZero() || now.Before(out.RetireAt)
	}
	kept := slices.DeleteFunc(slices.Clone(out.Roots), func(c *x509.Certificate) bool { return !keep(c) })
	if len(kept) != len(out.Roots) {
		out.Roots, changed = kept, true
	}
	if !out.RetireAt.IsZero() && !now.Before(out.RetireAt) {
		out.RetireAt, changed = time.Time{}, true
	}
	return out, changed, nil
}

// isCurrent reports whether root is on the signer's chain or is Next.
func (a Authority) isCurrent(root *x509.Certificate) bool {
	if a.Next != nil && a.Next.Cert().Equal(root) {
		return true
	}
	for _, c := range a.Signer.Chain {
		if c.Equal(root) || c.CheckSignatureFrom(root) == nil && c.Issuer.String() == root.Subject.String() {
			return true
		}
	}
	return false
}
