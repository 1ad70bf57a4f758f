package dns

import (
	"context"
	"net"
	"strings"

	mdns "github.com/miekg/dns"

	"github.com/podsphere/podsphere/lb"
)

// ServeDNS answers one query: cluster names from the current table, with
// authority; every other name from the upstreams.
func (r *Resolver) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	resp := r.answer(w, req)
	size := mdns.MinMsgSize
	if _, tcp := w.LocalAddr().(*net.TCPAddr); tcp {
		size = mdns.MaxMsgSize
	} else if opt := req.IsEdns0(); opt != nil {
		size = max(int(opt.UDPSize()), mdns.MinMsgSize)
	}
	if opt := req.IsEdns0(); opt != nil && resp.IsEdns0() == nil {
		resp.SetEdns0(uint16(min(size, 4096)), false)
	}
	// A headless Service with many endpoints may not fit: set TC so the
	// client asks again over TCP.
	resp.Truncate(size)
	if err := w.WriteMsg(resp); err != nil {
		r.log.Debug("DNS reply not sent", "err", err)
	}
}

func (r *Resolver) answer(w mdns.ResponseWriter, req *mdns.Msg) *mdns.Msg {
	if req.Opcode != mdns.OpcodeQuery {
		return new(mdns.Msg).SetRcode(req, mdns.RcodeNotImplemented)
	}
	if len(req.Question) != 1 {
		return new(mdns.Msg).SetRcodeFormatError(req)
	}
	q := req.Question[0]
	t := r.table.Load()
	if t == nil {
		// No state from vcenter yet: the cluster's names are unknown, not
		// absent (a NXDOMAIN would be cached by the VM).
		if strings.HasSuffix(strings.ToLower(q.Name), "."+lb.DefaultClusterDomain+".") {
			return new(mdns.Msg).SetRcode(req, mdns.RcodeServerFailure)
		}
		return r.forward(w, req)
	}
	if t.InDomain(q.Name) {
		return r.authoritative(w, t, req)
	}
	if fqdn := t.Namespaced(q.Name); fqdn != "" && q.Qclass == mdns.ClassINET {
		// NAME.NAMESPACE from a client that applies no search path:
		// an alias to the Service's name, as if the search had been done.
		resp := reply(req)
		resp.Authoritative = false
		resp.Answer = append(resp.Answer, &mdns.CNAME{Hdr: hdr(q.Name, mdns.TypeCNAME), Target: fqdn})
		if rr, ok := t.Lookup(fqdn); ok && q.Qtype != mdns.TypeCNAME {
			if rr.CNAME != "" {
				resp.Answer = append(resp.Answer, &mdns.CNAME{Hdr: hdr(fqdn, mdns.TypeCNAME), Target: rr.CNAME})
				r.chase(w, t, req, rr.CNAME, resp)
			} else {
				resp.Answer = append(resp.Answer, records(fqdn, q.Qtype, rr)...)
			}
		}
		return resp
	}
	if q.Qtype == mdns.TypePTR && q.Qclass == mdns.ClassINET {
		if name := t.PTR(q.Name); name != "" {
			resp := reply(req)
			resp.Answer = append(resp.Answer, &mdns.PTR{Hdr: hdr(q.Name, mdns.TypePTR), Ptr: name})
			return resp
		}
	}
	return r.forward(w, req)
}

// authoritative answers a name of the cluster domain: its records,
// NOERROR with no answer (and the zone's SOA, for negative caching) when
// it has none of the type, NXDOMAIN when it does not exist.
func (r *Resolver) authoritative(w mdns.ResponseWriter, t *lb.DNSTable, req *mdns.Msg) *mdns.Msg {
	q := req.Question[0]
	resp := reply(req)
	if q.Qclass != mdns.ClassINET && q.Qclass != mdns.ClassANY {
		resp.Rcode = mdns.RcodeRefused
		return resp
	}
	rr, ok := t.Lookup(q.Name)
	if !ok {
		resp.Rcode = mdns.RcodeNameError
		resp.Ns = []mdns.RR{soa(t)}
		return resp
	}
	if rr.CNAME != "" {
		resp.Answer = append(resp.Answer, &mdns.CNAME{Hdr: hdr(q.Name, mdns.TypeCNAME), Target: rr.CNAME})
		if q.Qtype != mdns.TypeCNAME && q.Qtype != mdns.TypeANY {
			r.chase(w, t, req, rr.CNAME, resp)
		}
		return resp
	}
	resp.Answer = append(resp.Answer, records(q.Name, q.Qtype, rr)...)
	if q.Qtype == mdns.TypeSRV || q.Qtype == mdns.TypeANY {
		// The targets' addresses, as CoreDNS adds them: one round trip.
		for _, s := range rr.SRV {
			if target, ok := t.Lookup(s.Target); ok {
				resp.Extra = append(resp.Extra, records(s.Target, mdns.TypeA, target)...)
			}
		}
	}
	if q.Qtype == mdns.TypeSOA && strings.EqualFold(q.Name, t.Domain) {
		resp.Answer = append(resp.Answer, soa(t))
	}
	if len(resp.Answer) == 0 {
		resp.Ns = []mdns.RR{soa(t)}
	}
	return resp
}

// chase follows an ExternalName's CNAME the way a recursive resolver
// does, since stub resolvers (glibc, musl) do not: from the table when the
// target is a cluster name, else from the upstreams. When no upstream
// answers, the CNAME alone is the answer: the alias itself is known.
func (r *Resolver) chase(w mdns.ResponseWriter, t *lb.DNSTable, req *mdns.Msg, target string, resp *mdns.Msg) {
	q := req.Question[0]
	if t.InDomain(target) {
		if rr, ok := t.Lookup(target); ok && rr.CNAME == "" {
			resp.Answer = append(resp.Answer, records(target, q.Qtype, rr)...)
		}
		return
	}
	up := new(mdns.Msg)
	up.SetQuestion(target, q.Qtype)
	up.RecursionDesired = true
	got := r.forward(w, up)
	if got.Rcode == mdns.RcodeSuccess {
		resp.Answer = append(resp.Answer, got.Answer...)
	}
}

// records are the rr of name that answer qtype.
func records(name string, qtype uint16, rr lb.DNSName) []mdns.RR {
	var out []mdns.RR
	if qtype == mdns.TypeA || qtype == mdns.TypeANY {
		for _, ip := range rr.A {
			out = append(out, &mdns.A{Hdr: hdr(name, mdns.TypeA), A: net.IP(ip.AsSlice())})
		}
	}
	if qtype == mdns.TypeSRV || qtype == mdns.TypeANY {
		// Equal weights: every endpoint as likely (Kubernetes' spec: 0 100 / 0 N).
		for _, s := range rr.SRV {
			out = append(out, &mdns.SRV{Hdr: hdr(name, mdns.TypeSRV), Priority: 0, Weight: uint16(100 / len(rr.SRV)), Port: uint16(s.Port), Target: s.Target})
		}
	}
	return out
}

func reply(req *mdns.Msg) *mdns.Msg {
	resp := new(mdns.Msg).SetReply(req)
	resp.Authoritative = true
	resp.RecursionAvailable = true
	return resp
}

func hdr(name string, rrtype uint16) mdns.RR_Header {
	return mdns.RR_Header{Name: name, Rrtype: rrtype, Class: mdns.ClassINET, Ttl: lb.DNSTTL}
}

// soa is the cluster zone's SOA: its minimum TTL caps how long a VM
// caches "no such name", so a Service created now is found within seconds.
func soa(t *lb.DNSTable) *mdns.SOA {
	return &mdns.SOA{Hdr: hdr(t.Domain, mdns.TypeSOA), Ns: "ns.dns." + t.Domain, Mbox: "hostmaster." + t.Domain,
		Serial: 1, Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: lb.DNSTTL}
}

// forward asks the upstreams in turn, over the transport the client used
// (and again over TCP when a UDP answer comes back truncated). SERVFAIL
// when none answers within its timeout; at once when there is none.
func (r *Resolver) forward(w mdns.ResponseWriter, req *mdns.Msg) *mdns.Msg {
	network := "udp"
	if _, tcp := w.LocalAddr().(*net.TCPAddr); tcp {
		network = "tcp"
	}
	for _, up := range r.upstreams {
		c := &mdns.Client{Net: network, Timeout: r.cfg.Timeout}
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout)
		resp, _, err := c.ExchangeContext(ctx, req, up)
		if err == nil && resp.Truncated && network == "udp" {
			c.Net = "tcp"
			resp, _, err = c.ExchangeContext(ctx, req, up)
		}
		cancel()
		if err != nil {
			r.log.Debug("DNS upstream did not answer", "upstream", up, "name", req.Question[0].Name, "err", err)
			continue
		}
		if resp.Rcode == mdns.RcodeServerFailure || resp.Rcode == mdns.RcodeRefused {
			continue // the next one may know better
		}
		resp.Id = req.Id
		return resp
	}
	return new(mdns.Msg).SetRcode(req, mdns.RcodeServerFailure)
}
