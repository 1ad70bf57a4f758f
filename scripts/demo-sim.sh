#!/usr/bin/env bash
# The simulated demo (no root, no containers): a vcenter with three sim hosts on
# loopback, a pool tree with reservations and a quota, VMs placed by DRS, and one
# refused power-on. scripts/demo.sh runs it when it cannot build the real lab.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/bin
DIR=$(mktemp -d /tmp/podsphere-demo.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)); }
API=$(port); GOSSIP=$(port)
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

"$BIN/podsphere" vcenter --data-dir "$DIR/vc" --listen 127.0.0.1:$API --gossip 127.0.0.1:$GOSSIP 2>"$DIR/vcenter.log" &
PIDS+=($!)
for i in $(seq 100); do [ -s "$DIR/vc/join.token" ] && break; sleep 0.1; done
export PSC_URL=http://127.0.0.1:$API PSC_TOKEN=$(cat "$DIR/vc/admin.token") PSC_DATACENTER=dc1 PSC_CLUSTER=c1
psc() { "$BIN/psc" "$@"; }
for i in $(seq 100); do psc about >/dev/null 2>&1 && break; sleep 0.1; done

run psc datacenter.create dc1
run psc cluster.create c1
for i in 1 2 3; do
  "$BIN/podsphere" host --name esx-0$i --cluster /dc1/host/c1 --vcenter "$PSC_URL" \
    --join 127.0.0.1:$GOSSIP --join-token "$(cat "$DIR/vc/join.token")" --gossip-bind 127.0.0.1:0 \
    --runtime sim --cpu 20000 --mem 65536 2>"$DIR/esx-0$i.log" &
  PIDS+=($!)
done
for i in $(seq 50); do [ "$(psc ls -t h /dc1/host/c1 2>/dev/null | wc -l)" -ge 3 ] && break; sleep 0.2; done

run psc host.info
run psc pool.create -cpu.reservation 6000 -cpu.expandable=false -mem.reservation 8192 c1/Resources/prod
run psc pool.create -cpu.reservation 2000 -mem.reservation 2048 c1/Resources/prod/web
run psc pool.create c1/Resources/dev
run psc quota.set c1/Resources/dev -vms 2 -mem 4096
run psc vm.create -c 2 -m 1024 -cpu.reservation 1000 -mem.reservation 1024 -pool c1/Resources/prod/web web-01
run psc vm.create -c 2 -m 1024 -cpu.reservation 1000 -mem.reservation 1024 -pool c1/Resources/prod/web web-02
run psc vm.create -c 1 -m 2048 -cpu.reservation 3000 -pool c1/Resources/prod db-01
run psc vm.create -c 1 -m 1024 -pool c1/Resources/dev dev-01
run psc vm.create -c 1 -m 1024 -pool c1/Resources/dev dev-02
sleep 1
run psc tree
run psc pool.info c1/Resources/prod c1/Resources/prod/web
run psc quota.info c1/Resources/dev

say "psc vm.create -c 1 -m 512 -pool c1/Resources/dev dev-03   # the quota allows 2 VMs"
psc vm.create -c 1 -m 512 -pool c1/Resources/dev dev-03 || true
say "psc vm.create -cpu.reservation 4000 -pool c1/Resources/prod/web web-03   # prod is fixed at 6000 MHz"
psc vm.create -c 2 -m 512 -cpu.reservation 4000 -pool c1/Resources/prod/web web-03 || true
run psc rs.create -replicas 3 -m 256 -cpu.reservation 100 -pool c1/Resources/prod/web -l app=api api
run psc rs.ls
run psc deployment.create -replicas 4 -m 128 -max-surge 1 -max-unavailable 0 site
run psc deployment.rollout.status -w -timeout 1m site
run psc deployment.set.image site '*=busybox:1.36'
run psc deployment.rollout.status -w -timeout 1m site
run psc deployment.rollout.history site
run psc events -n 8
echo
echo "That was podsphere on three simulated hosts. Next: README.md's walk-through, docs/."
