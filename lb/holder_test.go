package lb

import (
	"net/netip"
	"reflect"
	"testing"
)

func TestHolders(t *testing.T) {
	up := func(p string) HolderHost { return HolderHost{Path: p, Healthy: true} }
	down := func(p, why string) HolderHost { return HolderHost{Path: p, Reason: why} }
	ips := []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"}
	for _, c := range []struct {
		name    string
		ips     []string
		current map[string]string
		hosts   []HolderHost
		want    map[string]string
		moves   []Move
	}{
		{
			name:  "first holders spread over the hosts",
			ips:   ips,
			hosts: []HolderHost{up("h1"), up("h2"), up("h3")},
			want:  map[string]string{"10.0.0.1": "h1", "10.0.0.2": "h2", "10.0.0.3": "h3", "10.0.0.4": "h1"},
			moves: []Move{{IP: "10.0.0.1", To: "h1"}, {IP: "10.0.0.2", To: "h2"}, {IP: "10.0.0.3", To: "h3"}, {IP: "10.0.0.4", To: "h1"}},
		},
		{
			name:    "healthy holders stay even when unbalanced",
			ips:     ips[:2],
			current: map[string]string{"10.0.0.1": "h3", "10.0.0.2": "h3"},
			hosts:   []HolderHost{up("h1"), up("h2"), up("h3")},
			want:    map[string]string{"10.0.0.1": "h3", "10.0.0.2": "h3"},
		},
		{
			name:    "a failed holder's addresses go to the least loaded healthy hosts",
			ips:     ips,
			current: map[string]string{"10.0.0.1": "h1", "10.0.0.2": "h2", "10.0.0.3": "h1", "10.0.0.4": "h3"},
			hosts:   []HolderHost{down("h1", "failed"), up("h2"), up("h3")},
			want:    map[string]string{"10.0.0.1": "h2", "10.0.0.2": "h2", "10.0.0.3": "h3", "10.0.0.4": "h3"},
			moves:   []Move{{IP: "10.0.0.1", From: "h1", To: "h2", Why: "failed"}, {IP: "10.0.0.3", From: "h1", To: "h3", Why: "failed"}},
		},
		{
			name:    "maintenance moves the address",
			ips:     ips[:1],
			current: map[string]string{"10.0.0.1": "h1"},
			hosts:   []HolderHost{down("h1", "entering maintenance mode"), up("h2")},
			want:    map[string]string{"10.0.0.1": "h2"},
			moves:   []Move{{IP: "10.0.0.1", From: "h1", To: "h2", Why: "entering maintenance mode"}},
		},
		{
			name:    "a removed host's address moves",
			ips:     ips[:1],
			current: map[string]string{"10.0.0.1": "gone"},
			hosts:   []HolderHost{up("h2")},
			want:    map[string]string{"10.0.0.1": "h2"},
			moves:   []Move{{IP: "10.0.0.1", From: "gone", To: "h2", Why: "no longer in the cluster"}},
		},
		{
			name:    "no healthy host: nobody answers",
			ips:     ips[:2],
			current: map[string]string{"10.0.0.1": "h1"},
			hosts:   []HolderHost{down("h1", "not responding")},
			want:    map[string]string{"10.0.0.1": "", "10.0.0.2": ""},
			moves:   []Move{{IP: "10.0.0.1", From: "h1", Why: "not responding"}},
		},
		{
			name:  "no addresses",
			hosts: []HolderHost{up("h1")},
			want:  map[string]string{},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, moves := Holders(c.ips, c.current, c.hosts)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("holders %v, want %v", got, c.want)
			}
			if !reflect.DeepEqual(moves, c.moves) {
				t.Errorf("moves %+v, want %+v", moves, c.moves)
			}
		})
	}
}

func TestFirstFreeAndRanges(t *testing.T) {
	rs, err := ParseAddressRanges([]string{"10.0.0.8/30", "10.0.0.20-10.0.0.21", "10.0.0.30"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	taken := map[string]bool{}
	for {
		a, ok := FirstFree(rs, netip.Addr{}, func(a netip.Addr) bool { return taken[a.String()] })
		if !ok {
			break
		}
		taken[a.String()] = true
		got = append(got, a.String())
	}
	want := []string{"10.0.0.9", "10.0.0.10", "10.0.0.20", "10.0.0.21", "10.0.0.30"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("allocation order %v, want %v (a /30 leaves out its network and broadcast addresses)", got, want)
	}
	p, _ := ParsePortRange("8080-8082")
	if port, ok := FreePort(p, 8082, func(n int) bool { return n == 8082 }); !ok || port != 8080 {
		t.Errorf("FreePort wraps: %d %v, want 8080", port, ok)
	}
}
