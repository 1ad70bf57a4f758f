package server

import (
	"errors"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
)

// Cluster groups and depends rules as any client may write them: vcenter
// refuses bad shapes naming the field, and normalises VM paths to member
// names.
func TestClusterGroupsAndRulesValidated(t *testing.T) {
	e := startVCenter(t, Config{})
	e.inventory(t, &api.ClusterSpec{HA: api.HAConfig{Enabled: true}})
	e.joinHost(t, "esx-01", 10000, 65536)
	e.mustCreate(t, vm("a", rootRP, 0, api.PoweredOff))
	e.mustCreate(t, vm("b", rootRP, 0, api.PoweredOff))
	groups := []api.ClusterGroup{{Name: "ga", Kind: "vm", VMs: []string{dc + "/vm/a"}}, {Name: "gb", Kind: "vm", VMs: []string{"b"}},
		{Name: "hosts", Kind: "host", Hosts: []string{cluster + "/esx-01"}}}
	change := func(fn func(*api.ClusterSpec)) error {
		o, err := e.admin.Get(ctxT(t), cluster)
		if err != nil {
			t.Fatal(err)
		}
		var s api.ClusterSpec
		_ = o.DecodeSpec(&s)
		fn(&s)
		o.SetSpec(s)
		_, err = e.admin.Update(ctxT(t), o)
		return err
	}
	if err := change(func(s *api.ClusterSpec) { s.Groups = groups }); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		edit func(*api.ClusterSpec)
		is   error
		want string
	}{
		{func(s *api.ClusterSpec) { s.Groups[0].Kind = "pod" }, api.ErrInvalid, `spec.groups[0].kind "pod": want vm or host`},
		{func(s *api.ClusterSpec) { s.Groups[1].Name = "ga" }, api.ErrInvalid, `spec.groups[1]: group "ga" is defined twice`},
		{func(s *api.ClusterSpec) { s.Groups[0].Hosts = []string{"esx-01"} }, api.ErrInvalid, `VM group "ga" lists hosts`},
		{func(s *api.ClusterSpec) { s.Groups[0].VMs = []string{"a", "a"} }, api.ErrInvalid, `a is listed twice in group "ga"`},
		{func(s *api.ClusterSpec) { s.Groups[0].VMs = append(s.Groups[0].VMs, "zz") }, api.ErrNotFound, `VM group "ga": VM zz does not exist`},
		{func(s *api.ClusterSpec) { s.Groups[2].Hosts = []string{"esx-09"} }, api.ErrNotFound, `host group "hosts": host esx-09 is not in cluster`},
		{func(s *api.ClusterSpec) {
			s.Rules = []api.ClusterRule{{Name: "r", Kind: "depends", Enabled: true, VMGroup: "ga", DependsOnVMGroup: "hosts"}}
		}, api.ErrInvalid, `depends rule "r" uses "hosts", a host group`},
		{func(s *api.ClusterSpec) {
			s.Rules = []api.ClusterRule{{Name: "r", Kind: "depends", Enabled: true, VMGroup: "ga"}}
		}, api.ErrInvalid, `depends rule "r" needs vmGroup and dependsOnVmGroup`},
		{func(s *api.ClusterSpec) {
			s.Rules = []api.ClusterRule{{Name: "r", Kind: "depends", Enabled: true, VMGroup: "ga", DependsOnVMGroup: "gb"},
				{Name: "s", Kind: "depends", Enabled: true, VMGroup: "gb", DependsOnVMGroup: "ga"}}
		}, api.ErrInvalid, "dependency rules form a cycle: ga -> gb -> ga"},
	} {
		if err := change(c.edit); !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v, want %v naming %q", err, c.is, c.want)
		}
	}
	o, _ := e.admin.Get(ctxT(t), cluster)
	var s api.ClusterSpec
	_ = o.DecodeSpec(&s)
	if len(s.Groups) != 3 || s.Groups[0].VMs[0] != "a" || s.Groups[2].Hosts[0] != "esx-01" || len(s.Rules) != 0 {
		t.Errorf("groups %+v rules %+v", s.Groups, s.Rules)
	}
	// A disabled depends rule constrains nothing: no cycle with it.
	if err := change(func(s *api.ClusterSpec) {
		s.Rules = []api.ClusterRule{{Name: "r", Kind: "depends", Enabled: true, VMGroup: "ga", DependsOnVMGroup: "gb"},
			{Name: "s", Kind: "depends", VMGroup: "gb", DependsOnVMGroup: "ga"}}
	}); err != nil {
		t.Errorf("disabled reverse rule: %v", err)
	}
	// a (group ga) depends on b (gb): a may not outrank b.
	vo, vs, _ := e.getVM(t, "a")
	vs.HA.RestartPriority = "high"
	vo.SetSpec(vs)
	if _, err := e.admin.Update(ctxT(t), vo); !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), `restart priority high for /dc1/vm/a: dependency rule "r"`) {
		t.Errorf("inverting override: %v", err)
	}
}

func TestHACapacityRoute(t *testing.T) {
	e := startVCenter(t, Config{})
	e.inventory(t, &api.ClusterSpec{HA: api.HAConfig{Enabled: true, AdmissionControlEnabled: true, HostFailuresTolerated: 1}})
	e.joinHost(t, "esx-01", 10000, 65536)
	e.joinHost(t, "esx-02", 6000, 32768)
	e.mustCreate(t, vm("a", rootRP, 1000, api.PoweredOn))
	c, err := e.admin.HACapacity(ctxT(t), cluster)
	if err != nil {
		t.Fatal(err)
	}
	if c.Policy != "percentage" || c.Hosts != 2 || c.VMs != 1 || c.CPU.Total != 16000 || c.CPU.Failover != 10000 || c.CPU.Reserved != 1000 || c.CPU.Free != 5000 {
		t.Errorf("capacity = %+v", c)
	}
	if _, err := e.admin.HACapacity(ctxT(t), dc+"/host/nope"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("missing cluster: %v", err)
	}
	if _, err := e.admin.HACapacity(ctxT(t), rootRP); !errors.Is(err, api.ErrInvalid) {
		t.Errorf("a pool: %v", err)
	}
}
