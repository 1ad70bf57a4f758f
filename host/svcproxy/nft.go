package svcproxy

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/podsphere/podsphere/lb"
)

// NFTables is the nftables backend: podsphere's own table (`table ip
// podsphere`, lb.NftTable) programmed over netlink with
// github.com/google/nftables. Every sync is one netlink batch, which the
// kernel applies as one transaction: all of it or nothing, and no packet
// sees a state between the two. An agent killed mid-batch (before the
// batch's end message reaches the kernel) leaves the previous rules; an
// update carries only the changed map elements and Service chains.
type NFTables struct {
	netns   string
	shards  []*shard
	gen     *lb.NftGenerator
	last    []*lb.NftRuleset  // per shard
	shardOf map[string]uint32 // Service path -> shard
}

// NftShards is how many tables the Services are spread over (by a hash
// of their path): `podsphere`, `podsphere-1` ... `podsphere-31`, each
// with the fixed chains and maps and its Services' chains. The kernel
// validates a whole table (every chain reachable from its base chains)
// at each commit that adds a jump or a DNAT, so with one table a
// one-endpoint change among 10,000 Services cost ~200 ms; a change
// validates only the tables it touches. Measured at 10,000 Services (a
// change / a full sync): 16 tables 27 ms / 4.9 s, 32 tables 21 ms / 4.5 s,
// 64 22 ms, 128 24 ms (more tables, more per-commit work). The price: a
// new connection meets the shards' lookups in turn until one translates
// it (one hash lookup each, its first packet only: NAT happens once per
// connection), and every packet passes each table's filter base chains
// (one `ct state new` test each).
const NftShards = 32

// shard is one of the tables.
type shard struct {
	table *nftables.Table
	maps  map[string]*nftables.Set
}

// shardTable names shard i's table.
func shardTable(i int) string {
	if i == 0 {
		return lb.NftTable
	}
	return lb.NftTable + "-" + strconv.Itoa(i)
}

// isShardTable says whether name is one of podsphere's tables.
func isShardTable(name string) bool {
	if name == lb.NftTable {
		return true
	}
	n, ok := strings.CutPrefix(name, lb.NftTable+"-")
	_, err := strconv.Atoi(n)
	return ok && err == nil
}

// split is rs's Services by shard, each with the fixed chains. shardOf
// remembers each path's shard (hashing 10,000 paths was a tenth of a
// one-endpoint change's CPU); it is emptied when Services gone fill it.
func split(rs *lb.NftRuleset, shardOf map[string]uint32) []*lb.NftRuleset {
	if len(shardOf) > 2*len(rs.Services)+1024 {
		clear(shardOf)
	}
	out := make([]*lb.NftRuleset, NftShards)
	for i := range out {
		out[i] = &lb.NftRuleset{Fixed: rs.Fixed, Services: make([]*lb.NftService, 0, len(rs.Services)/NftShards*2)}
	}
	for _, ns := range rs.Services {
		i, ok := shardOf[ns.Path]
		if !ok {
			h := fnv.New32a()
			h.Write([]byte(ns.Path))
			i = h.Sum32() % NftShards
			shardOf[ns.Path] = i
		}
		out[i].Services = append(out[i].Services, ns)
	}
	return out
}

// NFTablesConfig configures the backend.
type NFTablesConfig struct {
	// NetNS is the network namespace to program, a path like
	// /run/netns/NAME ("" = the agent's own).
	NetNS string
}

// NewNFTables checks that nf_tables works in cfg.NetNS: it creates (or
// finds) podsphere's table, which is all the probe leaves behind.
func NewNFTables(cfg NFTablesConfig) (*NFTables, error) {
	b, err := openNFTables(cfg.NetNS)
	if err != nil {
		return nil, err
	}
	err = b.with(func(c *nftables.Conn) error {
		c.AddTable(b.shards[0].table)
		return c.Flush()
	})
	if err != nil {
		return nil, fmt.Errorf("service rules: nftables: %w", err)
	}
	return b, nil
}

// openNFTables is the backend without the probe (Remove needs no table).
func openNFTables(netns string) (*NFTables, error) {
	cfg := NFTablesConfig{NetNS: netns}
	b := &NFTables{netns: cfg.NetNS, gen: lb.NewNftGenerator(), shardOf: map[string]uint32{}}
	for i := range NftShards {
		sh := &shard{table: &nftables.Table{Name: shardTable(i), Family: nftables.TableFamilyIPv4}, maps: map[string]*nftables.Set{}}
		for _, m := range lb.NftMaps {
			key := nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService)
			if m.HasIP {
				key = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
			}
			sh.maps[m.Name] = &nftables.Set{Table: sh.table, Name: m.Name, IsMap: true, Concatenation: true, KeyType: key, DataType: nftables.TypeVerdict}
		}
		b.shards = append(b.shards, sh)
	}
	return b, nil
}

func (b *NFTables) Name() string { return "nftables" }

// ackBuffer is the receive buffer of the netlink socket: google/nftables
// asks an ack of every message, and a full sync of 10,000 Services is
// ~170,000 messages; a smaller buffer loses acks (ENOBUFS) though the
// transaction went through.
const ackBuffer = 512 << 20

// batchBuffer bounds the send buffer: the whole batch is one sendmsg, so
// one transaction (a full sync of 10,000 Services is ~20 MB).
const batchBuffer = 256 << 20

// with runs fn on a netlink connection into b's namespace.
func (b *NFTables) with(fn func(*nftables.Conn) error) error {
	opts := []nftables.ConnOption{nftables.AsLasting(), nftables.WithSockOptions(func(nc *netlink.Conn) error {
		raw, err := nc.SyscallConn()
		if err != nil {
			return err
		}
		var rerr, werr error
		err = raw.Control(func(fd uintptr) {
			rerr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, ackBuffer)
			werr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, batchBuffer)
		})
		if err != nil {
			return err
		}
		if rerr != nil { // not CAP_NET_ADMIN: as much as rmem_max allows
			rerr = nc.SetReadBuffer(ackBuffer)
		}
		if werr != nil {
			werr = nc.SetWriteBuffer(batchBuffer)
		}
		return errors.Join(rerr, werr)
	})}
	if b.netns != "" {
		f, err := os.Open(b.netns)
		if err != nil {
			return err
		}
		defer f.Close()
		opts = append(opts, nftables.WithNetNSFd(int(f.Fd())))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return err
	}
	// Closing the socket takes the kernel ~15 ms (measured on 6.18; it
	// waits, it does not compute): as long as making the change, so it
	// is done after the change is in, off the sync's path. The batch is
	// committed (or refused) before fn returns; the close changes nothing.
	defer func() { go c.CloseLasting() }()
	return fn(c)
}

// Sync programs st: a full sync rewrites the whole table in one batch,
// adopting what was there without a gap (the table is never deleted);
// otherwise only what changed since the last sync.
func (b *NFTables) Sync(ctx context.Context, st *lb.State, full bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rs := split(b.gen.Rules(st), b.shardOf)
	var err error
	if full || b.last == nil {
		err = b.Full(rs)
	} else {
		err = b.Update(b.last, rs)
	}
	if err != nil {
		b.last = nil
		return err
	}
	b.last = rs
	return nil
}

// Full makes the table exactly rs in one batch: every chain rs has made
// (if new) and refilled, the maps emptied and refilled, every chain and
// set rs lacks deleted.
func (b *NFTables) Full(rs []*lb.NftRuleset) error {
	// A full sync of 10,000 Services builds ~170,000 netlink messages:
	// the collector, not the kernel, was half of its time. It runs
	// seldom (start, every FullSync), so the heap may grow meanwhile.
	defer debug.SetGCPercent(debug.SetGCPercent(800))
	return b.with(func(c *nftables.Conn) error {
		chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
		if err != nil {
			return fmt.Errorf("list chains: %w", err)
		}
		for i, sh := range b.shards {
			var sets []*nftables.Set
			if slices.ContainsFunc(chains, func(ct *nftables.Chain) bool { return ct.Table.Name == sh.table.Name }) {
				if sets, err = c.GetSets(sh.table); err != nil {
					return fmt.Errorf("list sets of %s: %w", sh.table.Name, err)
				}
			}
			if err := b.full(c, sh, rs[i], chains, sets); err != nil {
				return err
			}
		}
		if err := c.Flush(); err != nil {
			return fmt.Errorf("service rules: nftables batch: %w", err)
		}
		return nil
	})
}

// full queues what makes sh's table exactly rs.
func (b *NFTables) full(c *nftables.Conn, sh *shard, rs *lb.NftRuleset, chains []*nftables.Chain, sets []*nftables.Set) error {
	{
		c.AddTable(sh.table)
		ch := lb.NftDiff(nil, rs)
		want := map[string]bool{}
		for _, w := range ch.Write {
			want[w.Name] = true
		}
		for _, ct := range chains {
			if ct.Table.Name == sh.table.Name && !want[ct.Name] {
				ch.DelChains = append(ch.DelChains, ct.Name)
			}
		}
		wantSet := map[string]bool{}
		for _, m := range lb.NftMaps {
			wantSet[m.Name] = true
		}
		for _, s := range ch.AddSets {
			wantSet[s.Name] = true
		}
		for _, s := range sets {
			if !s.Anonymous && !strings.HasPrefix(s.Name, "__") && !wantSet[s.Name] {
				ch.DelSets = append(ch.DelSets, s.Name)
			}
		}
		for _, m := range lb.NftMaps {
			if err := c.AddSet(sh.maps[m.Name], nil); err != nil {
				return err
			}
			c.FlushSet(sh.maps[m.Name])
		}
		// Every rule of the table in one message: what follows in the
		// same transaction refills them, so no packet sees the table
		// empty.
		c.FlushTable(sh.table)
		return b.apply(c, sh, ch, true)
	}
}

// Update moves the table from was to rs with only what differs.
func (b *NFTables) Update(was, rs []*lb.NftRuleset) error {
	changes := make([]*lb.NftChanges, len(rs))
	empty := true
	for i := range rs {
		changes[i] = lb.NftDiff(was[i], rs[i])
		empty = empty && changes[i].Empty()
	}
	if empty {
		return nil
	}
	return b.with(func(c *nftables.Conn) error {
		for i, ch := range changes {
			if !ch.Empty() {
				if err := b.apply(c, b.shards[i], ch, false); err != nil {
					return err
				}
			}
		}
		if err := c.Flush(); err != nil {
			return fmt.Errorf("service rules: nftables batch: %w", err)
		}
		return nil
	})
}

// apply queues ch in the order the kernel needs within one transaction
// in sh's table; flushed says every chain's rules are already flushed.
func (b *NFTables) apply(c *nftables.Conn, sh *shard, ch *lb.NftChanges, flushed bool) error {
	for _, s := range ch.AddSets {
		set := &nftables.Set{Table: sh.table, Name: s.Name, KeyType: nftables.TypeIPAddr, HasTimeout: true, Dynamic: true,
			Timeout: time.Duration(s.Timeout) * time.Second, Size: 65535}
		if err := c.AddSet(set, nil); err != nil {
			return err
		}
	}
	written := make([]*nftables.Chain, len(ch.Write))
	for i, w := range ch.Write {
		written[i] = b.chain(sh, w)
		c.AddChain(written[i])
		if !flushed {
			c.FlushChain(written[i])
		}
	}
	for _, name := range ch.DelChains {
		if !flushed {
			c.FlushChain(&nftables.Chain{Table: sh.table, Name: name})
		}
	}
	// Emptied first, so nothing they hold keeps a chain busy.
	for _, name := range ch.DelSets {
		c.FlushSet(&nftables.Set{Table: sh.table, Name: name})
	}
	for i, w := range ch.Write {
		for _, r := range w.Rules {
			exprs, err := b.exprs(r)
			if err != nil {
				return fmt.Errorf("chain %s: %s: %w", w.Name, r, err)
			}
			c.AddRule(&nftables.Rule{Table: sh.table, Chain: written[i], Exprs: exprs})
		}
	}
	if err := b.elems(sh, ch.DelElems, c.SetDeleteElements); err != nil {
		return err
	}
	if err := b.elems(sh, ch.AddElems, c.SetAddElements); err != nil {
		return err
	}
	for _, name := range ch.DelChains {
		c.DelChain(&nftables.Chain{Table: sh.table, Name: name})
	}
	for _, name := range ch.DelSets {
		c.DelSet(&nftables.Set{Table: sh.table, Name: name})
	}
	return nil
}

func (b *NFTables) chain(sh *shard, w lb.NftChain) *nftables.Chain {
	c := &nftables.Chain{Table: sh.table, Name: w.Name}
	if h := w.Hook; h != nil {
		hooks := map[string]nftables.ChainHook{"prerouting": *nftables.ChainHookPrerouting, "input": *nftables.ChainHookInput,
			"forward": *nftables.ChainHookForward, "output": *nftables.ChainHookOutput, "postrouting": *nftables.ChainHookPostrouting}
		hk, prio := hooks[h.Hook], nftables.ChainPriority(h.Priority)
		accept := nftables.ChainPolicyAccept
		c.Hooknum, c.Priority, c.Policy = &hk, &prio, &accept
		c.Type = nftables.ChainTypeFilter
		if h.Type == "nat" {
			c.Type = nftables.ChainTypeNAT
		}
	}
	return c
}

// elems queues es, grouped by map, through op (add or delete).
func (b *NFTables) elems(sh *shard, es []lb.NftElem, op func(*nftables.Set, []nftables.SetElement) error) error {
	by := map[string][]nftables.SetElement{}
	for _, e := range es {
		key, err := elemKey(e)
		if err != nil {
			return err
		}
		by[e.Map] = append(by[e.Map], nftables.SetElement{Key: key, VerdictData: verdict(e.To)})
	}
	for _, m := range lb.NftMaps {
		// A message's element list is one netlink attribute, whose length
		// is 16 bits: ~1,000 elements overflow it (and the kernel answers
		// ENOENT), so they go in chunks, all in the same batch.
		for es := by[m.Name]; len(es) > 0; {
			n := min(len(es), elemsPerMessage)
			if err := op(sh.maps[m.Name], es[:n]); err != nil {
				return err
			}
			es = es[n:]
		}
	}
	return nil
}

// elemsPerMessage keeps an element list well under 64 KB.
const elemsPerMessage = 256

// elemKey is e's key as the kernel keeps a concatenation: each part
// padded to 4 bytes.
func elemKey(e lb.NftElem) ([]byte, error) {
	var key []byte
	if e.IP != "" {
		a, err := netip.ParseAddr(e.IP)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("map %s: address %q is not IPv4", e.Map, e.IP)
		}
		ip := a.As4()
		key = append(key, ip[:]...)
	}
	p, err := protoNum(e.Proto)
	if err != nil {
		return nil, err
	}
	key = append(key, p, 0, 0, 0)
	return append(key, byte(e.Port>>8), byte(e.Port), 0, 0), nil
}

func protoNum(p string) (byte, error) {
	switch p {
	case "tcp":
		return unix.IPPROTO_TCP, nil
	case "udp":
		return unix.IPPROTO_UDP, nil
	case "sctp":
		return unix.IPPROTO_SCTP, nil
	}
	return 0, fmt.Errorf("protocol %q: want tcp, udp or sctp", p)
}

func verdict(v string) *expr.Verdict {
	kind, chain, _ := strings.Cut(v, " ")
	switch kind {
	case "jump":
		return &expr.Verdict{Kind: expr.VerdictJump, Chain: chain}
	case "goto":
		return &expr.Verdict{Kind: expr.VerdictGoto, Chain: chain}
	case "drop":
		return &expr.Verdict{Kind: expr.VerdictDrop}
	case "return":
		return &expr.Verdict{Kind: expr.VerdictReturn}
	}
	return &expr.Verdict{Kind: expr.VerdictAccept}
}

// Remove deletes podsphere's table, and so every rule it put on the host.
func (b *NFTables) Remove(ctx context.Context) error {
	err := b.with(func(c *nftables.Conn) error {
		tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
		if err != nil {
			return err
		}
		for _, t := range tables {
			if isShardTable(t.Name) {
				c.DelTable(t)
			}
		}
		return c.Flush()
	})
	if err != nil {
		return fmt.Errorf("service rules: remove nftables table: %w", err)
	}
	b.last = nil
	return nil
}

var ne = binaryutil.NativeEndian

// exprs turns r into expressions, as nft would.
func (b *NFTables) exprs(r lb.NftRule) ([]expr.Any, error) {
	var x []expr.Any
	if r.CtNew {
		x = append(x, &expr.Ct{Register: 1, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: ne.PutUint32(expr.CtStateBitNEW), Xor: ne.PutUint32(0)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ne.PutUint32(0)})
	}
	if r.SrcNet != "" {
		m, err := cidr(12, r.SrcNet, r.SrcNetNot)
		if err != nil {
			return nil, err
		}
		x = append(x, m...)
	}
	fib := func(saddr bool) {
		x = append(x, &expr.Fib{Register: 1, FlagSADDR: saddr, FlagDADDR: !saddr, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ne.PutUint32(unix.RTN_LOCAL)})
	}
	if r.SrcLocal {
		fib(true)
	}
	if r.DstLocal {
		fib(false)
	}
	if r.DstNotNet != "" {
		m, err := cidr(16, r.DstNotNet, true)
		if err != nil {
			return nil, err
		}
		x = append(x, m...)
	}
	if r.DstIP != "" {
		m, err := cidr(16, r.DstIP, false)
		if err != nil {
			return nil, err
		}
		x = append(x, m...)
	}
	if r.Proto != "" {
		p, err := protoNum(r.Proto)
		if err != nil {
			return nil, err
		}
		x = append(x, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}})
	}
	if r.DPort != 0 {
		x = append(x, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(uint16(r.DPort))})
	}
	mark := func(mask, xor uint32) []expr.Any {
		return []expr.Any{&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: ne.PutUint32(mask), Xor: ne.PutUint32(xor)}}
	}
	const masq = 0x4000
	if r.RandomMod > 0 {
		x = append(x, &expr.Numgen{Register: 1, Modulus: uint32(r.RandomMod), Type: unix.NFT_NG_RANDOM},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ne.PutUint32(0)})
	}
	if r.MarkUnset {
		x = append(x, mark(masq, 0)...)
		x = append(x, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ne.PutUint32(0)})
	}
	if r.SrcInSet != "" {
		x = append(x, saddr(), &expr.Lookup{SourceRegister: 1, SetName: r.SrcInSet})
	}
	if r.VmapIP != "" || r.VmapPort != "" {
		// The concatenation's parts in consecutive 32-bit registers
		// (8 = NFT_REG32_00 is register 1's first word).
		proto, port, name := uint32(1), uint32(9), r.VmapPort
		if r.VmapIP != "" {
			x = append(x, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4})
			proto, port, name = 9, 10, r.VmapIP
		}
		x = append(x, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: proto},
			&expr.Payload{DestRegister: port, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2})
		x = append(x, &expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: name})
	}
	if r.UpdateSet != "" {
		x = append(x, saddr(), &expr.Dynset{SrcRegKey: 1, SetName: r.UpdateSet, Operation: unix.NFT_DYNSET_OP_UPDATE})
	}
	if r.SetMark || r.ClearMark {
		if r.SetMark {
			x = append(x, mark(^uint32(masq), masq)...)
		} else {
			x = append(x, mark(^uint32(0), masq)...)
		}
		x = append(x, &expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1})
	}
	if r.Masquerade {
		x = append(x, &expr.Masq{})
	}
	if r.DNAT != "" {
		ap, err := netip.ParseAddrPort(r.DNAT)
		if err != nil || !ap.Addr().Is4() {
			return nil, fmt.Errorf("dnat to %q: not an IPv4 address and port", r.DNAT)
		}
		ip := ap.Addr().As4()
		x = append(x, &expr.Immediate{Register: 1, Data: ip[:]}, &expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(ap.Port())},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true})
	}
	if r.Redirect {
		x = append(x, &expr.Redir{})
	}
	if r.RejectTCP {
		x = append(x, &expr.Reject{Type: unix.NFT_REJECT_TCP_RST})
	}
	if r.Reject {
		x = append(x, &expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 3}) // port unreachable
	}
	if r.Verdict != "" {
		x = append(x, verdict(r.Verdict))
	}
	return x, nil
}

func saddr() expr.Any {
	return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4}
}

// cidr matches the address at offset (12 source, 16 destination) against
// prefix s (an address alone is a /32).
func cidr(offset uint32, s string, not bool) ([]expr.Any, error) {
	if !strings.Contains(s, "/") {
		s += "/32"
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return nil, fmt.Errorf("%q is not an IPv4 prefix", s)
	}
	op := expr.CmpOpEq
	if not {
		op = expr.CmpOpNeq
	}
	net := p.Masked().Addr().As4()
	x := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4}}
	if p.Bits() < 32 {
		m := ^uint32(0) << (32 - p.Bits())
		x = append(x, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.BigEndian.PutUint32(m), Xor: []byte{0, 0, 0, 0}})
	}
	return append(x, &expr.Cmp{Op: op, Register: 1, Data: net[:]}), nil
}
