package iptables

import "testing"

func TestErrorLine(t *testing.T) {
	for msg, want := range map[string]int{
		"iptables-restore v1.8.9 (nf_tables): Chain 'X' does not exist\nError occurred at line: 9\nTry ...":  9,
		"iptables-restore v1.8.9 (nf_tables): \nline 4: CHAIN_DEL failed (Device or resource busy): chain X": 4,
		"something else": 0,
	} {
		if got := errorLine(msg); got != want {
			t.Errorf("errorLine(%q) = %d, want %d", msg, got, want)
		}
	}
}
