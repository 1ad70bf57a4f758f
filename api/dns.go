package api

import (
	"net/netip"
	"strconv"
	"strings"
)

// A VM's DNS policy (spec.dnsPolicy), as Kubernetes' Pod dnsPolicy: where
// its resolv.conf comes from.
const (
	// DNSClusterFirst (the default): the host's resolver, which answers
	// the cluster's Service names and forwards the rest, with the search
	// path NS.svc.DOMAIN svc.DOMAIN DOMAIN. Kubernetes' ClusterFirstWithHostNet
	// means the same here (a VM never shares its host's network).
	DNSClusterFirst = "ClusterFirst"
	// DNSDefault: the host's own resolv.conf, no Service names.
	DNSDefault = "Default"
	// DNSNone: only what spec.dnsConfig says.
	DNSNone = "None"
)

// DNSPolicies lists the policies in the order messages name them.
var DNSPolicies = []string{DNSClusterFirst, DNSDefault, DNSNone}

// Kubernetes' limits on dnsConfig, which resolvers impose too (glibc reads
// three nameservers; musl and glibc cap the search list).
const (
	MaxDNSNameservers = 3
	MaxDNSSearches    = 32
	MaxDNSSearchChars = 2048
)

// PodDNSConfig is Kubernetes' Pod dnsConfig: added to what the policy
// gives (nameservers and searches appended, options overriding by name),
// or all of it under DNSNone.
type PodDNSConfig struct {
	Nameservers []string             `json:"nameservers,omitempty"`
	Searches    []string             `json:"searches,omitempty"`
	Options     []PodDNSConfigOption `json:"options,omitempty"`
}

// PodDNSConfigOption is one resolv.conf option (ndots with value 2, edns0).
type PodDNSConfigOption struct {
	Name  string  `json:"name"`
	Value *string `json:"value,omitempty"`
}

// ValidateDNS checks a VM's dnsPolicy and dnsConfig; field is the spec's
// ("spec").
func ValidateDNS(field, policy string, cfg *PodDNSConfig) error {
	switch policy {
	case "", DNSClusterFirst, DNSDefault:
	case DNSNone:
		if cfg == nil || len(cfg.Nameservers) == 0 {
			return invalid(field+".dnsConfig.nameservers", "dnsPolicy None needs at least one nameserver in dnsConfig")
		}
	default:
		return invalid(field+".dnsPolicy", "%q is not one of %s", policy, strings.Join(DNSPolicies, ", "))
	}
	if cfg == nil {
		return nil
	}
	f := field + ".dnsConfig"
	if len(cfg.Nameservers) > MaxDNSNameservers {
		return invalid(f+".nameservers", "%d given, at most %d", len(cfg.Nameservers), MaxDNSNameservers)
	}
	for i, ns := range cfg.Nameservers {
		if _, err := netip.ParseAddr(ns); err != nil {
			return invalid(f+".nameservers["+strconv.Itoa(i)+"]", "%q is not an IP address", ns)
		}
	}
	if len(cfg.Searches) > MaxDNSSearches {
		return invalid(f+".searches", "%d given, at most %d", len(cfg.Searches), MaxDNSSearches)
	}
	total := 0
	for i, s := range cfg.Searches {
		total += len(s) + 1
		if !dnsSubdomain(strings.TrimSuffix(s, ".")) {
			return invalid(f+".searches["+strconv.Itoa(i)+"]", "%q is not a DNS name (lowercase labels of letters, digits and '-', dot-separated)", s)
		}
	}
	if total > MaxDNSSearchChars {
		return invalid(f+".searches", "%d characters, at most %d", total, MaxDNSSearchChars)
	}
	for i, o := range cfg.Options {
		if o.Name == "" || strings.ContainsAny(o.Name, " \t\n:") {
			return invalid(f+".options["+strconv.Itoa(i)+"].name", "%q is not a resolv.conf option name", o.Name)
		}
		if o.Value != nil && strings.ContainsAny(*o.Value, " \t\n") {
			return invalid(f+".options["+strconv.Itoa(i)+"].value", "%q has white space", *o.Value)
		}
	}
	return nil
}

// dnsSubdomain is RFC 1123's subdomain: labels, dot-separated, at most 253.
func dnsSubdomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if len(l) > 63 || !dnsLabel.MatchString(l) {
			return false
		}
	}
	return true
}
