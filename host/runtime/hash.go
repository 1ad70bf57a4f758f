package runtime

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/podsphere/podsphere/api"
)

// SpecHash is a short, stable fingerprint of the part of a VM's spec that
// its containers are built from: NumCPU, MemoryMB, the CPU and memory
// reservations and limits, the containers (with their probes, pull policy,
// user and read-only flag), the init containers, the restart policy, the
// termination grace period, the hostname and the DNS policy and config. ID and
// Path are left out (they never change for a VM), and so are the
// allocations' shares and expandable flags, which only vcenter's admission
// control reads. Drivers record it when they create a VM and report it in
// VMState.SpecHash; the agent recreates a VM whose recorded hash differs
// from its desired spec's.
//
// The hash is the sha256 of canonical JSON, first 16 hex digits. Zero
// values are dropped before hashing (null, "", 0, false, empty lists and
// objects, at any depth except as list elements), so nil and empty slices
// hash alike and a field added to api.Container later does not change the
// hash of specs that leave it unset: upgrading the agent recreates nothing.
// Pointer fields whose zero means something (runAsUser 0 is root, not the
// image's user; a grace period of 0 is not the default) hash as set.
func SpecHash(spec VMSpec) string {
	type alloc struct {
		Reservation int64 `json:"reservation"`
		Limit       int64 `json:"limit"`
	}
	v := struct {
		NumCPU         int         `json:"numCPU"`
		MemoryMB       int64       `json:"memoryMB"`
		CPU            alloc       `json:"cpu"`
		Mem            alloc       `json:"mem"`
		Containers     interface{} `json:"containers"`
		RestartPolicy  string      `json:"restartPolicy"`
		InitContainers interface{} `json:"initContainers"`
		Grace          *int64      `json:"terminationGracePeriodSeconds,omitempty"`
		Hostname       string      `json:"hostname"`
		DNSPolicy      string      `json:"dnsPolicy"`
		DNSConfig      interface{} `json:"dnsConfig"`
	}{
		NumCPU:         spec.NumCPU,
		MemoryMB:       spec.MemoryMB,
		CPU:            alloc{spec.CPU.Reservation, spec.CPU.Limit},
		Mem:            alloc{spec.Mem.Reservation, spec.Mem.Limit},
		Containers:     spec.Containers,
		RestartPolicy:  spec.RestartPolicy,
		InitContainers: spec.InitContainers,
		Grace:          spec.TerminationGracePeriodSeconds,
		Hostname:       spec.Hostname,
		DNSPolicy:      spec.DNSPolicy,
		DNSConfig:      spec.DNSConfig,
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return "" // cannot happen with these types; "" reads as unknown
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // int64s survive exactly
	var tree interface{}
	if err := dec.Decode(&tree); err != nil {
		return ""
	}
	markSet(tree)
	tree, _ = prune(tree)
	// encoding/json writes object keys sorted: the output is canonical.
	canon, err := json.Marshal(tree)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:8])
}

// ShapeHash is SpecHash of the spec without its size and allocations
// (NumCPU, MemoryMB and the CPU and memory reservations and limits): two
// specs of one shape differ only in what a Resizer changes on a running VM,
// so a change of SpecHash alone, ShapeHash kept, needs no restart.
func ShapeHash(spec VMSpec) string {
	spec.NumCPU, spec.MemoryMB = 0, 0
	spec.CPU, spec.Mem = api.Allocation{}, api.Allocation{}
	return SpecHash(spec)
}

// setPointers are the JSON keys of pointer fields whose zero value is
// meaningful: present in the JSON means set, whatever the number.
var setPointers = map[string]bool{"runAsUser": true, "terminationGracePeriodSeconds": true}

// markSet turns the numbers of setPointers keys into strings, which prune
// keeps even for 0.
func markSet(v interface{}) {
	switch x := v.(type) {
	case []interface{}:
		for _, e := range x {
			markSet(e)
		}
	case map[string]interface{}:
		for k, e := range x {
			if n, ok := e.(json.Number); ok && setPointers[k] {
				x[k] = "set:" + n.String()
				continue
			}
			markSet(e)
		}
	}
}

// prune drops zero values from a decoded JSON tree and says whether what is
// left of v is itself zero. List elements are kept (their position counts).
func prune(v interface{}) (interface{}, bool) {
	switch x := v.(type) {
	case nil:
		return nil, true
	case bool:
		return x, !x
	case string:
		return x, x == ""
	case json.Number:
		f, err := x.Float64()
		return x, err == nil && f == 0
	case []interface{}:
		for i := range x {
			x[i], _ = prune(x[i])
		}
		return x, len(x) == 0
	case map[string]interface{}:
		for k, e := range x {
			p, zero := prune(e)
			if zero {
				delete(x, k)
			} else {
				x[k] = p
			}
		}
		return x, len(x) == 0
	default:
		return x, false
	}
}
