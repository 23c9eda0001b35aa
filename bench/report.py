#!/usr/bin/env python3
"""Turns bench/out/results.json and attach.csv into report.md (the README's
tables) and attach.png (attach cost against the number of containers)."""

import json
import os
import subprocess
import sys

out = sys.argv[1]
with open(f"{out}/results.json") as f:
    r = json.load(f)

lines = []
m = r["machine"]
lines.append(
    f"Measured {m['date']} on {m['cpus']} CPUs, kernel {m['kernel']}: {m['minirun']}, "
    f"{m['runc']}, {m['crun']}, CNI plugins {m['cni_plugins']}."
)
for part, when in sorted(r.get("parts_measured_later", {}).items()):
    lines.append(f"The {part} part measured again {when['date']} ({when['minirun']}).")
lines.append("")

lc = r["lifecycle"]


def cell(s):
    return f"{s['median']:.1f} ({s['min']:.1f}-{s['max']:.1f})"


lines.append("| ms, median (min-max) | minirun | runc | crun | minirun / crun | minirun / runc |")
lines.append("|---|---:|---:|---:|---:|---:|")
for phase in ("run", "create", "start", "delete"):
    p = lc[phase]
    lines.append(
        f"| `{phase}` | {cell(p['minirun'])} | {cell(p['runc'])} | {cell(p['crun'])} | "
        f"{p['minirun']['median'] / p['crun']['median']:.2f} | {p['minirun']['median'] / p['runc']['median']:.2f} |"
    )
floor = lc["run"]["floor"]
lines.append(
    f"| namespace floor (`unshare` of the same namespaces, `/bin/true`) | {cell(floor)} | | | "
    f"minirun / floor: {lc['run']['minirun']['median'] / floor['median']:.2f} | |"
)
config_floor = lc["run"].get("config_floor")
if config_floor:
    lines.append(
        f"| config floor (bench/config_floor.c: this config's system calls, no runtime) | "
        f"{cell(config_floor)} | | | "
        f"minirun / config floor: {lc['run']['minirun']['median'] / config_floor['median']:.2f} | |"
    )
for key, label in (("lone_run", "`run` after a 0.3 s pause"), ("exec", "`exec` of `/bin/true` in a running container")):
    p = lc.get(key)
    if p:
        lines.append(
            f"| {label} | {cell(p['minirun'])} | {cell(p['runc'])} | {cell(p['crun'])} | "
            f"{p['minirun']['median'] / p['crun']['median']:.2f} | {p['minirun']['median'] / p['runc']['median']:.2f} |"
        )
rss = lc["rss_kb"]
lines.append(
    f"| peak RSS of one `run`, KiB | {rss['minirun']} | {rss['runc']} | {rss['crun']} | "
    f"{rss['minirun'] / rss['crun']:.2f} | {rss['minirun'] / rss['runc']:.2f} |"
)
phases = lc.get("run_phases")
if phases:
    n = phases[-1]["n"]
    lines.append("")
    lines.append(
        f"Where minirun's `run` goes (`MINIRUN_TRACE`, {n} more runs; each phase ends at its "
        "line, the runtime's and the init's merged in time; medians, so they need not add up):"
    )
    lines.append("")
    lines.append("| phase ended | µs |")
    lines.append("|---|---:|")
    for ph in phases:
        lines.append(f"| {ph['phase']} | {ph['median_us']:.0f} |")
lines.append("")
lines.append("| containers already attached | minirun-net attach ms | CNI attach ms | ratio | minirun-net detach ms | CNI detach ms | ratio |")
lines.append("|---|---:|---:|---:|---:|---:|---:|")
for b in r["attach_buckets"]:
    lines.append(
        f"| {b['containers']} | {b['minirun_attach_ms']:.1f} | {b['cni_attach_ms']:.1f} | "
        f"{b['minirun_attach_ms'] / b['cni_attach_ms']:.2f} | {b['minirun_detach_ms']:.1f} | "
        f"{b['cni_detach_ms']:.1f} | {b['minirun_detach_ms'] / b['cni_detach_ms']:.2f} |"
    )
first, last = r["attach_buckets"][0], r["attach_buckets"][-1]
lines.append("")
lines.append(
    f"Attach growth from the first to the last bucket: minirun-net "
    f"{last['minirun_attach_ms'] / first['minirun_attach_ms']:.2f}x, CNI "
    f"{last['cni_attach_ms'] / first['cni_attach_ms']:.2f}x."
)
lines.append("")
d = r["data_path_gbps"]
lines.append("| TCP throughput, Gbit/s, median (min-max) | direct to the container | through the published port | ratio |")
lines.append("|---|---:|---:|---:|")
lines.append(
    f"| iperf3, 3 s, sandbox host → container | {d['direct']['median']:.2f} ({d['direct']['min']:.2f}-{d['direct']['max']:.2f}) | "
    f"{d['published']['median']:.2f} ({d['published']['min']:.2f}-{d['published']['max']:.2f}) | "
    f"{d['published']['median'] / d['direct']['median']:.2f} |"
)
sp = r.get("anti_spoofing")
if sp:
    lines.append("")
    lines.append(
        f"Anti-spoofing ({sp['guarded_attach']['n']} containers on each of two user networks, "
        "alternating; throughput from a container out through its bridge port, iperf3 -R, 3 s, 3 rounds):"
    )
    lines.append("")
    lines.append("| median (min-max) | anti-spoofing on (default) | off (`-o anti_spoofing=false`) | on / off |")
    lines.append("|---|---:|---:|---:|")
    for key, what in (("attach", "attach, ms"), ("detach", "detach, ms")):
        on, off = sp[f"guarded_{key}"], sp[f"open_{key}"]
        lines.append(f"| {what} | {cell(on)} | {cell(off)} | {on['median'] / off['median']:.2f} |")
    on, off = sp["throughput_gbps"]["guarded"], sp["throughput_gbps"]["open"]
    lines.append(
        f"| TCP throughput, Gbit/s | {on['median']:.2f} ({on['min']:.2f}-{on['max']:.2f}) | "
        f"{off['median']:.2f} ({off['min']:.2f}-{off['max']:.2f}) | {on['median'] / off['median']:.2f} |"
    )
v6 = r.get("ipv6")
if v6:
    lines.append("")
    lines.append(
        f"IPv6 ({v6['four_attach']['n']} containers with one published port on an IPv4 network and on a "
        "dual-stack one, alternating; throughput from the host to a dual-stack container, iperf3, 3 s, 3 rounds):"
    )
    lines.append("")
    lines.append("| median (min-max) | dual-stack | IPv4 only | dual / IPv4 |")
    lines.append("|---|---:|---:|---:|")
    for key, what in (("attach", "attach, ms"), ("detach", "detach, ms")):
        dual, four = v6[f"dual_{key}"], v6[f"four_{key}"]
        lines.append(f"| {what} | {cell(dual)} | {cell(four)} | {dual['median'] / four['median']:.2f} |")
    t = v6["throughput_gbps"]
    d6, p6, d4 = t["ipv6_direct"], t["ipv6_published"], t["ipv4_direct"]
    lines.append("")
    lines.append("| TCP, Gbit/s, median (min-max) | IPv6 direct | IPv6 published port | published / direct | IPv4 direct |")
    lines.append("|---|---:|---:|---:|---:|")
    lines.append(
        f"| host → container | {d6['median']:.2f} ({d6['min']:.2f}-{d6['max']:.2f}) | "
        f"{p6['median']:.2f} ({p6['min']:.2f}-{p6['max']:.2f}) | {p6['median'] / d6['median']:.2f} | "
        f"{d4['median']:.2f} ({d4['min']:.2f}-{d4['max']:.2f}) |"
    )
ps = r.get("port_sweep")
if ps:
    lines.append("")
    lines.append(
        f"Publishing a range (`run -d -p A-B:A-B`, minirun median of 3; Docker {ps['docker_version']}, "
        "its own dockerd in the sandbox, one run per count):"
    )
    lines.append("")
    lines.append("| ports | minirun run, ms | minirun delete, ms | Docker with proxy, ms | proxies' RSS, MiB "
                 "| Docker without proxy, ms |")
    lines.append("|---:|---:|---:|---:|---:|---:|")
    for n, m in ps["minirun"].items():
        dp, dn = ps["docker"]["proxy"].get(n), ps["docker"]["no_proxy"].get(n)
        def dcell(x, what):
            return f"{x['run']['median']:.0f}" if x else f"not run (> {ps['docker_max'][what]} ports)"
        rss = f"{dp['proxies_rss_kib'] / 1024:.0f}" if dp else ""
        lines.append(f"| {n} | {m['run']['median']:.1f} | {m['delete']['median']:.1f} | "
                     f"{dcell(dp, 'proxy')} | {rss} | {dcell(dn, 'no_proxy')} |")
    o = ps["one_port_beside_60000"]
    lines.append("")
    lines.append(f"A 1-port `run -d` beside a container holding 60,000 ports: {cell(o['crowded'])} ms, "
                 f"on an empty host {cell(o['empty'])} ms ({o['crowded']['median'] / o['empty']['median']:.2f}×).")
dk = r.get("docker")
if dk:
    lines.append("")
    lines.append(
        f"Through Docker {dk['version']} ({dk['date']}; one dockerd, the runtime chosen per container "
        f"with `--runtime`, interleaved):"
    )
    lines.append("")
    lines.append("| ms, median (min-max) | minirun | runc | crun | minirun / crun | minirun / runc |")
    lines.append("|---|---:|---:|---:|---:|---:|")
    for key, what in (("run", "`docker run --rm IMAGE true`"),
                      ("refused", "the same, refused at create (`--cpu-rt-runtime 10000`: the kernel refuses the cgroup write)")):
        p = dk[key]
        lines.append(
            f"| {what} | {cell(p['minirun'])} | {cell(p['runc'])} | {cell(p['crun'])} | "
            f"{p['minirun']['median'] / p['crun']['median']:.2f} | {p['minirun']['median'] / p['runc']['median']:.2f} |"
        )
    left = dk["refused_cgroups_left"]
    n = dk["refused"]["minirun"]["n"]
    lines.append(
        f"| container cgroups left behind by {n} refused creates | {left['minirun']} | {left['runc']} | {left['crun']} | | |"
    )
cb = r.get("cni_buckets")
if cb:
    lines.append("")
    lines.append("minirun-net as a CNI plugin (ADD with one hostPort; DEL), invoked as containerd invokes it, "
                 "against the reference chain (bridge + host-local, then portmap), pods alternating:")
    lines.append("")
    lines.append("| pods already attached | minirun-net ADD ms | reference ADD ms | ratio | minirun-net DEL ms | reference DEL ms | ratio |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    for b in cb:
        lines.append(
            f"| {b['containers']} | {b['minirun_attach_ms']:.1f} | {b['cni_attach_ms']:.1f} | "
            f"{b['minirun_attach_ms'] / b['cni_attach_ms']:.2f} | {b['minirun_detach_ms']:.1f} | "
            f"{b['cni_detach_ms']:.1f} | {b['minirun_detach_ms'] / b['cni_detach_ms']:.2f} |"
        )
    first, last = cb[0]["minirun_attach_ms"], cb[-1]["minirun_attach_ms"]
    lines.append("")
    lines.append(f"ADD growth from the first to the last bucket: minirun-net {last / first:.2f}x, "
                 f"reference {cb[-1]['cni_attach_ms'] / cb[0]['cni_attach_ms']:.2f}x.")
cr = r.get("cri")
if cr:
    m, c = cr["minirun"], cr["runc"]
    lines.append("")
    lines.append("| through containerd 1.6's CRI, ms, median (min-max) | minirun + minirun-net | runc + bridge, host-local, portmap | ratio |")
    lines.append("|---|---:|---:|---:|")
    lines.append(f"| RunPodSandbox (one hostPort) + CreateContainer + StartContainer, {m['n']} pods each | "
                 f"{m['median']:.1f} ({m['min']:.1f}-{m['max']:.1f}) | {c['median']:.1f} ({c['min']:.1f}-{c['max']:.1f}) | "
                 f"{m['median'] / c['median']:.2f} |")
ov = r.get("overlay")
if ov:
    a, t, rtt, vis = ov["attach_ms"], ov["throughput_gbps"], ov["rtt_ms"], ov["visible_ms"]
    lines.append("")
    lines.append("Overlay networks (bench/overlay.sh: two hosts of one sandbox, etcd on the underlay):")
    lines.append("")
    lines.append("| | overlay | local bridge / underlay | ratio |")
    lines.append("|---|---:|---:|---:|")
    for verb in ("attach", "detach"):
        o, b = a[f"overlay_{verb}"]["median"], a[f"bridge_{verb}"]["median"]
        lines.append(f"| hook {verb}, ms, median of {a['overlay_' + verb]['n']} (overlay: with its etcd round trips) "
                     f"| {o:.1f} | {b:.1f} | {o / b:.2f} |")
    lines.append(f"| TCP throughput host 1 → host 2, one stream, Gbit/s | {t['overlay']:.2f} | {t['underlay']:.2f} "
                 f"| {t['overlay'] / t['underlay']:.2f} |")
    if "overlay_4_streams" in t:
        lines.append(f"| the same, four streams | {t['overlay_4_streams']:.2f} | {t['underlay_4_streams']:.2f} "
                     f"| {t['overlay_4_streams'] / t['underlay_4_streams']:.2f} |")
    lines.append(f"| ping round trip, ms (avg of 50) | {rtt['overlay']:.3f} | {rtt['underlay']:.3f} "
                 f"| {rtt['overlay'] / rtt['underlay']:.2f} |")
    lines.append(f"| `run -d` on host 2 until a container of host 1 has it in /etc/hosts, ms | "
                 f"{vis['after_run']:.1f} after `run` returned ({vis['run']:.0f}) | | |")
wl = r.get("wall")
if wl:
    n = wl["containers"]
    lines.append("")
    lines.append(f"{n:,} containers on one network (the hook's attach alone, as above, one after another; "
                 "then every one pinged from the host, the last pinging the first and the gateway):")
    lines.append("")
    cpu = "attach_cpu_ms" in wl["default"]["buckets"][0]
    lines.append("| containers | default network attach ms | user network attach ms "
                 + ("| default attach CPU ms | user attach CPU ms " if cpu else "")
                 + "| default detach ms | user detach ms |")
    lines.append("|---|---:|---:|" + ("---:|---:|" if cpu else "") + "---:|---:|")
    for bd, bu in zip(wl["default"]["buckets"], wl["user"]["buckets"]):
        lines.append(f"| {bd['containers']} | {bd['attach_ms']:.1f} | {bu['attach_ms']:.1f} "
                     + (f"| {bd['attach_cpu_ms']:.1f} | {bu['attach_cpu_ms']:.1f} " if cpu else "")
                     + f"| {bd['detach_ms']:.1f} | {bu['detach_ms']:.1f} |")
    lines.append("")
    for key, name in (("default", "default network"), ("user", "user network")):
        b, reach = wl[key]["buckets"], wl[key]["reach"]
        if cpu:
            busy = reach["machine_busy_pct"]
            lines.append(f"- {name}: attach CPU (the process's own, user + system) at the last 100 "
                         f"{b[-1]['attach_cpu_ms'] / b[0]['attach_cpu_ms']:.2f}x the first 100; the machine's CPUs, "
                         f"nothing of the sandbox running, {busy['before']:.1f}% busy before and "
                         f"{busy['with_all']:.1f}% with all {n:,} attached.")
        pairs = reach.get("pairs")
        if pairs:
            lines.append(f"- {name}, full, against a network created empty, {pairs['pairs']} attaches to each "
                         f"alternating: {pairs['full_ms']:.1f} vs {pairs['empty_ms']:.1f} ms "
                         f"({pairs['full_ms'] / pairs['empty_ms']:.2f}x) by the wall clock, "
                         f"{pairs['full_cpu_ms']:.1f} vs {pairs['empty_cpu_ms']:.1f} ms "
                         f"({pairs['full_cpu_ms'] / pairs['empty_cpu_ms']:.2f}x) by CPU.")
        lines.append(f"- {name}: attach at the last 100 {b[-1]['attach_ms'] / b[0]['attach_ms']:.2f}x the first 100; "
                     f"{n - len(reach['host_unanswered'])} of {n} answered the host "
                     f"{'(unanswered: ' + ', '.join(reach['host_unanswered']) + ')' if reach['host_unanswered'] else ''}; "
                     f"last to first {'reached' if reach['last_to_first'] else 'NOT reached'}, "
                     f"last to gateway {'reached' if reach['last_to_gateway'] else 'NOT reached'}; "
                     f"{reach['bridges']} bridges.")
    cb = wl["cni_bridge"]
    failed = cb["failed"]
    lines.append(f"- CNI bridge plugin (bridge + host-local, one /16): {cb['attached']} attached "
                 f"({cb['first_100_ms']:.1f} ms each over the first 100), then container "
                 f"{failed['container'] if failed else '-'}: `{failed['error'].splitlines()[-2].strip() if failed else ''}`.")
w6 = r.get("wall6")
if w6:
    def said(ok):
        return "reached" if ok else "NOT reached"
    lines.append("")
    lines.append(
        f"{w6['containers']:,} containers on one dual-stack network ({w6['bridges']} bridges), IPv6 ping "
        f"(3 tries): last to first {said(w6['last_to_first'])}, first to last {said(w6['first_to_last'])}, "
        f"middle to last {said(w6['middle_to_last'])}, last to middle {said(w6['last_to_middle'])}; "
        f"{w6['backlog_drops_during']:,} frames dropped by the CPUs' backlogs meanwhile; attach "
        f"{w6['attach_first_100_ms']:.1f} ms over the first 100, {w6['attach_last_100_ms']:.1f} over the last 100."
    )

with open(f"{out}/report.md", "w") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))

plot = f"""
set terminal pngcairo size 900,500 font ",11"
set output "{out}/attach.png"
set datafile separator ","
set title "Network attach with one published port, per container"
set xlabel "container number (containers already attached + 1)"
set ylabel "attach, ms"
set key top left
set grid
plot "{out}/attach.csv" using 1:3 skip 1 with points pt 7 ps 0.5 lc rgb "#d95f02" title "CNI bridge + host-local + portmap", \\
     "{out}/attach.csv" using 1:2 skip 1 with points pt 7 ps 0.5 lc rgb "#1b9e77" title "minirun-net attach"
"""
if os.path.exists(f"{out}/attach.csv"):
    subprocess.run(["gnuplot"], input=plot.encode(), check=True)

# The port-range sweep: time to `run -d -p A-B:A-B` by the number of ports.
if ps:
    rows = []
    for n, m in ps["minirun"].items():
        dp, dn = ps["docker"]["proxy"].get(n), ps["docker"]["no_proxy"].get(n)
        rows.append(f"{n} {m['run']['median']:.1f} "
                    f"{dp['run']['median'] if dp else 'NaN'} {dn['run']['median'] if dn else 'NaN'}")
    with open(f"{out}/ports.dat", "w") as f:
        f.write("\n".join(rows) + "\n")
    sweep = f"""
set terminal pngcairo size 900,500 font ",11"
set output "{out}/ports.png"
set title "Publishing a port range: run -d -p A-B:A-B"
set xlabel "ports published"
set ylabel "time to run -d, ms"
set logscale xy
set key top left
set grid
plot "{out}/ports.dat" using 1:3 with linespoints pt 7 lc rgb "#d95f02" title "Docker {ps['docker_version']}, userland proxy", \\
     "{out}/ports.dat" using 1:4 with linespoints pt 5 lc rgb "#7570b3" title "Docker, no proxy", \\
     "{out}/ports.dat" using 1:2 with linespoints pt 9 lc rgb "#1b9e77" title "minirun"
"""
    subprocess.run(["gnuplot"], input=sweep.encode(), check=True)


# The wall: attach time by container number on one network.
if os.path.exists(f"{out}/wall.csv"):
    wall = f"""
set terminal pngcairo size 900,500 font ",11"
set output "{out}/wall.png"
set datafile separator ","
set title "Containers on one network: attach time, per container"
set xlabel "container number"
set ylabel "attach, ms"
set key top left
set grid
set arrow from 1023, graph 0 to 1023, graph 1 nohead dt 2 lc rgb "#888888"
set label "a Linux bridge's 1,023 ports" at 1040, graph 0.6 tc rgb "#888888"
plot "{out}/wall.csv" using 1:4 skip 1 with points pt 7 ps 0.3 lc rgb "#d95f02" title "CNI bridge + host-local (stops: exchange full)", \\
     "{out}/wall.csv" using 1:2 skip 1 with points pt 7 ps 0.3 lc rgb "#1b9e77" title "minirun-net, default network", \\
     "{out}/wall.csv" using 1:3 skip 1 with points pt 7 ps 0.3 lc rgb "#7570b3" title "minirun-net, user network (names)"
"""
    subprocess.run(["gnuplot"], input=wall.encode(), check=True)
