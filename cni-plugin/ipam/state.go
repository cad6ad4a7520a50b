package ipam

import (
	"fmt"
	"net/netip"
	"slices"
)

// Attachment identifies who holds an address. (ContainerID, IfName) is the
// CNI attachment key (CNI SPEC, section 3 "Attachment Parameters"); Netns is
// the CNI_NETNS path seen at ADD, kept so leaked addresses of deleted sandboxes
// can be found without the runtime's help.
type Attachment struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifName"`
	Netns       string `json:"netns,omitempty"`
}

// State is the allocation table of one network on one node. Its methods are
// pure: the Store loads it, lets a caller change it under a lock and saves it.
type State struct {
	// Last is the most recently allocated address; the next allocation
	// starts after it (round robin, as host-local does) so a released
	// address is not handed to the next pod while stale ARP entries and
	// conntrack state for it may still be around.
	Last        netip.Addr                `json:"last,omitzero"`
	Allocations map[netip.Addr]Attachment `json:"allocations"`
}

// Lookup returns the address held by an attachment.
func (s *State) Lookup(containerID, ifName string) (netip.Addr, bool) {
	for ip, a := range s.Allocations {
		if a.ContainerID == containerID && a.IfName == ifName {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// Allocate gives a an address from r. If the attachment already holds an
// address of r (an ADD retried after a crash), that address is returned with
// fresh=false so a failing caller knows not to release what it did not take.
func (s *State) Allocate(r Range, a Attachment) (ip netip.Addr, fresh bool, err error) {
	if s.Allocations == nil {
		s.Allocations = map[netip.Addr]Attachment{}
	}
	if held, ok := s.Lookup(a.ContainerID, a.IfName); ok {
		if r.Contains(held) {
			return held, false, nil
		}
		delete(s.Allocations, held) // left over from an older podCIDR
	}
	candidate := s.Last
	for range r.Size() + 1 { // +1: the walk passes the gateway once
		candidate = r.next(candidate)
		if candidate == r.Gateway {
			continue
		}
		if _, used := s.Allocations[candidate]; !used {
			s.Allocations[candidate] = a
			s.Last = candidate
			return candidate, true, nil
		}
	}
	return netip.Addr{}, false, fmt.Errorf("range %s %w", r.Subnet, ErrExhausted)
}

// Release frees every address held by (containerID, ifName) and returns them.
// Releasing an attachment that holds nothing is not an error: CNI DEL must be
// idempotent (CNI SPEC, section 2, DEL).
func (s *State) Release(containerID, ifName string) []netip.Addr {
	return s.Retain(func(_ netip.Addr, a Attachment) bool {
		return a.ContainerID != containerID || a.IfName != ifName
	})
}

// Retain keeps the allocations keep accepts, frees the others and returns the
// freed addresses in order. It is the core of both GC flavours.
func (s *State) Retain(keep func(netip.Addr, Attachment) bool) []netip.Addr {
	var freed []netip.Addr
	for ip, a := range s.Allocations {
		if !keep(ip, a) {
			freed = append(freed, ip)
		}
	}
	for _, ip := range freed {
		delete(s.Allocations, ip)
	}
	slices.SortFunc(freed, netip.Addr.Compare)
	return freed
}

// Free is the number of addresses of r nobody holds.
func (s *State) Free(r Range) int {
	used := 0
	for ip := range s.Allocations {
		if r.Contains(ip) {
			used++
		}
	}
	return r.Size() - used
}
