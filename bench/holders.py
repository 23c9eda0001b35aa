"""Processes standing in for containers' inits in the benchmarks."""

import os
import subprocess
import time


def hold_netns(namespaces=("--net", "--mount")):
    """A process in namespaces of its own (`unshare` flags), returned once it
    is in them (`unshare` keeps its parent's for a moment after it starts).
    Not `ip netns add`/`exec`: their bind mounts propagate into every
    namespace `ip netns exec` made, so n holders make n^2 mounts, and every
    path lookup of the machine slows with them."""
    own = os.readlink("/proc/self/ns/net")
    p = subprocess.Popen(["unshare", *namespaces, "sleep", "3600"])
    while True:
        try:
            if os.readlink(f"/proc/{p.pid}/ns/net") != own:
                return p
        except OSError:
            pass
        time.sleep(0.0005)
