// Package quota owns per-pool quotas, the namespace limits of vSphere with
// Tanzu (and Kubernetes' ResourceQuota), and the pure admission check that a
// new object fits under the quota of its pool and of every ancestor pool.
//
// No I/O: callers pass the limits and usage of each pool on the chain.
package quota

import (
	"fmt"

	"github.com/podsphere/podsphere/api"
)

// NoLimit is the value of an unset limit.
const NoLimit = -1

// Limits caps what a pool's subtree may hold. -1 means no limit; 0 means none
// allowed. It is api.QuotaLimits (same fields and JSON names) with the
// quota methods, so quota.Limits(*spec.Quota) converts directly.
type Limits api.QuotaLimits

// Unlimited is a quota with every limit unset; a namespace starts this way.
func Unlimited() Limits {
	return Limits{NoLimit, NoLimit, NoLimit, NoLimit, NoLimit, NoLimit, NoLimit, NoLimit, NoLimit}
}

// UnmarshalJSON treats an absent field as no limit, as api.QuotaLimits does:
// the zero value would mean "none allowed", which no one intends by leaving a
// field out.
func (l *Limits) UnmarshalJSON(b []byte) error {
	return (*api.QuotaLimits)(l).UnmarshalJSON(b)
}

// Usage counts what a pool's subtree holds (or what a request adds), in the
// fields of api.QuotaLimits. Unlike Limits, an absent JSON field is 0.
type Usage api.QuotaLimits

// Add sums two usages field by field.
func (u Usage) Add(o Usage) Usage {
	return Usage{
		VMs:          u.VMs + o.VMs,
		ReplicaSets:  u.ReplicaSets + o.ReplicaSets,
		Services:     u.Services + o.Services,
		VolumeClaims: u.VolumeClaims + o.VolumeClaims,
		ConfigMaps:   u.ConfigMaps + o.ConfigMaps,
		Secrets:      u.Secrets + o.Secrets,
		StorageGB:    u.StorageGB + o.StorageGB,
		CPUMHz:       u.CPUMHz + o.CPUMHz,
		MemMB:        u.MemMB + o.MemMB,
	}
}

// resource ties a display name to its unit and its fields, so the display
// order, messages, Get and Set all come from this one table.
type resource struct {
	name  string
	unit  string // appended to amounts in messages; "" for object counts
	limit func(*Limits) *int64
	used  func(*Usage) *int64
}

// table is the display order of psc quota.info, and the order Check reports
// in: object counts first, then capacity.
var table = []resource{
	{"vms", "", func(l *Limits) *int64 { return &l.VMs }, func(u *Usage) *int64 { return &u.VMs }},
	{"replicasets", "", func(l *Limits) *int64 { return &l.ReplicaSets }, func(u *Usage) *int64 { return &u.ReplicaSets }},
	{"services", "", func(l *Limits) *int64 { return &l.Services }, func(u *Usage) *int64 { return &u.Services }},
	{"volumeclaims", "", func(l *Limits) *int64 { return &l.VolumeClaims }, func(u *Usage) *int64 { return &u.VolumeClaims }},
	{"configmaps", "", func(l *Limits) *int64 { return &l.ConfigMaps }, func(u *Usage) *int64 { return &u.ConfigMaps }},
	{"secrets", "", func(l *Limits) *int64 { return &l.Secrets }, func(u *Usage) *int64 { return &u.Secrets }},
	{"storage", "GB", func(l *Limits) *int64 { return &l.StorageGB }, func(u *Usage) *int64 { return &u.StorageGB }},
	{"cpu", "MHz", func(l *Limits) *int64 { return &l.CPUMHz }, func(u *Usage) *int64 { return &u.CPUMHz }},
	{"memory", "MB", func(l *Limits) *int64 { return &l.MemMB }, func(u *Usage) *int64 { return &u.MemMB }},
}

func find(name string) (resource, bool) {
	for _, r := range table {
		if r.name == name {
			return r, true
		}
	}
	return resource{}, false
}

// Names lists the resource names in display order: vms, replicasets,
// services, volumeclaims, configmaps, secrets, storage, cpu, memory.
func Names() []string {
	names := make([]string, len(table))
	for i, r := range table {
		names[i] = r.name
	}
	return names
}

// Unit is the unit shown after amounts of a resource: GB, MHz, MB or "".
func Unit(name string) string {
	r, _ := find(name)
	return r.unit
}

// Get returns the limit for a display name; an unknown name reads as no limit.
func (l Limits) Get(name string) int64 {
	r, ok := find(name)
	if !ok {
		return NoLimit
	}
	return *r.limit(&l)
}

// Set changes the limit for a display name, for quota.set flags.
func (l *Limits) Set(name string, v int64) error {
	r, ok := find(name)
	if !ok {
		return fmt.Errorf("%w quota: unknown resource %q (one of %v)", api.ErrInvalid, name, Names())
	}
	*r.limit(l) = v
	return nil
}

// Get returns the usage for a display name; an unknown name reads as 0.
func (u Usage) Get(name string) int64 {
	r, ok := find(name)
	if !ok {
		return 0
	}
	return *r.used(&u)
}

// Validate refuses a limit below -1, naming the resource.
func (l Limits) Validate() error {
	for _, r := range table {
		if v := *r.limit(&l); v < NoLimit {
			return fmt.Errorf("%w quota: %s %d is below -1 (use -1 for no limit, 0 for none allowed)", api.ErrInvalid, r.name, v)
		}
	}
	return nil
}

// Change is a partial update for quota.set: nil fields stay as they are, so a
// JSON body carrying only {"vms": 10} changes only the VM count.
type Change struct {
	VMs          *int64 `json:"vms,omitempty"`
	ReplicaSets  *int64 `json:"replicasets,omitempty"`
	Services     *int64 `json:"services,omitempty"`
	VolumeClaims *int64 `json:"volumeclaims,omitempty"`
	ConfigMaps   *int64 `json:"configmaps,omitempty"`
	Secrets      *int64 `json:"secrets,omitempty"`
	StorageGB    *int64 `json:"storageGB,omitempty"`
	CPUMHz       *int64 `json:"cpuMHz,omitempty"`
	MemMB        *int64 `json:"memMB,omitempty"`
}

// Apply returns l with the fields set in c replaced. Validate the result.
func (l Limits) Apply(c Change) Limits {
	set := func(dst *int64, v *int64) {
		if v != nil {
			*dst = *v
		}
	}
	set(&l.VMs, c.VMs)
	set(&l.ReplicaSets, c.ReplicaSets)
	set(&l.Services, c.Services)
	set(&l.VolumeClaims, c.VolumeClaims)
	set(&l.ConfigMaps, c.ConfigMaps)
	set(&l.Secrets, c.Secrets)
	set(&l.StorageGB, c.StorageGB)
	set(&l.CPUMHz, c.CPUMHz)
	set(&l.MemMB, c.MemMB)
	return l
}

// Level is one pool on the chain from the target pool up to the root: its
// quota (Unlimited when it has none) and what its whole subtree uses now.
type Level struct {
	Pool   string
	Limits Limits
	Used   Usage
}

// Check admits request against every level, nearest pool first, because a
// pool's quota bounds everything in its subtree. Within a level resources are
// checked in Names order. Only resources the request raises are checked, so
// a pool already over a lowered quota can still take objects of other kinds
// or shrink. The first violation is returned, wrapping api.ErrQuotaExceeded:
//
//	quota exceeded in /dc1/host/c1/Resources/dev: vms 10 + 1 > 10
//	quota exceeded in /dc1/host/c1/Resources: cpu 3000 + 1000 > 3500 MHz
func Check(levels []Level, request Usage) error {
	for _, lv := range levels {
		for _, r := range table {
			limit, used, asked := *r.limit(&lv.Limits), *r.used(&lv.Used), *r.used(&request)
			// Written as asked > limit-used so huge values cannot overflow.
			if asked <= 0 || limit == NoLimit || asked <= limit-used {
				continue
			}
			unit := ""
			if r.unit != "" {
				unit = " " + r.unit
			}
			return fmt.Errorf("%w in %s: %s %d + %d > %d%s", api.ErrQuotaExceeded, lv.Pool, r.name, used, asked, limit, unit)
		}
	}
	return nil
}
