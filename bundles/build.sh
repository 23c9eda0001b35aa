#!/bin/bash
# bundles/build.sh [OUT_DIR] — builds ready-to-run OCI bundles from busybox-static.
#
# For every template in bundles/templates/NAME.json this makes OUT_DIR/NAME/ with
# config.json and a rootfs/ holding a static busybox and its applet links.
# OUT_DIR defaults to bundles/out. Needs the Debian package busybox-static.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$here/out}
busybox=${BUSYBOX:-/bin/busybox}

if ! "$busybox" --list >/dev/null 2>&1 || ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
    if [ -x /usr/bin/apt-get ] && [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends busybox-static file >/dev/null
    fi
fi
"$busybox" --list >/dev/null 2>&1 || { echo "build.sh: $busybox is not a working busybox (apt-get install busybox-static)" >&2; exit 1; }

make_rootfs() {
    local root=$1
    rm -rf "$root"
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,var,run}
    chmod 1777 "$root/tmp"
    cp "$busybox" "$root/bin/busybox"
    local applet
    for applet in $("$busybox" --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\ntty:x:5:\nnobody:x:65534:\n' >"$root/etc/group"
    : >"$root/etc/hosts"
    : >"$root/etc/resolv.conf"
    echo minirun >"$root/etc/hostname"
    mkdir -p "$root/www"
    echo "hello from a minirun container" >"$root/www/index.html"
}

mkdir -p "$out"
for tpl in "$here"/templates/*.json; do
    name=$(basename "$tpl" .json)
    mkdir -p "$out/$name"
    make_rootfs "$out/$name/rootfs"
    cp "$tpl" "$out/$name/config.json"
    echo "bundle: $out/$name"
done
