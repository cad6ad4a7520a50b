package netpol

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
)

// Range is an inclusive IPv4 address range [First, Last]. Address sets are
// kept as sorted, merged ranges: that is what an nftables interval set
// holds, and it makes ipBlock.except a plain subtraction.
type Range struct {
	First, Last uint32
}

// PrefixRange is the range a prefix covers; p must be IPv4.
func PrefixRange(p netip.Prefix) Range {
	p = p.Masked()
	first := addrUint(p.Addr())
	hostBits := 32 - p.Bits()
	last := first
	if hostBits == 32 {
		last = ^uint32(0)
	} else {
		last = first | (uint32(1)<<hostBits - 1)
	}
	return Range{First: first, Last: last}
}

// AddrRange is the one-address range of a.
func AddrRange(a netip.Addr) Range {
	u := addrUint(a)
	return Range{First: u, Last: u}
}

func addrUint(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func uintAddr(u uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], u)
	return netip.AddrFrom4(b)
}

// Contains reports whether a lies in r.
func (r Range) Contains(a netip.Addr) bool {
	u := addrUint(a)
	return r.First <= u && u <= r.Last
}

// String is nft's notation: an address, a prefix when the range is one,
// else first-last.
func (r Range) String() string {
	if r.First == r.Last {
		return uintAddr(r.First).String()
	}
	size := uint64(r.Last) - uint64(r.First) + 1
	if size&(size-1) == 0 {
		hostBits := bits.TrailingZeros64(size)
		if r.First&(uint32(size-1)) == 0 {
			return netip.PrefixFrom(uintAddr(r.First), 32-hostBits).String()
		}
	}
	return uintAddr(r.First).String() + "-" + uintAddr(r.Last).String()
}

// Ranges is a sorted list of disjoint, non-adjacent ranges.
type Ranges []Range

// MergeRanges sorts rs and merges overlapping and adjacent ranges (an
// nftables interval set rejects both).
func MergeRanges(rs []Range) Ranges {
	if len(rs) == 0 {
		return nil
	}
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b Range) int { return cmp.Compare(a.First, b.First) })
	out := Ranges{sorted[0]}
	for _, r := range sorted[1:] {
		last := &out[len(out)-1]
		if last.Last == ^uint32(0) || r.First <= last.Last+1 {
			last.Last = max(last.Last, r.Last)
			continue
		}
		out = append(out, r)
	}
	return out
}

// Subtract removes every address of cut from rs; both must be merged.
func (rs Ranges) Subtract(cut Ranges) Ranges {
	var out Ranges
	for _, r := range rs {
		pieces := []Range{r}
		for _, c := range cut {
			var next []Range
			for _, p := range pieces {
				next = append(next, subtractOne(p, c)...)
			}
			pieces = next
		}
		out = append(out, pieces...)
	}
	return out
}

func subtractOne(r, c Range) []Range {
	if c.Last < r.First || c.First > r.Last {
		return []Range{r}
	}
	var out []Range
	if c.First > r.First {
		out = append(out, Range{First: r.First, Last: c.First - 1})
	}
	if c.Last < r.Last {
		out = append(out, Range{First: c.Last + 1, Last: r.Last})
	}
	return out
}

// Contains reports whether a lies in one of the ranges.
func (rs Ranges) Contains(a netip.Addr) bool {
	u := addrUint(a)
	i, found := slices.BinarySearchFunc(rs, u, func(r Range, u uint32) int { return cmp.Compare(r.First, u) })
	if found {
		return true
	}
	return i > 0 && rs[i-1].Last >= u
}

// String lists the ranges as nft set elements: "10.0.0.0/8, 10.1.2.3".
func (rs Ranges) String() string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ", ")
}

// parseIPv4Prefix parses a NetworkPolicy CIDR strictly (netip rules: no
// leading zeros, which old Kubernetes parsers read as decimal and others as
// octal). Host bits are cleared, as the API has always interpreted them.
// ok=false with a nil error means a well-formed IPv6 prefix, which no pod
// of Weft's IPv4-only network can match.
func parseIPv4Prefix(s string) (p netip.Prefix, ok bool, err error) {
	p, err = netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, false, fmt.Errorf("malformed CIDR %q: %w", s, err)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, false, fmt.Errorf("malformed CIDR %q: IPv4-mapped IPv6 address", s)
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, false, nil
	}
	return p.Masked(), true, nil
}
