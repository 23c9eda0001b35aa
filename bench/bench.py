#!/usr/bin/env python3
"""minirun against runc, crun and the CNI plugins, side by side.

Run by bench/run.sh inside a sandbox of fresh mount, network and pid
namespaces (the sandbox's network namespace stands in for the host; traffic
goes only to addresses inside it). Every comparison is interleaved in one
invocation (A B C, B C A, ...) so that the machine's drift is shared.

Environment: BENCH_OUT (results directory), MINIRUN, MINIRUN_NET (binaries),
CONFIG_FLOOR (bench/config_floor.c, built), BUNDLES (built by bundles/build.sh), BENCH_RUNS (lifecycle samples, default
40; also `exec` samples), BENCH_LONE_RUNS (`run` after a pause, default 10),
BENCH_CONTAINERS (attach series length, default 300), BENCH_DOCKER_RUNS
(docker run samples, default 20), BENCH_ONLY (one of lifecycle, attach, data,
spoof, ipv6, ports, wall, wall6, docker, overlay, cni, cri: that part alone, the others kept
from an earlier results.json), BENCH_IPV6_CONTAINERS (default 100),
BENCH_SPOOF_CONTAINERS (default 100), BENCH_WALL_CONTAINERS (default 4000),
CNI_PATH.
"""

import json
import resource
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

from holders import hold_netns

OUT = os.environ["BENCH_OUT"]
MINIRUN = os.environ["MINIRUN"]
MINIRUN_NET = os.environ["MINIRUN_NET"]
CONFIG_FLOOR = os.environ["CONFIG_FLOOR"]
BUNDLES = os.environ["BUNDLES"]
RUNS = int(os.environ.get("BENCH_RUNS", "40"))
CONTAINERS = int(os.environ.get("BENCH_CONTAINERS", "300"))
DOCKER_RUNS = int(os.environ.get("BENCH_DOCKER_RUNS", "20"))
LONE_RUNS = int(os.environ.get("BENCH_LONE_RUNS", "10"))
ONLY = os.environ.get("BENCH_ONLY", "")
CNI_PATH = os.environ.get("CNI_PATH", "/usr/lib/cni")
WORK = "/run/bench"
QUIET = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def children_cpu_ms():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r.ru_utime + r.ru_stime) * 1000


def timed(cmd, stdin=None):
    """Milliseconds of one command, which must succeed, wall clock and CPU
    (its own and its children's, user and system). Its output goes to a
    file, not a pipe: `create` hands its stdio to the container, and a pipe
    would stay open as long as the container lives."""
    with open(f"{WORK}/last-stderr", "w+b") as err:
        cpu0 = children_cpu_ms()
        t0 = time.perf_counter()
        p = subprocess.run(cmd, input=stdin, stdout=subprocess.DEVNULL, stderr=err)
        ms = (time.perf_counter() - t0) * 1000
        cpu = children_cpu_ms() - cpu0
        if p.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{cmd}: exit {p.returncode}: {err.read().decode(errors='replace')}")
    return ms, cpu


def machine_busy_pct(seconds=5):
    """How busy the whole machine's CPUs are over `seconds` (/proc/stat:
    every process of the machine, not only the sandbox's), as a percentage."""
    def sample():
        v = list(map(int, open("/proc/stat").readline().split()[1:]))
        return sum(v), v[3] + v[4]
    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 100 * (1 - (idle1 - idle0) / (total1 - total0))


def summary(samples):
    s = sorted(samples)
    return {
        "median": statistics.median(s),
        "min": s[0],
        "max": s[-1],
        "n": len(s),
    }


def rotations(items, i):
    k = i % len(items)
    return items[k:] + items[:k]


def version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        return "?"


# ---------------------------------------------------------------- lifecycle

RUNTIMES = {
    "minirun": [MINIRUN, "--root", f"{WORK}/minirun"],
    "runc": ["runc", "--root", f"{WORK}/runc"],
    "crun": ["crun", "--root", f"{WORK}/crun"],
}


def true_bundle():
    """The hello bundle running /bin/true, its default namespaces, no network mode."""
    dest = f"{WORK}/true-bundle"
    shutil.copytree(f"{BUNDLES}/hello", dest, symlinks=True)
    with open(f"{dest}/config.json") as f:
        config = json.load(f)
    config["process"]["args"] = ["/bin/true"]
    config.pop("annotations", None)
    with open(f"{dest}/config.json", "w") as f:
        json.dump(config, f)
    kinds = [n["type"] for n in config["linux"]["namespaces"]]
    return dest, kinds


def floor_command(bundle, kinds):
    flags = {"pid": "--pid", "network": "--net", "ipc": "--ipc", "uts": "--uts",
             "mount": "--mount", "cgroup": "--cgroup", "user": "--user"}
    return ["unshare", "--fork"] + [flags[k] for k in kinds if k in flags] + [f"{bundle}/rootfs/bin/true"]


# What bench/config_floor.c does for this bundle, written out there in C.
CONFIG_FLOOR_ASSUMES = {
    "namespaces": ["pid", "network", "ipc", "uts", "mount", "cgroup"],
    "hostname": "hello",
    "mounts": ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"],
    "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                    "/proc/scsi"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
}


def config_floor_command(bundle):
    """bench/config_floor.c: the system calls this bundle's config asks of any
    runtime, without the runtime. Refuses a config it was not written for."""
    with open(f"{bundle}/config.json") as f:
        config = json.load(f)
    linux, process = config["linux"], config["process"]
    seen = {
        "namespaces": [n["type"] for n in linux["namespaces"]],
        "hostname": config.get("hostname"),
        "mounts": [m["destination"] for m in config["mounts"]],
        "maskedPaths": linux.get("maskedPaths"),
        "readonlyPaths": linux.get("readonlyPaths"),
        "bounding": sorted(process["capabilities"]["bounding"]),
        "rlimits": process.get("rlimits"),
    }
    for key, want in CONFIG_FLOOR_ASSUMES.items():
        if seen[key] != want:
            raise RuntimeError(f"bench/config_floor.c does not do this bundle's {key}: {seen[key]}")
    return lambda i: [CONFIG_FLOOR, f"{bundle}/rootfs", f"config-floor-{i}"]


def peak_rss_kb(cmd):
    out = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, capture_output=True, text=True)
    return int(out.stderr.strip().splitlines()[-1])


def lifecycle():
    bundle, kinds = true_bundle()
    floor = floor_command(bundle, kinds)
    config_floor = config_floor_command(bundle)
    results = {"run": {}, "create": {}, "start": {}, "delete": {}, "rss_kb": {}}
    names = list(RUNTIMES) + ["floor", "config_floor"]
    samples = {k: {n: [] for n in names} for k in ("run", "create", "start", "delete")}
    for i in range(RUNS):
        for name in rotations(names, i):
            if name == "floor":
                samples["run"]["floor"].append(timed(floor)[0])
                continue
            if name == "config_floor":
                samples["run"]["config_floor"].append(timed(config_floor(i))[0])
                continue
            rt = RUNTIMES[name]
            cid = f"{name}-run-{i}"
            samples["run"][name].append(timed(rt + ["run", "--bundle", bundle, cid])[0])
            subprocess.run(rt + ["delete", "--force", cid], **QUIET)
        for name in rotations(list(RUNTIMES), i):
            rt = RUNTIMES[name]
            cid = f"{name}-csd-{i}"
            samples["create"][name].append(timed(rt + ["create", "--bundle", bundle, cid])[0])
            samples["start"][name].append(timed(rt + ["start", cid])[0])
            samples["delete"][name].append(timed(rt + ["delete", "--force", cid])[0])
    for phase, per in samples.items():
        results[phase] = {n: summary(v) for n, v in per.items() if v}
    for name, rt in RUNTIMES.items():
        rss = [peak_rss_kb(rt + ["run", "--bundle", bundle, f"{name}-rss-{j}"]) for j in range(5)]
        results["rss_kb"][name] = max(rss)
    results["run_phases"] = run_phases(bundle)
    results["lone_run"] = lone_runs(bundle)
    results["exec"] = exec_runs()
    return results


def run_phases(bundle):
    """Where minirun's `run` spends its time: RUNS more runs with
    MINIRUN_TRACE (runtime/src/trace.rs), each line's time since the one
    before it in the whole run's timeline (the runtime's and the init's lines
    merged), as medians in µs. The start of the process is the gap from the
    spawn to its first line, the exit the gap from its last line to the
    end of the wait; a phase met twice in a run (the process start after the
    sealed re-exec) is numbered."""
    trace = f"{WORK}/trace"
    gaps = {}
    order = []
    for i in range(RUNS):
        if os.path.exists(trace):
            os.remove(trace)
        env = dict(os.environ, MINIRUN_TRACE=trace)
        t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        run(RUNTIMES["minirun"] + ["run", "--bundle", bundle, f"phases-{i}"], env=env, **QUIET)
        t1 = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        lines = []
        with open(trace) as f:
            for line in f:
                at, _pid, phase = line.rstrip("\n").split(" ", 2)
                lines.append((int(at), phase))
        lines.sort(key=lambda l: l[0])
        seen = {}
        prev = t0
        for at, phase in lines + [(t1, "exit")]:
            seen[phase] = seen.get(phase, 0) + 1
            name = phase if seen[phase] == 1 else f"{phase} ({seen[phase]})"
            if name not in gaps:
                gaps[name] = []
                order.append(name)
            gaps[name].append(at - prev)
            prev = at
        gaps.setdefault("total", []).append(t1 - t0)
    order.append("total")
    return [{"phase": n, "median_us": statistics.median(gaps[n]), "n": len(gaps[n])} for n in order]


def lone_runs(bundle):
    """`run` as a user starts one container: after a pause, so nothing the
    previous run left in flight in the kernel (a cgroup move within the
    last RCU grace period, say) makes this one cheaper."""
    samples = {n: [] for n in RUNTIMES}
    for i in range(LONE_RUNS):
        for name in rotations(list(RUNTIMES), i):
            time.sleep(0.3)
            cid = f"{name}-lone-{i}"
            samples[name].append(timed(RUNTIMES[name] + ["run", "--bundle", bundle, cid])[0])
            subprocess.run(RUNTIMES[name] + ["delete", "--force", cid], **QUIET)
    return {n: summary(v) for n, v in samples.items()}


def exec_runs():
    """`exec` of /bin/true in a running container, per runtime, interleaved."""
    dest = f"{WORK}/sleep-bundle"
    shutil.copytree(f"{BUNDLES}/hello", dest, symlinks=True)
    with open(f"{dest}/config.json") as f:
        config = json.load(f)
    config["process"]["args"] = ["/bin/sleep", "1000"]
    config.pop("annotations", None)
    with open(f"{dest}/config.json", "w") as f:
        json.dump(config, f)
    for name, rt in RUNTIMES.items():
        run(rt + ["run", "-d", "--bundle", dest, f"{name}-exec"], stdin=subprocess.DEVNULL, **QUIET)
    samples = {n: [] for n in RUNTIMES}
    try:
        for i in range(RUNS):
            for name in rotations(list(RUNTIMES), i):
                samples[name].append(timed(RUNTIMES[name] + ["exec", f"{name}-exec", "/bin/true"])[0])
    finally:
        for name, rt in RUNTIMES.items():
            subprocess.run(rt + ["delete", "--force", f"{name}-exec"], **QUIET)
    return {n: summary(v) for n, v in samples.items()}


# ------------------------------------------------------------ network attach

def make_netns(name):
    run(["ip", "netns", "add", name])
    p = subprocess.Popen(["ip", "netns", "exec", name, "sleep", "3600"])
    # ip enters the namespace, then execs sleep.
    while True:
        try:
            with open(f"/proc/{p.pid}/comm") as f:
                if f.read().strip() == "sleep":
                    return p
        except OSError:
            pass
        time.sleep(0.0005)


def cni_config(kind, prev=None, port=None):
    if kind == "bridge":
        conf = {"cniVersion": "1.0.0", "name": "benchnet", "type": "bridge", "bridge": "cni0",
                "isGateway": True, "ipMasq": True, "hairpinMode": True,
                "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.0.0/16"}]],
                         "routes": [{"dst": "0.0.0.0/0"}], "dataDir": f"{WORK}/cni-ipam"}}
    else:
        conf = {"cniVersion": "1.0.0", "name": "benchnet", "type": "portmap", "snat": True,
                "capabilities": {"portMappings": True},
                "runtimeConfig": {"portMappings": [{"hostPort": port, "containerPort": 80, "protocol": "tcp"}]}}
    if prev is not None:
        conf["prevResult"] = prev
    return json.dumps(conf).encode()


def cni(command, kind, cid, netns, prev=None, port=None):
    env = dict(os.environ, CNI_COMMAND=command, CNI_CONTAINERID=cid, CNI_NETNS=netns,
               CNI_IFNAME="eth0", CNI_PATH=CNI_PATH)
    t0 = time.perf_counter()
    p = subprocess.run([f"{CNI_PATH}/{kind}"], input=cni_config(kind, prev, port), env=env, capture_output=True)
    ms = (time.perf_counter() - t0) * 1000
    if p.returncode != 0:
        raise RuntimeError(f"CNI {kind} {command} {cid}: {p.stdout.decode()} {p.stderr.decode()}")
    return ms, (json.loads(p.stdout) if p.stdout.strip() else None)


def minirun_state(cid, pid, bundle, port):
    return json.dumps({"id": cid, "pid": pid, "bundle": bundle, "annotations": {
        "org.minirun.net.mode": "bridge", "org.minirun.net.ports": f"{port}:80"}}).encode()


def attach_series():
    rows = []
    procs = []
    cni_results = {}
    for i in range(1, CONTAINERS + 1):
        m_ns, c_ns = f"m{i}", f"c{i}"
        m_proc, c_proc = make_netns(m_ns), make_netns(c_ns)
        procs += [m_proc, c_proc]
        bundle = f"{WORK}/b{i}"
        os.makedirs(f"{bundle}/rootfs/etc")
        with open(f"{bundle}/config.json", "w") as f:
            json.dump({"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "hostname": f"m{i}"}, f)
        row = {"container": i}
        for side in (["minirun", "cni"] if i % 2 else ["cni", "minirun"]):
            if side == "minirun":
                row["minirun_attach_ms"] = timed([MINIRUN_NET, "attach"],
                                                 minirun_state(m_ns, m_proc.pid, bundle, 20000 + i))[0]
            else:
                ms1, res = cni("ADD", "bridge", c_ns, f"/run/netns/{c_ns}")
                ms2, res2 = cni("ADD", "portmap", c_ns, f"/run/netns/{c_ns}", prev=res, port=40000 + i)
                cni_results[i] = (res, res2 or res)
                row["cni_attach_ms"] = ms1 + ms2
        rows.append(row)
        if i % 50 == 0:
            log(f"  attached {i}")
    for row in rows:
        i = row["container"]
        m_ns, c_ns = f"m{i}", f"c{i}"
        for side in (["minirun", "cni"] if i % 2 else ["cni", "minirun"]):
            if side == "minirun":
                row["minirun_detach_ms"] = timed([MINIRUN_NET, "detach"],
                                                 json.dumps({"id": m_ns, "pid": 0}).encode())[0]
            else:
                bridge_res, port_res = cni_results[i]
                ms1, _ = cni("DEL", "portmap", c_ns, f"/run/netns/{c_ns}", prev=port_res, port=40000 + i)
                ms2, _ = cni("DEL", "bridge", c_ns, f"/run/netns/{c_ns}", prev=bridge_res)
                row["cni_detach_ms"] = ms1 + ms2
    for p in procs:
        p.kill()
        p.wait()
    for i in range(1, CONTAINERS + 1):
        run(["ip", "netns", "del", f"m{i}"])
        run(["ip", "netns", "del", f"c{i}"])
    return rows


def minirun_cni(command, cid, port=None):
    """minirun-net as a CNI plugin, invoked as containerd invokes one."""
    conf = {"cniVersion": "1.0.0", "name": "benchnet", "type": "minirun-net", "network": "bridge",
            "capabilities": {"portMappings": True}}
    if port is not None:
        conf["runtimeConfig"] = {"portMappings": [{"hostPort": port, "containerPort": 80, "protocol": "tcp"}]}
    env = dict(os.environ, CNI_COMMAND=command, CNI_CONTAINERID=cid, CNI_NETNS=f"/run/netns/{cid}",
               CNI_IFNAME="eth0", CNI_PATH=CNI_PATH)
    t0 = time.perf_counter()
    p = subprocess.run([MINIRUN_NET], input=json.dumps(conf).encode(), env=env, capture_output=True)
    ms = (time.perf_counter() - t0) * 1000
    if p.returncode != 0:
        raise RuntimeError(f"minirun-net CNI {command} {cid}: {p.stdout.decode()} {p.stderr.decode()}")
    return ms


def cni_series():
    """Pods 1..N: minirun-net's CNI ADD (one published port) against the
    reference chain (bridge + host-local, then portmap), alternating; then
    every DEL."""
    rows, procs, ref = [], [], {}
    for i in range(1, CONTAINERS + 1):
        m_ns, c_ns = f"pm{i}", f"pc{i}"
        procs += [make_netns(m_ns), make_netns(c_ns)]
        row = {"container": i}
        for side in (["minirun", "cni"] if i % 2 else ["cni", "minirun"]):
            if side == "minirun":
                row["minirun_attach_ms"] = minirun_cni("ADD", m_ns, 30000 + i)
            else:
                ms1, res = cni("ADD", "bridge", c_ns, f"/run/netns/{c_ns}")
                ms2, res2 = cni("ADD", "portmap", c_ns, f"/run/netns/{c_ns}", prev=res, port=45000 + i)
                ref[i] = (res, res2 or res)
                row["cni_attach_ms"] = ms1 + ms2
        rows.append(row)
        if i % 50 == 0:
            log(f"  pods {i}")
    for row in rows:
        i = row["container"]
        for side in (["minirun", "cni"] if i % 2 else ["cni", "minirun"]):
            if side == "minirun":
                row["minirun_detach_ms"] = minirun_cni("DEL", f"pm{i}")
            else:
                bridge_res, port_res = ref[i]
                ms1, _ = cni("DEL", "portmap", f"pc{i}", f"/run/netns/pc{i}", prev=port_res, port=45000 + i)
                ms2, _ = cni("DEL", "bridge", f"pc{i}", f"/run/netns/pc{i}", prev=bridge_res)
                row["cni_detach_ms"] = ms1 + ms2
    for p in procs:
        p.kill()
        p.wait()
    for i in range(1, CONTAINERS + 1):
        run(["ip", "netns", "del", f"pm{i}"])
        run(["ip", "netns", "del", f"pc{i}"])
    return rows


def buckets(rows):
    n = len(rows)
    spans = [(1, 10), (91, 110), (191, 210), (n - 9, n)]
    out = []
    for lo, hi in spans:
        if hi > n or lo < 1:
            continue
        sel = [r for r in rows if lo <= r["container"] <= hi]
        out.append({"containers": f"{lo}-{hi}", **{
            k: statistics.median(r[k] for r in sel)
            for k in ("minirun_attach_ms", "cni_attach_ms", "minirun_detach_ms", "cni_detach_ms")}})
    return out


# ------------------------------------------------------------------ data path

def iperf(args):
    p = run(["iperf3", "-J"] + args, capture_output=True, text=True)
    return json.loads(p.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9


def data_path():
    run(["ip", "link", "add", "benchhost", "type", "bridge"])
    run(["ip", "addr", "add", "198.51.100.2/24", "dev", "benchhost"])
    run(["ip", "link", "set", "benchhost", "up"])
    cid = "iperf"
    run([MINIRUN, "--root", f"{WORK}/minirun", "run", "-d", "-p", "5201:5201",
         "--bundle", f"{BUNDLES}/sleeper", cid], **QUIET)
    state = json.loads(run([MINIRUN, "--root", f"{WORK}/minirun", "state", cid],
                           capture_output=True).stdout)
    ip = state["network"]["ipAddress"]
    server = subprocess.Popen(["nsenter", "-t", str(state["pid"]), "-n", "iperf3", "-s"], **QUIET)
    time.sleep(0.5)
    samples = {"direct": [], "published": []}
    for i in range(3):
        for name in rotations(["direct", "published"], i):
            target = ip if name == "direct" else "198.51.100.2"
            samples[name].append(iperf(["-c", target, "-p", "5201", "-t", "3"]))
    server.kill()
    server.wait()
    run([MINIRUN, "--root", f"{WORK}/minirun", "delete", "--force", cid])
    run(["ip", "link", "del", "benchhost"])
    return {k: summary(v) for k, v in samples.items()}

# ---------------------------------------------------------------- anti-spoofing

SPOOF_CONTAINERS = int(os.environ.get("BENCH_SPOOF_CONTAINERS", "100"))


def spoof_bench():
    """What anti-spoofing costs: attach and detach on two user networks, one
    with it (the default) and one with -o anti_spoofing=false, alternating;
    then TCP throughput out of a container on each (iperf3 -R: the container
    sends, so the bulk crosses its guarded bridge port)."""
    for name, subnet, opts in (("guarded", "10.150.0.0/16", []),
                               ("open", "10.151.0.0/16", ["-o", "anti_spoofing=false"])):
        run([MINIRUN, "network", "create", "--subnet", subnet] + opts + [name], **QUIET)
    samples = {k: [] for k in ("guarded_attach", "open_attach", "guarded_detach", "open_detach")}
    procs = []
    bundle = f"{WORK}/spoof-bundle"
    os.makedirs(f"{bundle}/rootfs/etc")
    with open(f"{bundle}/config.json", "w") as f:
        json.dump({"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "hostname": "s"}, f)

    def state(cid, pid, network):
        return json.dumps({"id": cid, "pid": pid, "bundle": bundle, "annotations": {
            "org.minirun.net.mode": "bridge", "org.minirun.net.network": network}}).encode()

    ids = []
    for i in range(SPOOF_CONTAINERS):
        for network in rotations(["guarded", "open"], i):
            cid = f"s{network[0]}{i}"
            p = make_netns(cid)
            procs.append(p)
            samples[f"{network}_attach"].append(timed([MINIRUN_NET, "attach"], state(cid, p.pid, network))[0])
            ids.append((cid, network))
    for i, (cid, network) in enumerate(ids):
        samples[f"{network}_detach"].append(
            timed([MINIRUN_NET, "detach"], json.dumps({"id": cid, "pid": 0}).encode())[0])
    for p in procs:
        p.kill()
        p.wait()
    for cid, _ in ids:
        run(["ip", "netns", "del", cid])
    throughput = {"guarded": [], "open": []}
    servers = []
    for network in ("guarded", "open"):
        cid = f"iperf-{network}"
        run([MINIRUN, "--root", f"{WORK}/minirun", "run", "-d", "--net", network,
             "--bundle", f"{BUNDLES}/sleeper", cid], **QUIET)
        st = json.loads(run([MINIRUN, "--root", f"{WORK}/minirun", "state", cid], capture_output=True).stdout)
        servers.append((cid, st["network"]["ipAddress"],
                        subprocess.Popen(["nsenter", "-t", str(st["pid"]), "-n", "iperf3", "-s"], **QUIET)))
    time.sleep(0.5)
    for i in range(3):
        for cid, ip, _ in rotations(servers, i):
            network = cid.split("-", 1)[1]
            throughput[network].append(iperf(["-c", ip, "-t", "3", "-R"]))
    for cid, _, server in servers:
        server.kill()
        server.wait()
        run([MINIRUN, "--root", f"{WORK}/minirun", "delete", "--force", cid])
    for name in ("guarded", "open"):
        run([MINIRUN, "network", "rm", name], **QUIET)
    out = {k: summary(v) for k, v in samples.items()}
    out["throughput_gbps"] = {k: summary(v) for k, v in throughput.items()}
    return out


# ------------------------------------------------------------------------ IPv6

IPV6_CONTAINERS = int(os.environ.get("BENCH_IPV6_CONTAINERS", "100"))


def ipv6_bench():
    """What IPv6 costs: attach and detach with one published port on an
    IPv4 network and on a dual-stack one, alternating; then TCP throughput
    from the host to a dual-stack container over IPv6 directly and through
    a port published on the host's IPv6 address (and IPv4 direct, for
    scale)."""
    run([MINIRUN, "network", "create", "--subnet", "10.152.0.0/16", "four"], **QUIET)
    run([MINIRUN, "network", "create", "--ipv6", "--subnet", "10.153.0.0/16",
         "--subnet", "fd53::/64", "dual"], **QUIET)
    bundle = f"{WORK}/v6-bundle"
    os.makedirs(f"{bundle}/rootfs/etc")
    with open(f"{bundle}/config.json", "w") as f:
        json.dump({"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "hostname": "v"}, f)

    def state(cid, pid, network, port):
        return json.dumps({"id": cid, "pid": pid, "bundle": bundle, "annotations": {
            "org.minirun.net.mode": "bridge", "org.minirun.net.network": network,
            "org.minirun.net.ports": f"{port}:80"}}).encode()

    samples = {k: [] for k in ("four_attach", "dual_attach", "four_detach", "dual_detach")}
    procs, ids = [], []
    for i in range(IPV6_CONTAINERS):
        for network in rotations(["four", "dual"], i):
            cid = f"v{network[0]}{i}"
            p = make_netns(cid)
            procs.append(p)
            port = (21000 if network == "four" else 22000) + i
            samples[f"{network}_attach"].append(timed([MINIRUN_NET, "attach"], state(cid, p.pid, network, port))[0])
            ids.append((cid, network))
    for cid, network in ids:
        samples[f"{network}_detach"].append(
            timed([MINIRUN_NET, "detach"], json.dumps({"id": cid, "pid": 0}).encode())[0])
    for p in procs:
        p.kill()
        p.wait()
    for cid, _ in ids:
        run(["ip", "netns", "del", cid])

    run(["ip", "link", "add", "benchhost6", "type", "bridge"])
    run(["ip", "addr", "add", "198.51.100.2/24", "dev", "benchhost6"])
    run(["ip", "-6", "addr", "add", "2001:db8:2::2/64", "dev", "benchhost6", "nodad"])
    run(["ip", "link", "set", "benchhost6", "up"])
    cid = "iperf6"
    run([MINIRUN, "--root", f"{WORK}/minirun", "run", "-d", "--net", "dual", "-p", "5201:5201",
         "--bundle", f"{BUNDLES}/sleeper", cid], **QUIET)
    st = json.loads(run([MINIRUN, "--root", f"{WORK}/minirun", "state", cid], capture_output=True).stdout)
    server = subprocess.Popen(["nsenter", "-t", str(st["pid"]), "-n", "iperf3", "-s"], **QUIET)
    time.sleep(0.5)
    targets = {"ipv6_direct": st["network"]["ip6Address"], "ipv6_published": "2001:db8:2::2",
               "ipv4_direct": st["network"]["ipAddress"]}
    throughput = {k: [] for k in targets}
    for i in range(3):
        for name in rotations(list(targets), i):
            throughput[name].append(iperf(["-c", targets[name], "-p", "5201", "-t", "3"]))
    server.kill()
    server.wait()
    run([MINIRUN, "--root", f"{WORK}/minirun", "delete", "--force", cid])
    run(["ip", "link", "del", "benchhost6"])
    for name in ("four", "dual"):
        run([MINIRUN, "network", "rm", name], **QUIET)
    out = {k: summary(v) for k, v in samples.items()}
    out["throughput_gbps"] = {k: summary(v) for k, v in throughput.items()}
    return out


# ---------------------------------------------------------------------- Docker

DOCKER_SOCK = "unix:///run/bench-docker.sock"
DOCKER = ["/usr/bin/docker", "-H", DOCKER_SOCK]
DOCKER_RUNTIMES = ["minirun", "runc", "crun"]


def start_dockerd(cgroup_parent, name="docker", config=None):
    """dockerd (and the containerd it starts) in the bench's sandbox, with
    its own data and exec roots under `name`, `config` in its daemon.json
    (default: minirun and crun registered beside its built-in runc), and an
    image made from the busybox bundle's rootfs."""
    root = f"{WORK}/{name}"
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    run(["mount", "-t", "tmpfs", "tmpfs", "/etc/docker"])  # its key.json
    if config is None:
        config = {"runtimes": {"minirun": {"path": MINIRUN}, "crun": {"path": shutil.which("crun")}}}
    with open(f"{root}/daemon.json", "w") as f:
        json.dump({**config, "cgroup-parent": cgroup_parent}, f)
    logf = open(f"{root}/dockerd.log", "w")
    d = subprocess.Popen(["dockerd", "--config-file", f"{root}/daemon.json", "--data-root", f"{root}/data",
                          "--exec-root", f"/run/bench-{name}", "--pidfile", f"/run/bench-{name}.pid",
                          "-H", DOCKER_SOCK], stdout=logf, stderr=logf)
    for _ in range(150):
        if subprocess.run(DOCKER + ["version"], **QUIET).returncode == 0:
            break
        time.sleep(0.2)
    tar = subprocess.Popen(["tar", "-C", f"{BUNDLES}/hello/rootfs", "-c", "."], stdout=subprocess.PIPE)
    run(DOCKER + ["import", "-", "bench:busybox"], stdin=tar.stdout, **QUIET)
    tar.wait()
    return d


def stop_dockerd(d, cgroup_parent):
    """Stops a dockerd of start_dockerd and removes what it left in the
    sandbox: its cgroup parent, its bridge and its iptables-nft tables."""
    d.terminate()
    d.wait(timeout=60)
    run(["umount", "/etc/docker"])
    remove_cgroup_tree(cgroup_parent)
    subprocess.run(["ip", "link", "del", "docker0"], **QUIET)
    for table in ("ip nat", "ip filter", "ip6 nat", "ip6 filter"):
        subprocess.run(["nft", "delete", "table"] + table.split(), **QUIET)


def failed_run(cmd):
    """Milliseconds of a command that must fail."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, **QUIET)
    if p.returncode == 0:
        raise RuntimeError(f"{cmd}: succeeded, expected a refusal")
    return (time.perf_counter() - t0) * 1000


def cgroup_dirs(parent):
    """The directories below the cgroup parent, in the first v1 hierarchy
    that has it (Docker makes one per container, in every hierarchy)."""
    for h in sorted(os.listdir("/sys/fs/cgroup")):
        path = f"/sys/fs/cgroup/{h}{parent}"
        if os.path.exists(f"{path}/cgroup.procs"):
            return {e.name for e in os.scandir(path) if e.is_dir()}
    return set()


def remove_cgroup_tree(parent):
    """Removes a client's cgroup parent; its last processes (a shim's
    containers) may take a moment to be gone from it."""
    for attempt in range(50):
        try:
            for h in os.listdir("/sys/fs/cgroup"):
                top = f"/sys/fs/cgroup/{h}{parent}"
                if not os.path.exists(f"{top}/cgroup.procs"):  # not the tmpfs hiding cgroup2
                    continue
                for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
                    os.rmdir(dirpath)
            return
        except OSError:
            if attempt == 49:
                raise
            time.sleep(0.1)


def docker_bench():
    cgroup_parent = f"/minirun-bench-{os.getpid()}"
    d = start_dockerd(cgroup_parent)
    docker_version = version(DOCKER + ["version", "--format", "{{.Server.Version}}"])
    ok = {n: [] for n in DOCKER_RUNTIMES}
    refused = {n: [] for n in DOCKER_RUNTIMES}
    left = {n: 0 for n in DOCKER_RUNTIMES}
    try:
        for i in range(DOCKER_RUNS):
            for name in rotations(DOCKER_RUNTIMES, i):
                ok[name].append(timed(DOCKER + ["run", "--rm", "--runtime", name, "bench:busybox", "true"])[0])
            # A value the kernel refuses at create (cpu.rt_runtime_us above
            # what the parent cgroup has): the error path, as Docker sees it.
            for name in rotations(DOCKER_RUNTIMES, i):
                before = cgroup_dirs(cgroup_parent)
                refused[name].append(failed_run(DOCKER + [
                    "run", "--rm", "--runtime", name, "--cap-add", "SYS_NICE",
                    "--cpu-rt-runtime", "10000", "bench:busybox", "true"]))
                left[name] += len(cgroup_dirs(cgroup_parent) - before)
    finally:
        stop_dockerd(d, cgroup_parent)
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "version": docker_version,
            "run": {n: summary(v) for n, v in ok.items()},
            "refused": {n: summary(v) for n, v in refused.items()},
            "refused_cgroups_left": left}


# ------------------------------------------------------------- port ranges

PORT_SWEEP = [1, 100, 1000, 10000, 65535]
# Docker publishes port by port: with its proxy two processes per port
# (moby#11185), without it rules per port (moby#14288). Past these counts a
# run would take this machine's memory or most of an hour: not run, and the
# report says so with the per-port cost measured below them.
DOCKER_SWEEP_MAX = {"proxy": 1000, "no_proxy": 1000}


def port_range(n):
    first = 1 if n == 65535 else 20000
    return f"{first}-{first + n - 1}:{first}-{first + n - 1}"


def proxies_rss_kib():
    """Resident memory of every docker-proxy process (the sandbox's /proc)."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() != "docker-proxy":
                    continue
            with open(f"/proc/{pid}/status") as f:
                total += next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total


def docker_ports(userland_proxy, counts, rounds):
    """`docker run -d -p RANGE` and its removal with one dockerd of the
    bench's own, its proxy on or off."""
    cgroup_parent = f"/minirun-ports-{os.getpid()}"
    d = start_dockerd(cgroup_parent, "docker-ports", {"userland-proxy": userland_proxy})
    out = {}
    try:
        for n in counts:
            runs, removes, rss = [], [], []
            for i in range(rounds):
                runs.append(timed(DOCKER + ["run", "-d", "--name", f"p{n}-{i}", "-p", port_range(n),
                                            "bench:busybox", "sleep", "1000"])[0])
                rss.append(proxies_rss_kib())
                removes.append(timed(DOCKER + ["rm", "-f", f"p{n}-{i}"])[0])
            out[str(n)] = {"run": summary(runs), "remove": summary(removes),
                           "proxies_rss_kib": max(rss)}
            log(f"  docker proxy={userland_proxy} {n} ports: {out[str(n)]['run']['median']:.0f} ms")
    finally:
        stop_dockerd(d, cgroup_parent)
    return out


def port_sweep():
    """Time to `run -d -p A-B:A-B` and to delete, by the number of ports:
    minirun, and Docker with and without its userland proxy."""
    rounds = 3
    minirun = {}
    root = f"{WORK}/minirun-ports"
    for n in PORT_SWEEP:
        runs, deletes = [], []
        for i in range(rounds):
            cid = f"ports{n}-{i}"
            runs.append(timed([MINIRUN, "--root", root, "run", "-d", "-p", port_range(n),
                               "--bundle", f"{BUNDLES}/sleeper", cid])[0])
            deletes.append(timed([MINIRUN, "--root", root, "delete", "--force", cid])[0])
        minirun[str(n)] = {"run": summary(runs), "delete": summary(deletes)}
        log(f"  minirun {n} ports: {minirun[str(n)]['run']['median']:.1f} ms")
    # A 1-port container beside one holding 60,000 ports, against an empty
    # host, alternating.
    empty, crowded = [], []
    for i in range(10):
        for crowd in rotations([False, True], i):
            if crowd:
                run([MINIRUN, "--root", root, "run", "-d", "-p", "2000-61999:2000-61999",
                     "--bundle", f"{BUNDLES}/sleeper", "crowd"], **QUIET)
            (crowded if crowd else empty).append(timed([
                MINIRUN, "--root", root, "run", "-d", "-p", "62000:80",
                "--bundle", f"{BUNDLES}/sleeper", "one"])[0])
            run([MINIRUN, "--root", root, "delete", "--force", "one"])
            if crowd:
                run([MINIRUN, "--root", root, "delete", "--force", "crowd"])
    docker = {}
    for name, proxy in (("proxy", True), ("no_proxy", False)):
        counts = [n for n in PORT_SWEEP if n <= DOCKER_SWEEP_MAX[name]]
        docker[name] = docker_ports(proxy, counts, rounds=1)
    return {"minirun": minirun, "one_port_beside_60000": {"empty": summary(empty), "crowded": summary(crowded)},
            "docker": docker, "docker_max": DOCKER_SWEEP_MAX,
            "docker_version": version(["dockerd", "--version"]).split()[2].rstrip(",")}


# ------------------------------------------------------------------ the bridge wall

WALL = int(os.environ.get("BENCH_WALL_CONTAINERS", "4000"))
WALL_CNI = 1100


def wall_state(cid, pid, bundle, network):
    return json.dumps({"id": cid, "pid": pid, "bundle": bundle, "annotations": {
        "org.minirun.net.mode": "bridge", "org.minirun.net.network": network}}).encode()


def unanswered(targets, pid=None):
    """Those of `targets` that answer no ping (one each, eight at a time,
    and three more for those that did not), from the host or from the
    network namespace of `pid`."""
    from concurrent.futures import ThreadPoolExecutor
    pre = ["nsenter", "-t", str(pid), "-n"] if pid else []

    def pinged(count):
        def one(ip):
            return subprocess.run(pre + ["busybox", "ping", "-c", count, "-W2", ip], **QUIET).returncode == 0
        return one
    with ThreadPoolExecutor(8) as pool:
        silent = [ip for ip, ok in zip(targets, pool.map(pinged("1"), targets)) if not ok]
        return [ip for ip, ok in zip(silent, pool.map(pinged("3"), silent)) if not ok]


def wall_attach(ns, network):
    """One container of a wall series: a holder in namespaces of its own, a
    bundle, and `minirun-net attach`. Returns the holder, the attach's wall
    and CPU ms, and the hook's record of it."""
    holder = hold_netns()
    bundle = f"{WORK}/{ns}"
    os.makedirs(f"{bundle}/rootfs/etc")
    with open(f"{bundle}/config.json", "w") as f:
        json.dump({"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "hostname": ns}, f)
    ms, cpu_ms = timed([MINIRUN_NET, "attach"], wall_state(ns, holder.pid, bundle, network))
    with open(f"{os.environ['MINIRUN_NET_DIR']}/containers/{ns}.json") as f:
        return holder, ms, cpu_ms, json.load(f)


def wall_end(names, procs):
    """The holders and bundles of wall_attach'ed containers go (after their
    detaches)."""
    for p in procs:
        p.kill()
        p.wait()
    for name in names:
        shutil.rmtree(f"{WORK}/{name}")


def wall_names(prefix):
    return [f"{prefix}{i}" for i in range(1, WALL + 1)]


WALL_PAIRS = 100


def wall_pairs(network, prefix, subnet):
    """With the network full: WALL_PAIRS more attaches to it, each paired
    with an attach to a network created empty for the purpose, the two
    alternating. Both halves of a pair meet the same machine (this VM's
    agent, whose load grows with the processes the series made, inflates
    every later attach alike), so their ratio is what the network's size
    itself costs. Everything it attached is detached again."""
    empty = f"{prefix}-empty"
    run([MINIRUN, "network", "create", "--subnet", subnet, empty], **QUIET)
    full_ms, full_cpu, empty_ms, empty_cpu, procs, names = [], [], [], [], [], []
    for k in range(1, WALL_PAIRS + 1):
        for side in rotations(["full", "empty"], k):
            name = f"{prefix}{side[0]}{k}"
            holder, ms, cpu_ms, _ = wall_attach(name, network if side == "full" else empty)
            procs.append(holder)
            names.append(name)
            (full_ms if side == "full" else empty_ms).append(ms)
            (full_cpu if side == "full" else empty_cpu).append(cpu_ms)
    for name in names:
        run([MINIRUN_NET, "detach"], input=json.dumps({"id": name, "pid": 0}).encode(), **QUIET)
    wall_end(names, procs)
    run([MINIRUN, "network", "rm", empty], **QUIET)
    out = {"pairs": WALL_PAIRS,
           "full_ms": statistics.median(full_ms), "empty_ms": statistics.median(empty_ms),
           "full_cpu_ms": statistics.median(full_cpu), "empty_cpu_ms": statistics.median(empty_cpu)}
    log(f"  {network}: {WALL_PAIRS} pairs, attach on the full network / an empty one: "
        f"{out['full_ms'] / out['empty_ms']:.2f}x wall, {out['full_cpu_ms'] / out['empty_cpu_ms']:.2f}x CPU")
    return out


def wall_series(network, prefix, empty_subnet):
    """Attaches WALL containers (the hook alone, as attach_series) to one
    network, checks that every one answers the host and that the last
    reaches the first, times attaches to it against attaches to an empty
    network (wall_pairs), then detaches them. Returns per-container ms."""
    attach, cpu, detach, procs, ips = [], [], [], [], []
    busy_before = machine_busy_pct()
    for i in range(1, WALL + 1):
        holder, ms, cpu_ms, record = wall_attach(f"{prefix}{i}", network)
        procs.append(holder)
        attach.append(ms)
        cpu.append(cpu_ms)
        ips.append(record["ipAddress"])
        if i % 500 == 0:
            log(f"  {network}: attached {i}, {statistics.median(attach[-100:]):.1f} ms")
    # With nothing of the sandbox running: what the machine itself spends
    # on WALL more processes (its agent scans them all).
    busy = {"before": busy_before, "with_all": machine_busy_pct()}
    log(f"  {network}: the machine's CPUs busy {busy['before']:.1f}% before, {busy['with_all']:.1f}% with all attached")
    gateway = json.load(open(f"{os.environ['MINIRUN_NET_DIR']}/containers/{prefix}1.json"))["gateway"]
    reach = {"host_unanswered": unanswered(ips),
             "last_to_first": not unanswered([ips[0]], procs[-1].pid),
             "last_to_gateway": not unanswered([gateway], procs[-1].pid),
             "bridges": sum(1 for l in run(["ip", "-o", "link", "show", "type", "bridge"], capture_output=True,
                                           text=True).stdout.splitlines())}
    log(f"  {network}: {reach}")
    reach["pairs"] = wall_pairs(network, prefix, empty_subnet)
    for i in range(1, WALL + 1):
        detach.append(timed([MINIRUN_NET, "detach"], json.dumps({"id": f"{prefix}{i}", "pid": 0}).encode())[0])
    wall_end(wall_names(prefix), procs)
    reach["machine_busy_pct"] = busy
    return attach, cpu, detach, reach


def cni_wall():
    """The CNI bridge plugin (bridge + host-local) on one /16 until its
    bridge is full."""
    attach, procs, failed = [], [], None
    for i in range(1, WALL_CNI + 1):
        ns = f"cw{i}"
        procs.append(hold_netns())
        try:
            attach.append(cni("ADD", "bridge", ns, f"/proc/{procs[-1].pid}/ns/net")[0])
        except RuntimeError as e:
            failed = {"container": i, "error": str(e).strip()[-200:]}
            break
    log(f"  CNI bridge: {len(attach)} attached, then {failed}")
    for i in range(1, len(attach) + 1):
        cni("DEL", "bridge", f"cw{i}", f"/proc/{procs[i - 1].pid}/ns/net")
    for p in procs:
        p.kill()
        p.wait()
    run(["ip", "link", "del", "cni0"])
    shutil.rmtree(f"{WORK}/cni-ipam", ignore_errors=True)
    return attach, failed


def wall_bench():
    """Containers on one network past a Linux bridge's 1,023 ports: the
    default network and a user-defined one (names resolve on it), and the
    CNI bridge plugin, which stops at the wall."""
    run([MINIRUN, "network", "create", "--subnet", "10.120.0.0/16", "wide"], **QUIET)
    out = {"containers": WALL}
    rows = {}
    for key, network, prefix, empty in (("default", "bridge", "wd", "10.121.0.0/16"),
                                        ("user", "wide", "wu", "10.122.0.0/16")):
        attach, cpu, detach, reach = wall_series(network, prefix, empty)
        rows[key] = (attach, detach, cpu)
        out[key] = {"reach": reach, "buckets": [
            {"containers": f"{lo + 1}-{lo + 100}", "attach_ms": statistics.median(attach[lo:lo + 100]),
             "attach_cpu_ms": statistics.median(cpu[lo:lo + 100]),
             "detach_ms": statistics.median(detach[lo:lo + 100])}
            for lo in list(range(0, WALL - 100, 500)) + [WALL - 100]]}
    run([MINIRUN, "network", "rm", "wide"], **QUIET)
    cni_attach, failed = cni_wall()
    out["cni_bridge"] = {"attached": len(cni_attach), "failed": failed,
                         "first_100_ms": statistics.median(cni_attach[:100])}
    with open(f"{OUT}/wall.csv", "w") as f:
        f.write("container,default_attach_ms,user_attach_ms,cni_attach_ms,default_attach_cpu_ms,user_attach_cpu_ms\n")
        for i in range(WALL):
            c = f"{cni_attach[i]:.3f}" if i < len(cni_attach) else ""
            f.write(f"{i + 1},{rows['default'][0][i]:.3f},{rows['user'][0][i]:.3f},{c},"
                    f"{rows['default'][2][i]:.3f},{rows['user'][2][i]:.3f}\n")
    return out


def backlog_drops():
    """Frames the CPUs' backlogs dropped so far (/proc/net/softnet_stat,
    second column, one line per CPU)."""
    with open("/proc/net/softnet_stat") as f:
        return sum(int(line.split()[1], 16) for line in f)


def wall6_bench():
    """WALL containers (the hook alone) on one dual-stack network, then IPv6
    between far-apart containers (each asks its neighbour's address by a
    neighbour solicitation, multicast), and the frames the CPUs' backlogs
    dropped meanwhile; then every detach."""
    run([MINIRUN, "network", "create", "--ipv6", "--subnet", "10.122.0.0/16", "--subnet", "fd22::/64", "dual"],
        **QUIET)
    procs, ips6, attach = [], [], []
    for i in range(1, WALL + 1):
        holder, ms, _, record = wall_attach(f"w6c{i}", "dual")
        procs.append(holder)
        attach.append(ms)
        ips6.append(record["ip6Address"])
    log(f"  dual: attached {WALL}")

    def reaches(a, b):
        return subprocess.run(["nsenter", "-t", str(procs[a].pid), "-n", "busybox", "ping", "-6", "-c", "3", "-W2",
                               ips6[b]], **QUIET).returncode == 0
    before = backlog_drops()
    pairs = {"last_to_first": (WALL - 1, 0), "first_to_last": (0, WALL - 1),
             "middle_to_last": (WALL // 2, WALL - 1), "last_to_middle": (WALL - 1, WALL // 2 + 7)}
    out = {name: reaches(a, b) for name, (a, b) in pairs.items()}
    out["backlog_drops_during"] = backlog_drops() - before
    out["bridges"] = len(run(["ip", "-o", "link", "show", "type", "bridge"], capture_output=True,
                             text=True).stdout.splitlines())
    out["attach_first_100_ms"] = statistics.median(attach[:100])
    out["attach_last_100_ms"] = statistics.median(attach[-100:])
    out["containers"] = WALL
    log(f"  dual: {out}")
    for i in range(1, WALL + 1):
        subprocess.run([MINIRUN_NET, "detach"], input=json.dumps({"id": f"w6c{i}", "pid": 0}).encode(), **QUIET)
    wall_end(wall_names("w6c"), procs)
    run([MINIRUN, "network", "rm", "dual"], **QUIET)
    return out


# ------------------------------------------------------------------ overlay

def overlay_bench():
    """bench/overlay.sh: a two-host cluster with etcd in this sandbox;
    overlay attach against bridge attach, cross-host throughput and latency
    against the underlay, time until a new container is seen by name."""
    work = f"{WORK}/overlay"
    os.makedirs(work, exist_ok=True)
    bundle = f"{work}/sleeper"
    shutil.copytree(f"{BUNDLES}/sleeper", bundle, symlinks=True)
    env = dict(os.environ, T=work, MINIRUN_BIN=MINIRUN, BUNDLE=bundle, ID="ovbench")
    here = os.path.dirname(os.path.abspath(__file__))
    p = subprocess.run(["bash", f"{here}/overlay.sh"], env=env, capture_output=True, text=True)
    remove_cgroup_tree("/ovbench")
    if p.returncode != 0:
        raise RuntimeError(f"bench/overlay.sh: exit {p.returncode}: {p.stderr}")
    return json.loads(p.stdout)


# ------------------------------------------------------------- containerd CRI

CRI_PODS = int(os.environ.get("BENCH_CRI_PODS", "20"))


def cri_bench():
    """bench/cri.sh: RunPodSandbox + CreateContainer + StartContainer through
    containerd 1.6's CRI, minirun + minirun-net against runc + the reference
    plugins, two containerd instances, pods alternating."""
    work = f"{WORK}/cri"
    os.makedirs(work, exist_ok=True)
    here = os.path.dirname(os.path.abspath(__file__))
    client = os.path.join(os.path.dirname(MINIRUN), "cri-client")
    env = dict(os.environ, T=work, MINIRUN_BIN=MINIRUN, CRI_CLIENT=client, CNI_PATH=CNI_PATH,
               PODS=str(CRI_PODS))
    p = subprocess.run(["bash", f"{here}/cri.sh"], env=env, capture_output=True, text=True)
    if p.stderr.strip():
        log(p.stderr.strip())
    if p.returncode != 0:
        raise RuntimeError(f"bench/cri.sh: exit {p.returncode}: {p.stderr}")
    try:
        remove_cgroup_tree("/bench-cri")
    except OSError as e:
        # The shims' last processes go with the sandbox: run.sh removes it then.
        log(f"cgroup /bench-cri not removed yet: {e}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    os.makedirs(WORK, exist_ok=True)
    results = {
        "machine": {
            "kernel": platform.release(),
            "cpus": os.cpu_count(),
            "minirun": version([MINIRUN, "--version"]),
            "runc": version(["runc", "--version"]),
            "crun": version(["crun", "--version"]),
            "cni_plugins": version(["dpkg-query", "-W", "-f", "${Version}", "containernetworking-plugins"]),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }
    }
    if ONLY:
        # The other parts, and the machine line, stay those of the last full run;
        # the part measured now says when, and with which minirun.
        now = {k: results["machine"][k] for k in ("date", "minirun")}
        with open(f"{OUT}/results.json") as f:
            results = json.load(f)
        results.setdefault("parts_measured_later", {})[ONLY] = now
    if ONLY in ("", "lifecycle"):
        log(f"lifecycle: {RUNS} interleaved rounds")
        results["lifecycle"] = lifecycle()
    if ONLY in ("", "attach"):
        log(f"network attach: {CONTAINERS} containers, minirun-net and CNI interleaved")
        rows = attach_series()
        results["attach_buckets"] = buckets(rows)
        with open(f"{OUT}/attach.csv", "w") as f:
            keys = ["container", "minirun_attach_ms", "cni_attach_ms", "minirun_detach_ms", "cni_detach_ms"]
            f.write(",".join(keys) + "\n")
            for r in rows:
                f.write(",".join(f"{r[k]:.3f}" if k != "container" else str(r[k]) for k in keys) + "\n")
    if ONLY in ("", "data"):
        log("data path: iperf3 direct vs published port")
        results["data_path_gbps"] = data_path()
    if ONLY in ("", "spoof"):
        log(f"anti-spoofing: {SPOOF_CONTAINERS} containers on a guarded and an open network, alternating")
        results["anti_spoofing"] = spoof_bench()
    if ONLY in ("", "ipv6"):
        log(f"IPv6: {IPV6_CONTAINERS} containers on an IPv4 and a dual-stack network, alternating; throughput over IPv6")
        results["ipv6"] = ipv6_bench()
    if ONLY in ("", "ports"):
        log(f"port ranges: {PORT_SWEEP} ports, minirun and Docker with and without its proxy")
        results["port_sweep"] = port_sweep()
    if ONLY in ("", "wall"):
        log(f"the bridge wall: {WALL} containers on the default and a user network; the CNI bridge plugin to its limit")
        results["wall"] = wall_bench()
    if ONLY in ("", "wall6"):
        log(f"the bridge wall over IPv6: {WALL} containers on a dual-stack network")
        results["wall6"] = wall6_bench()
    if ONLY in ("", "docker"):
        log(f"docker: {DOCKER_RUNS} interleaved rounds of docker run --rm, minirun, runc and crun")
        results["docker"] = docker_bench()
    if ONLY in ("", "cni"):
        log(f"CNI: {CONTAINERS} pods, minirun-net as a CNI plugin and the reference chain interleaved")
        results["cni_buckets"] = buckets(cni_series())
    if ONLY in ("", "cri"):
        log(f"containerd CRI: {CRI_PODS} pods each, minirun + minirun-net and runc + CNI plugins alternating")
        results["cri"] = cri_bench()
    if ONLY in ("", "overlay"):
        log("overlay: two hosts and etcd; attach vs bridge, throughput and rtt vs underlay, time to be seen")
        results["overlay"] = overlay_bench()
    with open(f"{OUT}/results.json", "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
