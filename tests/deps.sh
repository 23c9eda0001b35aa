#!/bin/bash
# tests/deps.sh — installs the Debian packages the demo and the tests use, when
# missing: busybox-static (bundles), runc, crun, podman, containerd and docker.io
# (reference runtimes and the clients that drive minirun), etcd-server (the
# cluster store of overlay networks), containernetworking-plugins (the
# loopback plugin containerd's CRI calls), protobuf-compiler (the CRI
# client's stubs are generated at build time), python3
# (console-socket receiver, conformance suite), util-linux (unshare), file,
# curl (fetches from published ports), libnftables-dev and libseccomp-dev
# (linked by minirun-net and minirun), nftables and iproute2 (tests inspect
# rules and links with nft and ip; the product never runs them).
#
# The tests start containerd, dockerd and etcd themselves, inside their sandboxes.
# Installing the packages must not start them on the host (dockerd would make
# docker0 and firewall rules in the host's network): service starts are
# refused while apt runs, and the units the packages enable are disabled.
set -euo pipefail
pkgs=(busybox-static runc crun podman containerd docker.io etcd-server containernetworking-plugins protobuf-compiler curl python3 util-linux file procps iproute2 libnftables-dev nftables libseccomp-dev)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
[ "$(id -u)" = 0 ] || { echo "deps.sh: run as root to install: ${missing[*]}" >&2; exit 1; }
echo "installing: ${missing[*]}"
policy=/usr/sbin/policy-rc.d
own_policy=false
if [ ! -e $policy ]; then
    printf '#!/bin/sh\n# tests/deps.sh: no service starts while it installs\nexit 101\n' >$policy
    chmod 755 $policy
    own_policy=true
fi
trap '$own_policy && rm -f $policy' EXIT
apt-get update -qq >/dev/null 2>&1 || true
installed=false
for try in 1 2 3; do
    if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
        installed=true
        break
    fi
    sleep 2
done
$installed || { echo "deps.sh: apt-get install ${missing[*]} failed" >&2; exit 1; }
for p in "${missing[@]}"; do
    case $p in
    docker.io) units="docker.service docker.socket" ;;
    containerd) units="containerd.service" ;;
    etcd-server) units="etcd.service" ;;
    *) continue ;;
    esac
    if [ -d /run/systemd/system ]; then
        systemctl disable $units >/dev/null 2>&1 || true
    fi
done
