package ca

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkSign measures the pure signing path (CSR checks, ECDSA P-256
// signature, x509svid verification) without any network.
//
//	go test -run '^$' -bench . -benchtime 2000x ./pilot/ca/
func BenchmarkSign(b *testing.B) {
	c, _ := newSelfSignedCA(b, &fakeClock{now: time.Now()}, 0)
	csr := csrForID(b, newKey(b), idA)
	b.Run("sequential", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			start := time.Now()
			if _, err := c.Sign(Request{CSR: csr, ID: idA}); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		report(b, lat)
	})
	b.Run("parallel", func(b *testing.B) {
		var mu sync.Mutex
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			var mine []time.Duration
			for pb.Next() {
				start := time.Now()
				if _, err := c.Sign(Request{CSR: csr, ID: idA}); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
		report(b, lat)
	})
}

func report(b *testing.B, lat []time.Duration) {
	b.Helper()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "signs/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
