package netpol

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Kernel is where rulesets go; NFT is the real one, tests may fake it.
type Kernel interface {
	// Existing lists what the table holds (for a full sync).
	Existing() (Existing, error)
	// Apply runs a Change as one transaction: all of it or nothing.
	Apply(*Change) error
	// Intact is the cheap check between full syncs that nobody removed
	// or flushed the table: its ingress base chain has rules.
	Intact() (bool, error)
	// DropCounters reads the packets counted by each drop counter.
	DropCounters() (map[string]uint64, error)
	// Delete removes the table (uninstall); a missing table is fine.
	Delete() error
}

// elemsPerMessage bounds the elements per netlink message: a message's
// element list is one attribute, whose length is 16 bits.
const elemsPerMessage = 512

// NFT programs the table through nf_tables netlink (github.com/google/nftables).
// Every Apply is one batch, which the kernel commits atomically.
type NFT struct {
	// NetNS is a network namespace fd to work in; 0 means the caller's.
	NetNS int
}

var _ Kernel = (*NFT)(nil)

func (n *NFT) table() *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
}

// conn opens a connection whose socket buffers fit a batch of ops
// messages: the kernel answers each with an ack (rules also with an echo)
// and would drop the answers of a large batch that overflow the default
// buffer; the send buffer must hold the whole batch.
func (n *NFT) conn(ops int) (*nftables.Conn, error) {
	size := min(4<<20+ops*4096, 512<<20)
	bufs := func(c *netlink.Conn) error {
		raw, err := c.SyscallConn()
		if err != nil {
			return fmt.Errorf("netlink socket: %w", err)
		}
		var serr error
		if err := raw.Control(func(fd uintptr) {
			serr = errors.Join(
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, unix.SO_RCVBUFFORCE, size),
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, unix.SO_SNDBUFFORCE, size))
		}); err != nil {
			return fmt.Errorf("netlink socket: %w", err)
		}
		if serr != nil {
			return fmt.Errorf("size netlink socket buffers: %w", serr)
		}
		return nil
	}
	opts := []nftables.ConnOption{nftables.WithSockOptions(bufs)}
	if n.NetNS != 0 {
		opts = append(opts, nftables.WithNetNSFd(n.NetNS))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("open nftables netlink: %w", err)
	}
	return c, nil
}

// Existing lists the chains, sets and counters of the table.
func (n *NFT) Existing() (Existing, error) {
	c, err := n.conn(0)
	if err != nil {
		return Existing{}, err
	}
	var ex Existing
	if _, err := c.ListTableOfFamily(TableName, nftables.TableFamilyINet); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return ex, nil
		}
		return ex, fmt.Errorf("get table %s: %w", TableName, err)
	}
	ex.Table = true
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return ex, fmt.Errorf("list chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table.Name != TableName {
			continue
		}
		e := ExistingChain{Name: ch.Name, Base: ch.Hooknum != nil}
		if ch.Priority != nil {
			e.Priority = int(*ch.Priority)
		}
		ex.Chains = append(ex.Chains, e)
	}
	sets, err := c.GetSets(n.table())
	if err != nil {
		return ex, fmt.Errorf("list sets: %w", err)
	}
	for _, s := range sets {
		if strings.HasPrefix(s.Name, "__") {
			continue // anonymous: dies with its rule
		}
		t := AddrSet
		if s.IsMap {
			t = VerdictMap
		}
		ex.Sets = append(ex.Sets, &Set{Name: s.Name, Type: t})
	}
	objs, err := c.GetNamedObjects(n.table())
	if err != nil {
		return ex, fmt.Errorf("list objects: %w", err)
	}
	for _, o := range objs {
		if no, ok := o.(*nftables.NamedObj); ok && no.Type == nftables.ObjTypeCounter {
			ex.Counters = append(ex.Counters, no.Name)
		}
	}
	return ex, nil
}

// Apply sends the change as one batch.
func (n *NFT) Apply(ch *Change) error {
	if ch.Empty() {
		return nil
	}
	c, err := n.conn(len(ch.Ops) + ch.Elements/elemsPerMessage)
	if err != nil {
		return err
	}
	t := n.table()
	chains := map[string]*nftables.Chain{}
	chainRef := func(name string) *nftables.Chain {
		if chains[name] == nil {
			chains[name] = &nftables.Chain{Table: t, Name: name}
		}
		return chains[name]
	}
	for _, op := range ch.Ops {
		if err := n.queue(c, t, op, chainRef); err != nil {
			return err
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables transaction (%d commands): %w", len(ch.Ops), err)
	}
	return nil
}

// queue adds one op to the batch.
func (n *NFT) queue(c *nftables.Conn, t *nftables.Table, op Op, chainRef func(string) *nftables.Chain) error {
	switch op.Kind {
	case OpAddTable:
		c.AddTable(t)
	case OpAddCounter:
		c.AddObj(&nftables.CounterObj{Table: t, Name: op.Name})
	case OpDelCounter:
		c.DeleteObject(&nftables.CounterObj{Table: t, Name: op.Name})
	case OpAddSet:
		if err := c.AddSet(nftSet(t, op.Set), nil); err != nil {
			return fmt.Errorf("add set %s: %w", op.Set.Name, err)
		}
	case OpDelSet:
		c.DelSet(nftSet(t, op.Set))
	case OpFlushSet:
		c.FlushSet(nftSet(t, op.Set))
	case OpAddElements, OpDelElements:
		s, els := nftSet(t, op.Set), setElements(op.Set)
		for len(els) > 0 {
			chunk := els[:min(len(els), elemsPerMessage)]
			if len(chunk) < len(els) && !chunk[len(chunk)-1].IntervalEnd && op.Set.Type == AddrSet {
				chunk = els[:len(chunk)+1] // keep an interval's start and end together
			}
			els = els[len(chunk):]
			add := c.SetAddElements
			if op.Kind == OpDelElements {
				add = c.SetDeleteElements
			}
			if err := add(s, chunk); err != nil {
				return fmt.Errorf("elements of set %s: %w", op.Set.Name, err)
			}
		}
	case OpAddChain:
		nc := chainRef(op.Chain.Name)
		if op.Chain.Base {
			policy := nftables.ChainPolicyAccept
			nc.Type, nc.Hooknum, nc.Policy = nftables.ChainTypeFilter, nftables.ChainHookForward, &policy
			nc.Priority = nftables.ChainPriorityRef(nftables.ChainPriority(op.Chain.Priority))
		}
		c.AddChain(nc)
	case OpFlushChain:
		c.FlushChain(chainRef(op.Name))
	case OpDelChain:
		c.DelChain(chainRef(op.Name))
	case OpAddRule:
		c.AddRule(&nftables.Rule{Table: t, Chain: chainRef(op.Chain.Name), Exprs: ruleExprs(op.Rule),
			UserData: userdata.AppendString(nil, userdata.TypeComment, op.Rule.Comment)})
	default:
		return fmt.Errorf("unknown nftables op %d", op.Kind)
	}
	return nil
}

// Intact checks that the ingress base chain still has its rules.
func (n *NFT) Intact() (bool, error) {
	c, err := n.conn(0)
	if err != nil {
		return false, err
	}
	rules, err := c.GetRules(n.table(), &nftables.Chain{Table: n.table(), Name: ChainIngress})
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("list rules of chain %s: %w", ChainIngress, err)
	}
	return len(rules) == len(baseChain(Ingress).Rules), nil
}

// DropCounters reads every counter object of the table.
func (n *NFT) DropCounters() (map[string]uint64, error) {
	c, err := n.conn(0)
	if err != nil {
		return nil, err
	}
	objs, err := c.GetObjects(n.table())
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read counters: %w", err)
	}
	out := map[string]uint64{}
	for _, o := range objs {
		if co, ok := o.(*nftables.CounterObj); ok {
			out[co.Name] = co.Packets
		}
	}
	return out, nil
}

// Delete removes the table and everything in it.
func (n *NFT) Delete() error {
	ex, err := n.Existing()
	if err != nil || !ex.Table {
		return err
	}
	c, err := n.conn(1)
	if err != nil {
		return err
	}
	c.DelTable(n.table())
	if err := c.Flush(); err != nil {
		return fmt.Errorf("delete table %s: %w", TableName, err)
	}
	return nil
}
