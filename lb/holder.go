package lb

import (
	"cmp"
	"slices"
)

// Which host answers for each load balancer address of a cluster: the
// address's holder, the one host that answers ARP for it on the hosts'
// network and takes its traffic in.

// HolderHost is a host of the cluster as the holder choice sees it.
type HolderHost struct {
	Path string
	// Healthy: connected and not in (or entering) maintenance mode. A host
	// HA declared failed or isolated, or that stopped responding, is not.
	Healthy bool
	// Why it is not healthy, for the event of a move ("failed",
	// "entering maintenance mode").
	Reason string
}

// Move is one address whose holder changes.
type Move struct {
	IP       string
	From, To string // host paths; From "" for a first holder, To "" when no host is healthy
	// Why is why From stopped holding it ("" for a first holder).
	Why string
}

// Holders decides the holder of every address (sorted by address) given
// the current holders (address -> host path, "" or missing for none) and
// the cluster's hosts. It is sticky: a healthy holder keeps its address,
// so a move never breaks the connections of an address whose host is
// fine. The others go, in address order, to the healthy host holding the
// fewest addresses (ties by path), which spreads the addresses over the
// hosts. With no healthy host an address has no holder: a sick host must
// not go on answering for it. It returns the holder of each address and
// the moves, in address order.
func Holders(addresses []string, current map[string]string, hosts []HolderHost) (map[string]string, []Move) {
	byPath := map[string]HolderHost{}
	load := map[string]int{}
	for _, h := range hosts {
		byPath[h.Path] = h
		if h.Healthy {
			load[h.Path] = 0
		}
	}
	out := make(map[string]string, len(addresses))
	var orphans []string
	for _, ip := range addresses {
		h := current[ip]
		if _, ok := load[h]; ok && h != "" {
			out[ip] = h
			load[h]++
			continue
		}
		orphans = append(orphans, ip)
	}
	healthy := make([]string, 0, len(load))
	for p := range load {
		healthy = append(healthy, p)
	}
	slices.Sort(healthy)
	var moves []Move
	for _, ip := range orphans {
		to := ""
		if len(healthy) > 0 {
			to = slices.MinFunc(healthy, func(a, b string) int {
				return cmp.Or(cmp.Compare(load[a], load[b]), cmp.Compare(a, b))
			})
			load[to]++
		}
		out[ip] = to
		from := current[ip]
		if from == to {
			continue // no host then, none now
		}
		why := ""
		if from != "" {
			why = "no longer in the cluster"
			if h, ok := byPath[from]; ok {
				why = h.Reason
			}
		}
		moves = append(moves, Move{IP: ip, From: from, To: to, Why: why})
	}
	return out, moves
}
