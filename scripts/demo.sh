#!/usr/bin/env bash
# make demo: a three-host datacenter on this machine (`podsphere lab up`),
# real containers on each host, a pool with a quota, and a web page fetched
# from one VM by another across hosts. The lab stays up afterwards so you can
# keep going; `podsphere lab down` removes it. Without root it runs the
# simulated demo instead (scripts/demo-sim.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LAB_DIR=${PODSPHERE_LAB_DIR:-/var/lib/podsphere-lab}
PACKAGES=(containerd runc containernetworking-plugins iptables busybox-static iproute2)

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
# run shows the command as you would type it (arguments with spaces quoted), then runs it.
run() {
  local shown=() a
  for a in "$@"; do [[ $a == *[[:space:]]* ]] && shown+=("'$a'") || shown+=("$a"); done
  say "${shown[*]}"; "$@"
}
note() { printf '\033[2m# %s\033[0m\n' "$*"; }

if [ "$(id -u)" != "0" ]; then
  cat <<EOF
The podsphere lab needs root: it creates network namespaces, veths, a bridge
and cgroups, and runs containerd. Nothing outside its own namespaces changes,
and \`podsphere lab down\` removes it all (see docs/lab.md). For the real
three-host demo run:  sudo make demo

Meanwhile, here is the simulated demo (no containers, no root):
EOF
  make -s build
  exec "$ROOT/scripts/demo-sim.sh"
fi

# 1. The Debian packages the lab runs, installed only when missing.
missing=()
for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "missing packages: ${missing[*]} (and no apt-get to install them)" >&2; exit 1
  fi
  note "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. Build, and start from a clean lab.
make -s build
export PATH=$ROOT/bin:$PATH
if [ -e "$LAB_DIR/state.json" ]; then
  note "a lab is already up in $LAB_DIR: tearing it down to start fresh"
  podsphere lab down --dir "$LAB_DIR"
fi
run podsphere lab up --hosts 3 --dir "$LAB_DIR"
say ". $LAB_DIR/env"
. "$LAB_DIR/env"
note "PSC_URL=$PSC_URL: a loopback forwarder to vcenter at 10.99.0.2:8989 inside the lab"

# 3. Inventory and a pool with a quota.
run psc host.info
run psc library.ls
run psc pool.create -cpu.reservation 1000 -mem.reservation 256 c1/Resources/web
run psc quota.set c1/Resources/web -vms 4 -mem 1024

# 4. Three web servers kept apart by a DRS rule, and one Kubernetes Pod.
for vm in web-01 web-02 web-03; do
  run psc vm.create -on=false -pool c1/Resources/web -m 128 -cpu.reservation 200 -image busybox -cmd 'httpd -f -v -p 80 -h /www' "$vm"
done
run psc cluster.rule.create -name web-spread -enable -mandatory -anti-affinity web-01 web-02 web-03
run psc vm.power -on web-01 web-02 web-03
say "psc apply -f - <<EOF   # a Kubernetes Pod: namespace web is the pool c1/Resources/web, the VM is web/client"
psc apply -f - <<'EOF'
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: web}
spec:
  containers:
  - name: shell
    image: busybox
    command: [sleep, "86400"]
    resources: {limits: {cpu: 500m, memory: 64Mi}}
EOF
note "the quota allows 4 VMs in web: a fifth is refused and starts no container"
say "psc vm.create -pool c1/Resources/web -m 64 web-04"
psc vm.create -pool c1/Resources/web -m 64 web-04 || true

run psc tree
run psc ls -l /dc1/vm
run psc vm.ip web-01 web-02 web-03 web/client

# 5. VM to VM across hosts, by IP.
host_of() { psc vm.info "$1" | awk '$1 == "Host:" {n = split($2, p, "/"); print p[n]}'; }
IP2=$(psc vm.ip web-02); IP3=$(psc vm.ip web-03)
note "web-01 runs on $(host_of web-01), web-02 on $(host_of web-02), web-03 on $(host_of web-03)"
run psc guest.run web-01 -- wget -qO- "http://$IP2/"
run psc guest.run web/client -- wget -qO- "http://$IP3/"
note "web-02's httpd logged that request (-v):"
run psc vm.logs web-02

# 6. A Kubernetes Deployment: three web servers kept running, spread over
#    the hosts, rolled to a new version without dropping below two ready.
deployment() {
  cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: site}
spec:
  replicas: 3
  strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 1}}
  selector: {matchLabels: {app: site}}
  template:
    metadata: {labels: {app: site}}
    spec:
      containers:
      - name: httpd
        image: busybox
        command: [sh, -c, 'mkdir -p /www && echo "site $1" > /www/index.html && exec httpd -f -p 80 -h /www', sh, "$1"]
        ports: [{containerPort: 80}]
        readinessProbe: {httpGet: {path: /, port: 80}, periodSeconds: 1}
YAML
}
say "psc apply -f site.yaml   # a Deployment of 3 busybox httpd VMs with a readiness probe"
deployment v1 | psc apply -f -
run psc deployment.rollout.status -w -timeout 2m site
run psc deployment.ls
run psc ls -l /dc1/vm
note "a new version: the rollout replaces the VMs one by one (maxSurge 1, maxUnavailable 1)"
say "psc apply -f site.yaml   # v2"
deployment v2 | psc apply -f -
run psc deployment.rollout.status -w -timeout 2m site
run psc deployment.rollout.history site
SITE=$(psc ls /dc1/vm | awk -F/ '/site-/ {print $NF; exit}')
run psc guest.run "$SITE" -- wget -qO- http://127.0.0.1/

# 7. Built-in load balancing: a LoadBalancer Service in front of the
#    Deployment (an NSX / F5 virtual server whose pool members are its
#    ready VMs), reached by name from a VM, by node port on every host, and
#    on an address of the lab's network that one host answers for (the HA
#    drill below streams requests through it).
say "psc apply -f site-svc.yaml   # a LoadBalancer Service for the site"
cat <<YAML | psc apply -f -
apiVersion: v1
kind: Service
metadata: {name: site}
spec:
  type: LoadBalancer
  selector: {app: site}
  ports: [{port: 80, nodePort: 30080}]
YAML
note "waiting for the rules on every host and the address's answering host"
for _ in $(seq 100); do
  psc guest.run web-01 -- timeout 2 wget -qO- http://site/ >/dev/null 2>&1 && break
  sleep 0.2
done
run psc svc.ls
run psc guest.run web-01 -- wget -qO- http://site/
run psc guest.run web-01 -- wget -qO- http://10.99.0.12:30080/

# 8. vSphere HA, proven with a real failure: the drill crashes a host (its
# agent, its HA process and every container die, its link goes down) and
# measures until every protected VM runs and is ready elsewhere, while a
# steady stream of requests goes through the site's Service address.
run psc cluster.change -ha-enabled -ha-isolation-response powerOff c1
VICTIM=$(host_of "$SITE")
run psc ha.plan -fail "$VICTIM"
note "the mandatory spread rule leaves the web VM of $VICTIM nowhere to go (as vSphere HA honours it): relax it"
run psc cluster.rule.remove -name web-spread
SVG=${TMPDIR:-/tmp}/podsphere-drill.svg
run psc ha.drill -mode crash -svg "$SVG" "$VICTIM"
note "timeline picture: $SVG"
run psc ha.drill.ls

cat <<EOF

That was podsphere on three hosts, each in its own network namespace, running
real containers in containerd (details: podsphere lab status --dir $LAB_DIR).
The lab is still up. To keep going from this shell:

  export PATH=$ROOT/bin:\$PATH
  . $LAB_DIR/env
  psc tree                                  # the inventory
  psc vm.create -m 128 web-05               # busybox httpd by default
  psc guest.run web-01 -- ps                # run a command in a VM
  psc vm.power -off web-02; psc events -n 5 # and see what happened
  psc host.maintenance.enter esx-01         # its VMs move away first
  psc deployment.scale -replicas 5 site     # more web servers
  psc deployment.rollout.undo site          # back to the previous version
  psc ha.drill -mode isolate esx-03         # isolate a host: powerOff, restarted elsewhere
  psc ha.drill.info NAME                    # a kept drill report

Guides: docs/lab.md (this lab), docs/cli.md (every psc verb),
docs/workloads.md (Deployments, replica sets and the rest),
docs/loadbalancing.md (Services, DNS, Ingress), docs/ha.md
(vSphere HA: restarts, isolation, admission control, drills).
Tear it all down (processes, namespaces, containers, files), as root, with:

  $ROOT/bin/podsphere lab down --dir $LAB_DIR
EOF
