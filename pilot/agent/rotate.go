package agent

import (
	"crypto/rand"
	"encoding/binary"
	"time"
)

// renewAt is when s should be renewed: RenewFraction of the remaining
// lifetime at receipt, ± Jitter of that, so a fleet started together
// spreads its renewals.
func renewAt(s *SVID, fraction, jitter float64, rnd func() float64) time.Time {
	life := s.Leaf().NotAfter.Sub(s.ReceivedAt)
	f := fraction * (1 + jitter*(2*rnd()-1))
	return s.ReceivedAt.Add(time.Duration(float64(life) * f))
}

// backoff returns the wait before retry attempt n (0-based): exponential
// from min, capped at max, with "equal jitter" (half fixed, half random).
func backoff(n int, minD, maxD time.Duration, rnd func() float64) time.Duration {
	d := minD
	for i := 0; i < n && d < maxD; i++ {
		d *= 2
	}
	d = min(d, maxD)
	return d/2 + time.Duration(rnd()*float64(d/2))
}

// randFloat is a uniform [0,1) from crypto/rand, so jitter is not
// correlated across pods seeded alike.
func randFloat() float64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0.5
	}
	return float64(binary.BigEndian.Uint64(b[:])>>11) / (1 << 53)
}
