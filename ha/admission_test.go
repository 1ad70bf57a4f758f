package ha

import (
	"errors"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
)

func threeHosts() []CapacityHost {
	return []CapacityHost{{"esx-01", 10000, 32768}, {"esx-02", 10000, 32768}, {"esx-03", 20000, 65536}}
}

func TestPercentageKeepsTheLargestHostsFree(t *testing.T) {
	// 40000 MHz in all; tolerating 1 failure keeps the largest host's 20000.
	f := FailoverCapacity(PolicyPercentage, 1, threeHosts(), Load{VMs: 3, CPUReserved: 15000, MemReserved: 1024, MaxCPU: 5000, MaxMem: 512})
	if f.CPUKept != 20000 || f.MemKept != 65536 {
		t.Fatalf("kept %d MHz / %d MB, want the largest host's 20000 / 65536", f.CPUKept, f.MemKept)
	}
	if err := f.Admit("web-01", 5000, 0); err != nil {
		t.Errorf("5000 MHz of the 5000 left: %v", err)
	}
	err := f.Admit("web-02", 5001, 0)
	want := "HA admission control (cluster resource percentage, 1 host failures tolerated): 20000 of 40000 MHz CPU is kept for failover (50%) and 15000 MHz is reserved; web-02 needs 5001 MHz, 5000 MHz is left"
	if !errors.Is(err, api.ErrInsufficientResources) || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("5001 MHz:\n got %v\nwant %s", err, want)
	}
	// Two failures tolerated keep the two largest.
	if f := FailoverCapacity(PolicyPercentage, 2, threeHosts(), Load{}); f.CPUKept != 30000 {
		t.Errorf("2 failures keep %d MHz, want 30000", f.CPUKept)
	}
	// A VM without reservation always fits the percentage policy.
	full := FailoverCapacity(PolicyPercentage, 1, threeHosts(), Load{CPUReserved: 20000})
	if err := full.Admit("free", 0, 0); err != nil {
		t.Errorf("no reservation: %v", err)
	}
}

func TestSlotPolicy(t *testing.T) {
	// Slot 2000 MHz / 1024 MB: hosts hold 5, 5 and 10 slots; losing the
	// largest leaves 10.
	f := FailoverCapacity(PolicySlot, 1, threeHosts(), Load{VMs: 9, MaxCPU: 2000, MaxMem: 1024})
	if f.SlotCPU != 2000 || f.TotalSlots != 20 || f.UsableSlots != 10 {
		t.Fatalf("slot %d MHz, %d slots, %d usable; want 2000, 20, 10", f.SlotCPU, f.TotalSlots, f.UsableSlots)
	}
	if err := f.Admit("vm-10", 1000, 0); err != nil {
		t.Errorf("the 10th slot: %v", err)
	}
	f.UsedSlots = 10
	err := f.Admit("vm-11", 1000, 0)
	if !errors.Is(err, api.ErrInsufficientResources) || !strings.Contains(err.Error(), "slot policy") || !strings.Contains(err.Error(), "10 of the 10 slots left after the largest 1 hosts fail are used") {
		t.Errorf("the 11th: %v", err)
	}
	// A VM larger than the slot needs several.
	f.UsedSlots = 8
	if err := f.Admit("big", 5000, 0); err == nil || !strings.Contains(err.Error(), "needs 3 slot(s)") {
		t.Errorf("a 5000 MHz VM in 2000 MHz slots: %v", err)
	}
	// No reservations at all: the minimum slot.
	if f := FailoverCapacity(PolicySlot, 1, threeHosts(), Load{}); f.SlotCPU != MinSlotCPU || f.SlotMem != MinSlotMem {
		t.Errorf("empty cluster slot %d/%d, want %d/%d", f.SlotCPU, f.SlotMem, MinSlotCPU, MinSlotMem)
	}
}
