package containerd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/podsphere/podsphere/host/runtime"
)

// cgroupFS is where cgroup hierarchies are mounted.
const cgroupFS = "/sys/fs/cgroup"

// CgroupV2 says whether the machine runs the unified hierarchy.
func CgroupV2() bool {
	_, err := os.Stat(filepath.Join(cgroupFS, "cgroup.controllers"))
	return err == nil
}

// Limits is a VM's allocation in kernel units. Zero means "not set".
type Limits struct {
	CPUQuota   int64  // µs per cfsPeriod; 0 = unlimited
	CPUShares  uint64 // v1 cpu.shares (v2 cpu.weight is derived)
	MemLimit   int64  // bytes; 0 = unlimited
	MemReserve int64  // bytes: v2 memory.low, v1 memory.soft_limit_in_bytes
}

// LimitsFor maps a VM's vSphere allocation to cgroup limits. CPU: the limit is
// min(CPU.Limit, NumCPU x MHzPerCore) MHz, as a share of cores; the
// reservation becomes cpu.shares (1024 per core reserved). Memory: the limit is
// min(Mem.Limit, MemoryMB); the reservation becomes memory.low.
func LimitsFor(spec runtime.VMSpec, mhzPerCore int64) Limits {
	var l Limits
	cpu := spec.CPU.Limit
	if spec.NumCPU > 0 {
		if ceiling := int64(spec.NumCPU) * mhzPerCore; cpu <= 0 || ceiling < cpu {
			cpu = ceiling
		}
	}
	if cpu > 0 {
		l.CPUQuota = max(cpu*cfsPeriod/mhzPerCore, 1000) // the kernel refuses quotas under 1ms
	}
	if r := spec.CPU.Reservation; r > 0 {
		l.CPUShares = uint64(max(r*1024/mhzPerCore, 2))
	}
	mem := spec.Mem.Limit
	if spec.MemoryMB > 0 && (mem <= 0 || spec.MemoryMB < mem) {
		mem = spec.MemoryMB
	}
	if mem > 0 {
		l.MemLimit = mem << 20
	}
	if r := spec.Mem.Reservation; r > 0 {
		l.MemReserve = r << 20
	}
	return l
}

// setupVMCgroup creates the VM's cgroup and writes its limits; the VM's
// containers are created beneath it, so the limits hold for all of them together.
func setupVMCgroup(path string, l Limits) error {
	if CgroupV2() {
		return setupV2(path, l)
	}
	return setupV1(path, l)
}

func setupV1(path string, l Limits) error {
	mem := filepath.Join(cgroupFS, "memory", path)
	cpu := filepath.Join(cgroupFS, "cpu", path)
	for _, dir := range []string{mem, cpu} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("cgroup %s: %w", dir, err)
		}
	}
	writes := [][2]string{
		{filepath.Join(cpu, "cpu.cfs_period_us"), strconv.Itoa(cfsPeriod)},
		{filepath.Join(cpu, "cpu.cfs_quota_us"), quotaOrMax(l.CPUQuota, "-1")},
		{filepath.Join(mem, "memory.limit_in_bytes"), bytesOrMax(l.MemLimit, "-1")},
	}
	// Unset reservations are written as the kernel defaults, so a cgroup
	// that outlived a Recreate carries exactly the new spec.
	shares := uint64(1024)
	if l.CPUShares > 0 {
		shares = l.CPUShares
	}
	writes = append(writes,
		[2]string{filepath.Join(cpu, "cpu.shares"), strconv.FormatUint(shares, 10)},
		[2]string{filepath.Join(mem, "memory.soft_limit_in_bytes"), bytesOrMax(l.MemReserve, "-1")})
	return writeAll(writes)
}

func setupV2(path string, l Limits) error {
	// Each ancestor must delegate cpu and memory to its children.
	parts := strings.Split(strings.Trim(path, "/"), "/")
	dir := cgroupFS
	for _, p := range parts {
		_ = os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+cpu +memory +pids"), 0o644)
		dir = filepath.Join(dir, p)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("cgroup %s: %w", dir, err)
		}
	}
	writes := [][2]string{
		{filepath.Join(dir, "cpu.max"), quotaOrMax(l.CPUQuota, "max") + " " + strconv.Itoa(cfsPeriod)},
		{filepath.Join(dir, "memory.max"), bytesOrMax(l.MemLimit, "max")},
	}
	// Unset reservations are written as the kernel defaults, so a cgroup
	// that outlived a Recreate carries exactly the new spec.
	weight := uint64(100)
	if l.CPUShares > 0 {
		weight = 1 + ((l.CPUShares-2)*9999)/262142 // runc's shares -> weight conversion
	}
	writes = append(writes,
		[2]string{filepath.Join(dir, "cpu.weight"), strconv.FormatUint(weight, 10)},
		[2]string{filepath.Join(dir, "memory.low"), strconv.FormatInt(max(l.MemReserve, 0), 10)})
	return writeAll(writes)
}

// removeVMCgroup removes the VM's cgroup (it must be empty) from every hierarchy.
func removeVMCgroup(path string) error {
	var dirs []string
	if CgroupV2() {
		dirs = []string{filepath.Join(cgroupFS, path)}
	} else {
		mounts, _ := os.ReadDir(cgroupFS)
		for _, m := range mounts {
			dirs = append(dirs, filepath.Join(cgroupFS, m.Name(), path))
		}
	}
	var errs []error
	for _, dir := range dirs {
		// Leftover child cgroups (containers) go first; rmdir only removes empty ones.
		if children, err := os.ReadDir(dir); err == nil {
			for _, c := range children {
				if c.IsDir() {
					if err := os.Remove(filepath.Join(dir, c.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
						errs = append(errs, err)
					}
				}
			}
		}
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func writeAll(writes [][2]string) error {
	for _, w := range writes {
		if err := os.WriteFile(w[0], []byte(w[1]), 0o644); err != nil {
			return fmt.Errorf("cgroup: write %s=%s: %w", w[0], w[1], err)
		}
	}
	return nil
}

func quotaOrMax(q int64, unlimited string) string {
	if q <= 0 {
		return unlimited
	}
	return strconv.FormatInt(q, 10)
}

func bytesOrMax(b int64, unlimited string) string {
	if b <= 0 {
		return unlimited
	}
	return strconv.FormatInt(b, 10)
}
