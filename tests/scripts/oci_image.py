#!/usr/bin/env python3
"""Writes an OCI image layout as a tarball, for `ctr images import`, from
the machine's busybox-static: one uncompressed layer with /bin/busybox and
its applets as symlinks. No registry is involved.

usage: oci_image.py NAME OUT.tar [ENTRYPOINT ARG...]
NAME is what containerd calls the image (io.containerd.image.name), e.g.
docker.io/library/busybox:test; with an ENTRYPOINT the image runs it (the
pause image: sleep forever), without one /bin/sh.
"""
import hashlib
import io
import json
import subprocess
import sys
import tarfile

BUSYBOX = "/bin/busybox"


def entry(tar, path, kind, data=b"", mode=0o755, target=""):
    info = tarfile.TarInfo(path)
    info.type, info.mode, info.mtime = kind, mode, 0
    if kind == tarfile.SYMTYPE:
        info.linkname = target
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    else:
        tar.addfile(info)


def rootfs_layer():
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for d in ("bin", "dev", "etc", "proc", "sys", "root", "run", "var"):
            entry(tar, d, tarfile.DIRTYPE)
        entry(tar, "tmp", tarfile.DIRTYPE, mode=0o1777)
        with open(BUSYBOX, "rb") as f:
            entry(tar, "bin/busybox", tarfile.REGTYPE, f.read())
        for applet in applets:
            if applet != "busybox":
                entry(tar, f"bin/{applet}", tarfile.SYMTYPE, target="busybox")
        entry(tar, "etc/passwd", tarfile.REGTYPE, b"root:x:0:0:root:/root:/bin/sh\n", 0o644)
        entry(tar, "etc/group", tarfile.REGTYPE, b"root:x:0:\n", 0o644)
    return out.getvalue()


def main():
    name, out, command = sys.argv[1], sys.argv[2], sys.argv[3:]
    blobs = {}

    def blob(data, media_type):
        digest = hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    layer = blob(rootfs_layer(), "application/vnd.oci.image.layer.v1.tar")
    run = {"Entrypoint": command} if command else {"Cmd": ["/bin/sh"]}
    config = blob(json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "WorkingDir": "/", **run},
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
    }).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = blob(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config, "layers": [layer],
    }).encode(), "application/vnd.oci.image.manifest.v1+json")
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{**manifest, "platform": {"architecture": "amd64", "os": "linux"},
                            "annotations": {"io.containerd.image.name": name}}]}
    with tarfile.open(out, "w") as tar:
        entry(tar, "oci-layout", tarfile.REGTYPE, b'{"imageLayoutVersion":"1.0.0"}', 0o644)
        entry(tar, "index.json", tarfile.REGTYPE, json.dumps(index).encode(), 0o644)
        entry(tar, "blobs", tarfile.DIRTYPE)
        entry(tar, "blobs/sha256", tarfile.DIRTYPE)
        for digest, data in blobs.items():
            entry(tar, f"blobs/sha256/{digest}", tarfile.REGTYPE, data, 0o644)


if __name__ == "__main__":
    main()
