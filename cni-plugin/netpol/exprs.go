package netpol

import (
	"encoding/binary"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Registers: the 16-byte register 1 overlaps the 4-byte registers 8..11,
// which nftables uses for concatenations (NFT_REG32_00 and on).
const (
	reg1    = 1
	reg32At = 8
)

// IPv4 header offsets and the destination port, which TCP, UDP and SCTP
// all keep at offset 2 of their header.
const (
	offSaddr = 12
	offDaddr = 16
	offDport = 2
)

// ruleExprs encodes a Rule as the expressions nft generates for its
// String form, including the meta nfproto ipv4 dependency nft adds before
// IPv4 header matches in an inet table.
func ruleExprs(r *Rule) []expr.Any {
	var e []expr.Any
	if r.Established {
		zero := []byte{0, 0, 0, 0}
		e = append(e,
			&expr.Ct{Register: reg1, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
				Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED), Xor: zero},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: zero})
	}
	if r.IPv4 || r.Addr.IsValid() || r.AddrSet != "" || r.PortSet != "" || r.VMap != "" {
		e = append(e, &expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{unix.NFPROTO_IPV4}})
	}
	if r.Addr.IsValid() {
		a := r.Addr.As4()
		e = append(e, addrLoad(r.AddrSide, reg1), &expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: a[:]})
	}
	if r.AddrSet != "" {
		e = append(e, addrLoad(r.AddrSide, reg1), &expr.Lookup{SourceRegister: reg1, SetName: r.AddrSet})
	}
	if r.Protocol != 0 {
		e = append(e, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{byte(r.Protocol)}})
		switch {
		case r.Port != 0 && r.EndPort > r.Port:
			e = append(e, dportLoad(reg1),
				&expr.Range{Op: expr.CmpOpEq, Register: reg1, FromData: be16(r.Port), ToData: be16(r.EndPort)})
		case r.Port != 0:
			e = append(e, dportLoad(reg1), &expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: be16(r.Port)})
		}
	}
	if r.PortSet != "" {
		e = append(e, addrLoad(Dst, reg32At),
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg32At + 1},
			dportLoad(reg32At+2),
			&expr.Lookup{SourceRegister: reg32At, SetName: r.PortSet})
	}
	if r.VMap != "" {
		e = append(e, addrLoad(r.VMapSide, reg1),
			&expr.Lookup{SourceRegister: reg1, DestRegister: unix.NFT_REG_VERDICT, IsDestRegSet: true, SetName: r.VMap})
	}
	if r.Counter != "" {
		e = append(e, &expr.Objref{Type: int(nftables.ObjTypeCounter), Name: r.Counter})
	}
	switch r.Verdict {
	case Accept:
		e = append(e, &expr.Verdict{Kind: expr.VerdictAccept})
	case Drop:
		e = append(e, &expr.Verdict{Kind: expr.VerdictDrop})
	case JumpTo:
		e = append(e, &expr.Verdict{Kind: expr.VerdictJump, Chain: r.Target})
	}
	return e
}

func addrLoad(side Addr, reg uint32) *expr.Payload {
	off := uint32(offSaddr)
	if side == Dst {
		off = offDaddr
	}
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4}
}

func dportLoad(reg uint32) *expr.Payload {
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: offDport, Len: 2}
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// nftSet is the library's view of a set: its key (and data) type.
func nftSet(t *nftables.Table, s *Set) *nftables.Set {
	out := &nftables.Set{Table: t, Name: s.Name, KeyType: nftables.TypeIPAddr, KeyByteOrder: binaryutil.BigEndian}
	switch s.Type {
	case AddrSet:
		out.Interval = true
	case PortSet:
		out.Concatenation = true
		out.KeyType = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
	case VerdictMap:
		out.IsMap = true
		out.DataType = nftables.TypeVerdict
	}
	return out
}

// setElements encodes a set's elements. An interval is a start element
// and an interval-end element one past its last address (none when the
// interval reaches 255.255.255.255). Concatenated keys pad each field to
// 4 bytes, as the registers they are compared with.
func setElements(s *Set) []nftables.SetElement {
	var out []nftables.SetElement
	for _, r := range s.Addrs {
		out = append(out, nftables.SetElement{Key: be32(r.First)})
		if r.Last != ^uint32(0) {
			out = append(out, nftables.SetElement{Key: be32(r.Last + 1), IntervalEnd: true})
		}
	}
	for _, p := range s.Ports {
		a := p.Addr.As4()
		key := append(a[:], byte(p.Protocol), 0, 0, 0)
		key = append(key, be16(p.Port)...)
		out = append(out, nftables.SetElement{Key: append(key, 0, 0)})
	}
	for _, j := range s.Jumps {
		a := j.Addr.As4()
		out = append(out, nftables.SetElement{Key: a[:], VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: j.Chain}})
	}
	return out
}
