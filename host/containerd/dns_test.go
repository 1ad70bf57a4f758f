package containerd

import (
	"testing"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/lb"
)

func str(s string) *string { return &s }

func TestResolvConf(t *testing.T) {
	search := lb.SearchPath("datagrand", "cluster.local")
	host := []byte("# host\nnameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch corp.example\noptions edns0 ndots:1\n")
	for _, tc := range []struct {
		name   string
		policy string
		cfg    *api.PodDNSConfig
		want   string
	}{
		{"ClusterFirst by default", "", nil,
			"# written by podsphere for this VM (dnsPolicy ClusterFirst)\n" +
				"nameserver 10.244.1.1\nsearch datagrand.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"},
		{"ClusterFirst with dnsConfig", api.DNSClusterFirst,
			&api.PodDNSConfig{Nameservers: []string{"192.0.2.1", "10.244.1.1"}, Searches: []string{"corp.example"},
				Options: []api.PodDNSConfigOption{{Name: "ndots", Value: str("2")}, {Name: "edns0"}}},
			"# written by podsphere for this VM (dnsPolicy ClusterFirst)\n" +
				"nameserver 10.244.1.1\nnameserver 192.0.2.1\n" +
				"search datagrand.svc.cluster.local svc.cluster.local cluster.local corp.example\noptions ndots:2 edns0\n"},
		// The host's, without the loopback resolver a VM cannot reach.
		{"Default", api.DNSDefault, nil,
			"# written by podsphere for this VM (dnsPolicy Default)\n" +
				"nameserver 192.0.2.53\nsearch corp.example\noptions edns0 ndots:1\n"},
		{"None", api.DNSNone, &api.PodDNSConfig{Nameservers: []string{"192.0.2.9"}},
			"# written by podsphere for this VM (dnsPolicy None)\nnameserver 192.0.2.9\n"},
		{"at most three nameservers", api.DNSClusterFirst, &api.PodDNSConfig{Nameservers: []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}},
			"# written by podsphere for this VM (dnsPolicy ClusterFirst)\n" +
				"nameserver 10.244.1.1\nnameserver 192.0.2.1\nnameserver 192.0.2.2\n" +
				"search datagrand.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"},
	} {
		if got := ResolvConf(tc.policy, tc.cfg, "10.244.1.1", search, host); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

func TestHostsFile(t *testing.T) {
	got := HostsFile("10.244.1.5", "web", "web-0")
	want := "# written by podsphere for this VM\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n10.244.1.5\tweb web-0\n"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	if got := HostsFile("10.244.1.5", "web-0", "web-0"); got[len(got)-len("10.244.1.5\tweb-0\n"):] != "10.244.1.5\tweb-0\n" {
		t.Fatalf("one name twice: %q", got)
	}
}

func TestDNSMountsReadOnly(t *testing.T) {
	files := map[string]string{"/etc/resolv.conf": "/s/dns/vm/resolv.conf", "/etc/hosts": "/s/dns/vm/hosts"}
	ms := dnsMounts(files, true)
	if len(ms) != 2 || ms[0].Destination != "/etc/hosts" || ms[1].Source != "/s/dns/vm/resolv.conf" || ms[1].Options[1] != "ro" {
		t.Fatalf("mounts %+v", ms)
	}
	if dnsMounts(files, false)[0].Options[1] != "rw" {
		t.Fatal("a writable root file system gets writable files (as the kubelet mounts them)")
	}
}
