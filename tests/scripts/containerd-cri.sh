# tests/scripts/containerd-cri.sh — containerd 1.6 with its CRI plugin inside
# a sandbox, sourced by the CRI tests and bench/cri.sh.
#
# cri_images: the busybox and pause images ($T/busybox.tar, $T/pause.tar),
#   built from the machine's busybox (oci_image.py), never pulled.
# cri_containerd NAME HANDLER BINARY CONFLIST [PLUGIN_PATH...]: a containerd
#   with root and CNI directories under $T/NAME, state /run/NAME, socket
#   /run/NAME.sock; its CRI runs pods with the runtime handler HANDLER (the
#   runc v2 shim running BINARY) and the one network CONFLIST, the plugins
#   minirun-net and loopback (and PLUGIN_PATH...) in its bin_dir; the images
#   imported. $CRI_IN prefixes the start (e.g. `on 2`: in a cluster host's
#   namespace). containerd 1.6's libcni reads results up to 1.0.0: a list for
#   it says "cniVersion": "1.0.0".
# The caller mounts tmpfs on /run and on /var/lib/cni (libcni's cache).

CRI_SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

cri_images() {
    python3 "$CRI_SCRIPTS/oci_image.py" docker.io/library/busybox:test "$T/busybox.tar" &&
        python3 "$CRI_SCRIPTS/oci_image.py" registry.k8s.io/pause:3.6 "$T/pause.tar" /bin/sleep 2147483647
}

cri_containerd() {
    local name=$1 handler=$2 binary=$3 conflist=$4 dir=$T/$1 p
    shift 4
    mkdir -p "$dir/cnibin" "$dir/net.d"
    for p in "$MINIRUN_NET" /usr/lib/cni/loopback "$@"; do
        ln -sf "$p" "$dir/cnibin/"
    done
    echo "$conflist" > "$dir/net.d/10-pods.conflist"
    cat > "$dir/config.toml" <<C
version = 2
root = "$dir/root"
state = "/run/$name"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = "/run/$name.sock"
[ttrpc]
  address = "/run/$name.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.6"
  netns_mounts_under_state_dir = true
  # root here lacks CAP_SYS_RESOURCE: no oom_score_adj below its own
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$dir/cnibin"
    conf_dir = "$dir/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "$handler"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.$handler]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.$handler.options]
        BinaryName = "$binary"
        SystemdCgroup = false
C
    ${CRI_IN:-} containerd --config "$dir/config.toml" > "$dir/containerd.log" 2>&1 &
    for _ in $(seq 100); do [ -S "/run/$name.sock" ] && break; sleep 0.1; done
    for p in busybox pause; do
        ctr -a "/run/$name.sock" -n k8s.io images import "$T/$p.tar" >/dev/null || return 1
    done
}
