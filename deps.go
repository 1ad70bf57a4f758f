//go:build tools

package podsphere

import (
	_ "github.com/containerd/containerd"
	_ "github.com/containernetworking/cni/libcni"
	_ "github.com/coreos/go-iptables/iptables"
	_ "github.com/dgraph-io/badger/v4"
	_ "github.com/hashicorp/memberlist"
	_ "github.com/olekukonko/tablewriter"
	_ "github.com/spf13/cobra"
	_ "sigs.k8s.io/yaml"
)
