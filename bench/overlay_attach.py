#!/usr/bin/env python3
"""Overlay attach against a local bridge attach, on one cluster host.

Run by bench/overlay.sh inside the host's network namespace: for containers
1..N, alternately first, `minirun-net attach` onto a local bridge network
and onto an overlay network (whose attach takes its address and announces
the container through etcd), then the detaches. Prints JSON.
"""

import json
import os
import statistics
import subprocess
import sys
import time

from holders import hold_netns

MINIRUN_NET = os.environ["MINIRUN_NET"]
WORK = sys.argv[1]
N = int(sys.argv[2])


def hook(verb, state):
    t0 = time.perf_counter()
    p = subprocess.run([MINIRUN_NET, verb], input=json.dumps(state).encode(), capture_output=True)
    ms = (time.perf_counter() - t0) * 1000
    if p.returncode != 0:
        raise RuntimeError(f"{verb} {state['id']}: {p.stderr.decode()}")
    return ms


def main():
    samples = {k: [] for k in ("bridge_attach", "overlay_attach", "bridge_detach", "overlay_detach")}
    procs = []
    for i in range(1, N + 1):
        order = ["bridge", "overlay"] if i % 2 else ["overlay", "bridge"]
        for kind in order:
            p = hold_netns(("--net",))
            procs.append(p)
            cid = f"{kind}{i}"
            bundle = f"{WORK}/{cid}"
            os.makedirs(f"{bundle}/rootfs/etc", exist_ok=True)
            with open(f"{bundle}/config.json", "w") as f:
                json.dump({"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "hostname": cid}, f)
            state = {"id": cid, "pid": p.pid, "bundle": bundle, "annotations": {
                "org.minirun.net.mode": "bridge",
                "org.minirun.net.network": "lan" if kind == "bridge" else "ov"}}
            samples[f"{kind}_attach"].append(hook("attach", state))
    for i in range(1, N + 1):
        order = ["bridge", "overlay"] if i % 2 else ["overlay", "bridge"]
        for kind in order:
            samples[f"{kind}_detach"].append(hook("detach", {"id": f"{kind}{i}", "pid": 0}))
    for p in procs:
        p.kill()
        p.wait()
    print(json.dumps({k: {"median": statistics.median(v), "p90": sorted(v)[int(len(v) * 0.9) - 1],
                          "n": len(v)} for k, v in samples.items()}))


if __name__ == "__main__":
    main()
