// Command psc is podsphere's admin CLI, a govc look-alike; see docs/cli.md.
package main

import (
	"os"

	"github.com/podsphere/podsphere/cli"
)

func main() {
	cli.DefaultInjector = labFromEnv
	cli.DefaultDrillProber = labDrillProber
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
