// Package bench holds podsphere's data-plane benchmarks: how long a VM takes
// from `vm.power -on` to running containers with an IP, next to a floor that
// does the same work with containerd and CNI directly, and how long 100 VMs
// powered on at once take, on a 3-host lab. They need root and run only
// under `go test -run '^$' -bench . -benchtime 1x ./bench`; docs/benchmarks.md
// ("Data plane") has the figures and what they mean.
package bench
