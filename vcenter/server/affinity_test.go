package server

import (
	"errors"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/manifest"
)

func (e *env) labelHost(t *testing.T, host string, labels map[string]string) {
	t.Helper()
	o, err := e.admin.Get(ctxT(t), cluster+"/"+host)
	if err != nil {
		t.Fatal(err)
	}
	o.Labels = labels
	if _, err := e.admin.Update(ctxT(t), o); err != nil {
		t.Fatalf("label %s: %v", host, err)
	}
}

// ruled is vm() in folder path name, with labels and the VM's own rules.
func ruled(name, poolPath string, labels map[string]string, f func(*api.VMSpec)) *api.Object {
	o := vm(name, poolPath, 1000, api.PoweredOn)
	var s api.VMSpec
	_ = o.DecodeSpec(&s)
	f(&s)
	o.SetSpec(s)
	o.Labels = labels
	return o
}

func antiTo(app string) func(*api.VMSpec) {
	return func(s *api.VMSpec) {
		s.Affinity = &api.Affinity{VMAntiAffinity: []api.VMAffinityTerm{{Selector: api.LabelSelector{MatchLabels: map[string]string{"app": app}}, Required: true}}}
	}
}

func TestPlacementVMRules(t *testing.T) {
	e := startVCenter(t, Config{})
	e.inventory(t, nil)
	// esx-01 is much bigger: without a rule every VM lands there.
	e.joinHost(t, "esx-01", 100000, 262144)
	e.joinHost(t, "esx-02", 10000, 32768)
	e.joinHost(t, "esx-03", 10000, 32768)
	e.labelHost(t, "esx-02", map[string]string{"gpu": "true"})
	e.labelHost(t, "esx-03", map[string]string{"zone": "b"})

	// hostSelector: the only matching host, however full.
	e.mustCreate(t, ruled("ml", rootRP, nil, func(s *api.VMSpec) { s.HostSelector = map[string]string{"gpu": "true"} }))
	if h := e.hostOf(t, "ml"); h != "esx-02" {
		t.Fatalf("ml with hostSelector gpu=true on %q, want esx-02", h)
	}
	if evs := e.eventsFor(t, dc+"/vm/ml"); !hasEvent(evs, "DrsVmPoweredOnEvent", "DRS placed ml on esx-02 (score 0.900 of 3 candidate hosts, 1 of which could run it)") {
		t.Errorf("placement event: %+v", evs)
	}

	// Required anti-affinity to a running VM avoids its host.
	e.mustCreate(t, ruled("db1", rootRP, map[string]string{"app": "db"}, func(*api.VMSpec) {}))
	if h := e.hostOf(t, "db1"); h != "esx-01" {
		t.Fatalf("db1 on %s, want the big esx-01", h)
	}
	e.mustCreate(t, ruled("web1", rootRP, map[string]string{"app": "web"}, antiTo("db")))
	if h := e.hostOf(t, "web1"); h == "esx-01" || h == "" {
		t.Fatalf("web1 with anti-affinity to app=db on %q (db1 runs on esx-01)", h)
	}

	// VM-VM terms stay within the namespace: db1 is in the default one.
	e.mustCreate(t, pool(rootRP+"/shop", alloc(0, -1, true), nil))
	e.mustCreate(t, ruled("shop/web2", rootRP+"/shop", map[string]string{"app": "web"}, antiTo("db")))
	if h := e.hostOf(t, "shop/web2"); h != "esx-01" {
		t.Errorf("shop/web2 on %s: db1 of the default namespace should not keep it off esx-01", h)
	}

	// A running VM's required anti-affinity keeps the VMs it selects away,
	// even those without rules of their own.
	e.mustCreate(t, ruled("solo", rootRP, map[string]string{"app": "solo"}, antiTo("batch")))
	if h := e.hostOf(t, "solo"); h != "esx-01" {
		t.Fatalf("solo on %s, want esx-01", h)
	}
	e.mustCreate(t, ruled("batch1", rootRP, map[string]string{"app": "batch"}, func(*api.VMSpec) {}))
	if h := e.hostOf(t, "batch1"); h == "esx-01" || h == "" {
		t.Errorf("batch1 on %q: solo's anti-affinity to app=batch should keep it off esx-01", h)
	}

	// A manifest's Pod with nodeSelector and pod anti-affinity is accepted and honoured.
	items, err := manifest.Decode(strings.NewReader(`
apiVersion: v1
kind: Pod
metadata: {name: api, labels: {app: api}}
spec:
  nodeSelector: {zone: b}
  affinity:
    nodeAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 10
        preference: {matchExpressions: [{key: gpu, operator: DoesNotExist}]}
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: kubernetes.io/hostname
        labelSelector: {matchLabels: {app: db}}
  containers: [{name: c, image: busybox}]
`), manifest.Context{Datacenter: "dc1", Cluster: "c1"})
	if err != nil || len(items) != 1 {
		t.Fatalf("decode: %v (%d items)", err, len(items))
	}
	e.mustCreate(t, items[0].Object)
	if h := e.hostOf(t, "api"); h != "esx-03" {
		t.Errorf("Pod api with nodeSelector zone=b on %q, want esx-03", h)
	}

	// Nothing matches: the refusal and its event give every host's reason.
	e.mustCreate(t, ruled("ssd", rootRP, nil, func(s *api.VMSpec) {
		s.HostSelector = map[string]string{"disk": "ssd"}
		s.PowerState = api.PoweredOff
	}))
	_, err = e.admin.Power(ctxT(t), dc+"/vm/ssd", "on")
	if !errors.Is(err, api.ErrInsufficientResources) {
		t.Fatalf("ssd power on = %v, want insufficient resources", err)
	}
	for _, h := range []string{"esx-01", "esx-02", "esx-03"} {
		want := h + ": host labels do not match hostSelector disk=ssd"
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q lacks %q", err, want)
		}
		if !hasEvent(e.eventsFor(t, dc+"/vm/ssd"), "VmFailedToPowerOnEvent", want) {
			t.Errorf("no refusal event with %q", want)
		}
	}

	// Bad terms are refused naming the field.
	bad := ruled("bad", rootRP, nil, func(s *api.VMSpec) {
		s.Affinity = &api.Affinity{VMAffinity: []api.VMAffinityTerm{{Selector: api.LabelSelector{MatchLabels: map[string]string{"app": "x"}}}}}
	})
	if _, err := e.admin.Create(ctxT(t), bad); !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "spec.affinity.vmAffinity[0].weight 0") {
		t.Errorf("preferred term without weight = %v", err)
	}
}

// Every host carries kubernetes.io/hostname, as Kubernetes nodes do.
func TestHostnameLabelPins(t *testing.T) {
	e := startVCenter(t, Config{})
	e.inventory(t, nil)
	for _, h := range []string{"esx-01", "esx-02", "esx-03"} {
		e.joinHost(t, h, 20000, 65536)
	}
	o := vm("pinned", rootRP, 0, api.PoweredOn)
	var s api.VMSpec
	_ = o.DecodeSpec(&s)
	s.HostSelector = map[string]string{api.HostnameLabel: "esx-02"}
	o.SetSpec(s)
	e.mustCreate(t, o)
	_, spec, _ := e.getVM(t, "pinned")
	if spec.Host != cluster+"/esx-02" {
		t.Errorf("a VM with nodeSelector kubernetes.io/hostname=esx-02 landed on %s", spec.Host)
	}
}
