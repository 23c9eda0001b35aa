#!/bin/bash
# tests/deps.sh — installs the Debian packages the demo and the tests use, when
# missing: busybox-static (bundles), runc, crun, podman and containerd (reference runtimes,
# the clients that drive minirun), python3 (console-socket receiver, conformance suite),
# util-linux (unshare), file, libnftables-dev and libseccomp-dev (linked by
# minirun-net and minirun), nftables and iproute2 (tests inspect rules and links
# with nft and ip; the product never runs them).
set -euo pipefail
pkgs=(busybox-static runc crun podman containerd python3 util-linux file procps iproute2 libnftables-dev nftables libseccomp-dev)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
[ "$(id -u)" = 0 ] || { echo "deps.sh: run as root to install: ${missing[*]}" >&2; exit 1; }
echo "installing: ${missing[*]}"
apt-get update -qq >/dev/null 2>&1 || true
for try in 1 2 3; do
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null && exit 0
    sleep 2
done
echo "deps.sh: apt-get install ${missing[*]} failed" >&2
exit 1
