// Package ipam is Weft's IP address management for pod networks: a pure
// allocation core (Range, State) and a file-backed Store that many plugin
// processes can share safely. It implements the IP reservation part of a CNI
// plugin's ADD, DEL and GC (CNI SPEC, section 2 "CNI operations").
package ipam

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// ErrExhausted says a range has no free address left. Errors wrapping it read
// "range 10.244.1.0/24 exhausted", so callers can both test for it and print it.
var ErrExhausted = errors.New("exhausted")

// Range is the set of addresses a node hands out to its pods: the node's
// podCIDR minus the network address, the gateway (the bridge's address) and
// the broadcast address. Only IPv4 is supported: Kubernetes gives every node
// one IPv4 podCIDR in Weft's single-stack clusters.
type Range struct {
	Subnet  netip.Prefix
	Gateway netip.Addr
}

// NewRange validates subnet and gateway. A zero gateway means the first
// usable address of the subnet, the convention kindnet and the reference
// bridge plugin follow, so pods can always find their router at .1.
func NewRange(subnet netip.Prefix, gateway netip.Addr) (Range, error) {
	if !subnet.IsValid() || !subnet.Addr().Is4() {
		return Range{}, fmt.Errorf("subnet %s: only IPv4 subnets are supported", subnet)
	}
	if subnet != subnet.Masked() {
		return Range{}, fmt.Errorf("subnet %s is not a network address (did you mean %s?)", subnet, subnet.Masked())
	}
	if subnet.Bits() > 30 {
		return Range{}, fmt.Errorf("subnet %s too small: need at least a /30", subnet)
	}
	r := Range{Subnet: subnet, Gateway: gateway}
	if !gateway.IsValid() {
		r.Gateway = r.first()
		return r, nil
	}
	if !gateway.Is4() || !subnet.Contains(gateway) || gateway == subnet.Addr() || gateway == r.broadcast() {
		return Range{}, fmt.Errorf("gateway %s is not a usable address of subnet %s", gateway, subnet)
	}
	return r, nil
}

// Contains reports whether a can be given to a pod.
func (r Range) Contains(a netip.Addr) bool {
	return a.Is4() && r.Subnet.Contains(a) && a != r.Gateway && a != r.Subnet.Addr() && a != r.broadcast()
}

// Size is the number of addresses that can be given to pods.
func (r Range) Size() int { return int(u32(r.broadcast())-u32(r.Subnet.Addr())) - 2 }

// GatewayPrefix is the gateway with the subnet's prefix length: the address
// the node's bridge carries.
func (r Range) GatewayPrefix() netip.Prefix { return netip.PrefixFrom(r.Gateway, r.Subnet.Bits()) }

func (r Range) first() netip.Addr { return r.Subnet.Addr().Next() }

func (r Range) last() netip.Addr { return r.broadcast().Prev() }

func (r Range) broadcast() netip.Addr {
	host := uint32(1)<<(32-r.Subnet.Bits()) - 1
	return fromU32(u32(r.Subnet.Addr()) | host)
}

// next is the address after a in round-robin order, wrapping from the last
// usable address to the first.
func (r Range) next(a netip.Addr) netip.Addr {
	if !r.Subnet.Contains(a) || a == r.last() || a == r.broadcast() {
		return r.first()
	}
	return a.Next()
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func fromU32(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}
