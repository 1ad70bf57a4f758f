package inventory

import (
	"errors"
	"io"
	"log"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
)

// TestCreateVMTwice: creating a VM whose path is taken says it already
// exists (the replica-set controller draws new names on that), not that
// the path is a namespace folder.
func TestCreateVMTwice(t *testing.T) {
	inv, err := Open(t.TempDir(), Options{Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer inv.Close()
	for _, o := range []*api.Object{api.New(api.KindDatacenter, "/dc1", nil), api.New(api.KindCluster, "/dc1/host/c1", nil)} {
		if _, err := inv.Create("admin", o); err != nil {
			t.Fatal(err)
		}
	}
	vm := func() *api.Object {
		return api.New(api.KindVirtualMachine, "/dc1/vm/web-x", api.VMSpec{Pool: "/dc1/host/c1/Resources", NumCPU: 1, MemoryMB: 64})
	}
	if _, err := inv.Create("admin", vm()); err != nil {
		t.Fatal(err)
	}
	_, err = inv.Create("admin", vm())
	if !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), `"/dc1/vm/web-x" already exists`) {
		t.Fatalf("second create: %v, want already exists", err)
	}
}
