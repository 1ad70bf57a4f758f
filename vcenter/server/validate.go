package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strings"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/pools"
	"github.com/podsphere/podsphere/quota"
	"github.com/podsphere/podsphere/vcenter/placement"
)

// decodeStrict decodes a spec or status, refusing unknown fields so a typo
// in a manifest is an error instead of a silently ignored setting.
func decodeStrict(raw json.RawMessage, v any, what string) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %s: %w", what, jsonProblem(err), api.ErrInvalid)
	}
	return nil
}

// jsonProblem turns encoding/json's messages into ones that name the field.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if ok := asErr(err, &te); ok {
		return fmt.Sprintf("field %q: %s is not a valid %s", te.Field, te.Value, te.Type)
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "unknown field " + f
	}
	return msg
}

// validateObject checks an object's shape for its kind and returns the
// normalised spec (defaults filled in) re-encoded on the object.
func validateObject(o *api.Object) (api.Ref, error) {
	ref, err := api.ParsePath(o.Path)
	if err != nil {
		return ref, err
	}
	if o.Kind == "" {
		return ref, fmt.Errorf("kind is required (the path %s is a %s): %w", o.Path, ref.Kind, api.ErrInvalid)
	}
	if o.Kind != ref.Kind {
		return ref, fmt.Errorf("kind %s does not live at %s (that path is a %s): %w", o.Kind, o.Path, ref.Kind, api.ErrInvalid)
	}
	for k, v := range o.Labels {
		if err := validLabel(k, v); err != nil {
			return ref, err
		}
	}
	switch o.Kind {
	case api.KindDatacenter:
		var s api.DatacenterSpec
		return ref, decodeStrict(o.Spec, &s, "spec")
	case api.KindCluster:
		s := api.ClusterSpec{DRS: api.DRSConfig{Enabled: true, Mode: "fullyAutomated"}}
		if err := decodeStrict(o.Spec, &s, "spec"); err != nil {
			return ref, err
		}
		if err := validateCluster(&s); err != nil {
			return ref, err
		}
		o.SetSpec(s)
	case api.KindHost:
		var s api.HostSpec
		if err := decodeStrict(o.Spec, &s, "spec"); err != nil {
			return ref, err
		}
		o.SetSpec(s)
	case api.KindResourcePool:
		s := api.PoolSpec{CPU: defaultAlloc(), Mem: defaultAlloc()}
		if err := decodeStrict(o.Spec, &s, "spec"); err != nil {
			return ref, err
		}
		if err := validatePool(&s); err != nil {
			return ref, err
		}
		o.SetSpec(s)
	case api.KindVirtualMachine:
		s := api.VMSpec{CPU: defaultAlloc(), Mem: defaultAlloc(), NumCPU: 1, MemoryMB: 512}
		if err := decodeStrict(o.Spec, &s, "spec"); err != nil {
			return ref, err
		}
		if err := validateVM(ref, &s); err != nil {
			return ref, err
		}
		o.SetSpec(s)
	case api.KindEvent, api.KindTask, api.KindImage:
		return ref, fmt.Errorf("%s objects are written by vcenter, not by clients: %w", o.Kind, api.ErrInvalid)
	default:
		return ref, fmt.Errorf("unknown kind %q: %w", o.Kind, api.ErrInvalid)
	}
	return ref, nil
}

func validLabel(k, v string) error {
	if k == "" || len(k) > 63 || len(v) > 63 {
		return fmt.Errorf("label %q=%q: keys are 1-63 characters, values up to 63: %w", k, v, api.ErrInvalid)
	}
	for _, s := range []string{k, v} {
		for _, c := range s {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./", c)) {
				return fmt.Errorf("label %q=%q: character %q is not allowed: %w", k, v, c, api.ErrInvalid)
			}
		}
	}
	return nil
}

var drsModes = map[string]bool{"manual": true, "partiallyAutomated": true, "fullyAutomated": true}

func validateCluster(s *api.ClusterSpec) error {
	if s.DRS.Mode == "" {
		s.DRS.Mode = "fullyAutomated"
	}
	if !drsModes[s.DRS.Mode] {
		return fmt.Errorf("spec.drs.mode %q: want manual, partiallyAutomated or fullyAutomated: %w", s.DRS.Mode, api.ErrInvalid)
	}
	if s.HA.HostFailuresTolerated < 0 {
		return fmt.Errorf("spec.ha.hostFailuresTolerated %d is negative: %w", s.HA.HostFailuresTolerated, api.ErrInvalid)
	}
	if s.PodCIDR == "" {
		// vcenter picks one that no other cluster uses (see podCIDR).
	} else if _, n, err := net.ParseCIDR(s.PodCIDR); err != nil || n.IP.To4() == nil {
		return fmt.Errorf("spec.podCIDR %q is not an IPv4 CIDR: %w", s.PodCIDR, api.ErrInvalid)
	} else if ones, _ := n.Mask.Size(); ones > 23 {
		return fmt.Errorf("spec.podCIDR %q is too small: hosts get a /24 each, so it must be /23 or larger: %w", s.PodCIDR, api.ErrInvalid)
	}
	seen := map[string]bool{}
	for i := range s.Rules {
		// Rules name VMs and hosts; accept inventory paths too, as govc does.
		r := &s.Rules[i]
		for j, v := range r.VMs {
			r.VMs[j] = api.Base(v)
		}
		for j, h := range r.Hosts {
			r.Hosts[j] = api.Base(h)
		}
	}
	for i, r := range s.Rules {
		if err := placement.ValidateRule(toPlacementRule(r)); err != nil {
			return fmt.Errorf("spec.rules[%d]: %w", i, err)
		}
		if seen[r.Name] {
			return fmt.Errorf("spec.rules[%d]: rule %q is defined twice: %w", i, r.Name, api.ErrInvalid)
		}
		seen[r.Name] = true
	}
	return nil
}

func toPlacementRule(r api.ClusterRule) placement.Rule {
	return placement.Rule{Name: r.Name, Enabled: r.Enabled, Kind: placement.RuleKind(r.Kind),
		Mandatory: r.Mandatory, Affine: r.Affine, VMs: r.VMs, Hosts: r.Hosts}
}

func validatePool(s *api.PoolSpec) error {
	if err := pools.Allocation(s.CPU).Validate("spec.cpu"); err != nil {
		return err
	}
	if err := pools.Allocation(s.Mem).Validate("spec.mem"); err != nil {
		return err
	}
	if s.Quota != nil {
		if err := quota.Limits(*s.Quota).Validate(); err != nil {
			return fmt.Errorf("spec.quota: %w", err)
		}
	}
	return nil
}

var restartPolicies = map[string]bool{"": true, "Always": true, "OnFailure": true, "Never": true}

func validateVM(ref api.Ref, s *api.VMSpec) error {
	if s.Pool == "" {
		return fmt.Errorf("spec.pool is required (the VM's resource pool, e.g. /%s/host/CLUSTER/Resources): %w", ref.Datacenter, api.ErrInvalid)
	}
	pr, err := api.ParsePath(s.Pool)
	if err != nil {
		return fmt.Errorf("spec.pool: %w", err)
	}
	if pr.Kind != api.KindResourcePool || pr.Datacenter != ref.Datacenter {
		return fmt.Errorf("spec.pool %q is not a resource pool in datacenter %s: %w", s.Pool, ref.Datacenter, api.ErrInvalid)
	}
	if s.Host != "" {
		hr, err := api.ParsePath(s.Host)
		if err != nil {
			return fmt.Errorf("spec.host: %w", err)
		}
		if hr.Kind != api.KindHost || hr.ClusterPath() != pr.ClusterPath() {
			return fmt.Errorf("spec.host %q is not a host of the pool's cluster %s: %w", s.Host, pr.ClusterPath(), api.ErrInvalid)
		}
	}
	if s.Pinned && s.Host == "" {
		return fmt.Errorf("spec.pinned is set but spec.host is empty: name the host to pin the VM to: %w", api.ErrInvalid)
	}
	if s.NumCPU < 1 || s.NumCPU > 768 {
		return fmt.Errorf("spec.numCPU %d: want 1 to 768 vCPUs: %w", s.NumCPU, api.ErrInvalid)
	}
	if s.MemoryMB < 4 {
		return fmt.Errorf("spec.memoryMB %d: want at least 4 MB: %w", s.MemoryMB, api.ErrInvalid)
	}
	if err := pools.Allocation(s.CPU).Validate("spec.cpu"); err != nil {
		return err
	}
	if err := pools.Allocation(s.Mem).Validate("spec.mem"); err != nil {
		return err
	}
	if s.Mem.Reservation > s.MemoryMB {
		return fmt.Errorf("spec.mem.reservation %d MB is above the VM's memory size %d MB: %w", s.Mem.Reservation, s.MemoryMB, api.ErrInvalid)
	}
	switch s.PowerState {
	case "":
		s.PowerState = api.PoweredOff
	case api.PoweredOn, api.PoweredOff, api.Suspended:
	default:
		return fmt.Errorf("spec.powerState %q: want poweredOn, poweredOff or suspended: %w", s.PowerState, api.ErrInvalid)
	}
	if !restartPolicies[s.RestartPolicy] {
		return fmt.Errorf("spec.restartPolicy %q: want Always, OnFailure or Never: %w", s.RestartPolicy, api.ErrInvalid)
	}
	if p := s.HA.RestartPriority; p != "" && !contains(api.RestartPriorities, p) {
		return fmt.Errorf("spec.ha.restartPriority %q: want one of %s: %w", p, strings.Join(api.RestartPriorities, ", "), api.ErrInvalid)
	}
	if r := s.HA.IsolationResponse; r != "" && r != "powerOff" && r != "shutdown" && r != "none" {
		return fmt.Errorf("spec.ha.isolationResponse %q: want powerOff, shutdown or none: %w", r, api.ErrInvalid)
	}
	names := map[string]bool{}
	for i, c := range s.Containers {
		f := fmt.Sprintf("spec.containers[%d]", i)
		if err := api.ValidName(c.Name); err != nil {
			return fmt.Errorf("%s.name: %w", f, err)
		}
		if names[c.Name] {
			return fmt.Errorf("%s.name %q is used twice: %w", f, c.Name, api.ErrInvalid)
		}
		names[c.Name] = true
		if c.Image == "" {
			return fmt.Errorf("%s.image is required: %w", f, api.ErrInvalid)
		}
		for j, p := range c.Ports {
			if p.ContainerPort < 1 || p.ContainerPort > 65535 {
				return fmt.Errorf("%s.ports[%d].containerPort %d: want 1-65535: %w", f, j, p.ContainerPort, api.ErrInvalid)
			}
			if p.Protocol != "" && p.Protocol != "TCP" && p.Protocol != "UDP" {
				return fmt.Errorf("%s.ports[%d].protocol %q: want TCP or UDP: %w", f, j, p.Protocol, api.ErrInvalid)
			}
		}
		for j, e := range c.Env {
			if e.Name == "" || strings.ContainsAny(e.Name, "= \x00") {
				return fmt.Errorf("%s.env[%d].name %q is not a variable name: %w", f, j, e.Name, api.ErrInvalid)
			}
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// defaultAlloc is govc's default allocation: no reservation, no limit, expandable, normal shares.
func defaultAlloc() api.Allocation { return api.Allocation(pools.DefaultAllocation()) }
