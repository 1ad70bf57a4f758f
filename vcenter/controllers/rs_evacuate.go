package controllers

import (
	"fmt"
	"sort"
	"time"

	"github.com/podsphere/podsphere/api"
)

// retirement is a member to retire and why (its event says it).
type retirement struct {
	m   member
	why string
}

// splitLeaving separates the powered-on members on hosts entering (or in)
// maintenance mode from the others.
func splitLeaving(active []member) (stay, leaving []member) {
	for _, m := range active {
		if m.host == api.HostMaintenance && m.spec.PowerState == api.PoweredOn {
			leaving = append(leaving, m)
		} else {
			stay = append(stay, m)
		}
	}
	return stay, leaving
}

// evacuation moves a set's members off hosts entering maintenance without
// ever lowering its available members below what it has (at most its
// replicas): a leaving member that is available retires only once another
// member, elsewhere, is available in its place; one that is not available
// retires at once. Replacements are created one beyond the replicas at a
// time (surge by one), placed by DRS, which never picks a host in
// maintenance. It returns the members to retire and how many to create.
func evacuation(key string, spec api.ReplicaSetSpec, stay, leaving []member, now time.Time) ([]retirement, int) {
	avail := 0
	for _, m := range stay {
		if m.available(now, spec.MinReadySeconds) {
			avail++
		}
	}
	leaving = append([]member(nil), leaving...)
	sort.SliceStable(leaving, func(i, j int) bool {
		return !leaving[i].available(now, spec.MinReadySeconds) && leaving[j].available(now, spec.MinReadySeconds)
	})
	for _, m := range leaving {
		if m.available(now, spec.MinReadySeconds) {
			avail++
		}
	}
	var out []retirement
	n := len(stay) + len(leaving)
	for _, m := range leaving {
		after := avail
		if m.available(now, spec.MinReadySeconds) {
			after--
		}
		if after < min(spec.Replicas, avail) {
			break // its replacement is not available yet
		}
		out = append(out, retirement{m, fmt.Sprintf("host %s is entering maintenance mode: %s keeps %d available members on other hosts",
			api.Base(m.spec.Host), api.Base(key), after)})
		avail = after
		n--
	}
	if extra := len(stay) - spec.Replicas; extra > 0 {
		for _, m := range surplus(stay, extra) {
			out = append(out, retirement{m, fmt.Sprintf("%s scaled down to %d replicas", api.Base(key), spec.Replicas)})
			n--
		}
	}
	create := min(spec.Replicas-len(stay), spec.Replicas+1-n)
	return out, max(create, 0)
}

// maintenanceFlipped says whether a host's maintenance wish changed.
func maintenanceFlipped(old, new *api.Object) bool {
	var a, b api.HostSpec
	_ = old.DecodeSpec(&a)
	_ = new.DecodeSpec(&b)
	return a.Maintenance != b.Maintenance
}
