#!/bin/bash
# docker-scenarios.sh RUNTIME — what a Docker user does, through Docker, with
# containers run by the docker runtime RUNTIME (a name from daemon.json's
# "runtimes", or runc). Prints one "check: value" line per check on stdout, so
# that the outputs of two runtimes can be compared line by line; details of
# failures go to stderr. Needs dockerd on $DOCKER_HOST, the image busybox:test
# and a scratch directory $T (tests/tests/docker.rs sets all three up in a
# sandbox). Values that differ from one host to another (ids, the cgroup
# parent) are replaced by <id>, <cgp>.
set -u
R=${1:?usage: docker-scenarios.sh RUNTIME}
# Debian's docker client first: /usr/local may hold another.
export PATH=/usr/bin:/usr/sbin:/bin:/sbin
IMG=busybox:test
W=$T/work-$R          # host directories for bind mounts
rm -rf "$W"; mkdir -p "$W"

D() { /usr/bin/docker "$@"; }
# docker run with the runtime under test, bounded
run() { timeout 30 /usr/bin/docker run --runtime "$R" "$@"; }
out() { local k=$1; shift; local v="$*"; v=${v%"${v##*[![:space:]]}"}; printf '%s: %s\n' "$k" "$v"; }
log() { printf '[%s] %s\n' "$R" "$*" >&2; }
# docker's error text made comparable: ids, the cgroup parent
san() { sed -E 's/[0-9a-f]{64}/<id>/g; s/[0-9a-f]{12}/<id12>/g; s#/'"${CGROUP_PARENT:-none}"'/#/<cgp>/#g' | tr -d '\r' | head -c 300 | tr '\n' ' ' | sed 's/ *$//'; }
one() { tr -d '\r' | tr '\n' ' ' | sed 's/ *$//'; }       # lines joined
# waitfor TRIES CMD...: CMD again every 0.1 s until it succeeds
waitfor() { local n=$1; shift; local i; for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
st() { D inspect -f "$1" "$2" 2>/dev/null; }
# runout NAME ARGS...: a --rm container; prints "NAME: its output", or ERR
runout() {
    local k=$1; shift
    local o rc
    o=$(run --rm "$@" 2>"$W/err"); rc=$?
    if [ $rc -eq 0 ]; then out "$k" "$(printf '%s' "$o" | one)"
    else out "$k" "ERR rc=$rc $(printf '%s' "$o" | one) $(san <"$W/err")"; log "$k: rc=$rc $(cat "$W/err")"; fi
}
# startd NAME ARGS...: docker run -d --name NAME; "NAME-start: ERR ..." if it fails
startd() {
    local n=$1; shift
    if ! run -d --name "$n" "$@" >/dev/null 2>"$W/err"; then
        out "$n-start" "ERR $(san <"$W/err")"; log "$n start: $(cat "$W/err")"; return 1
    fi
    return 0
}
running() { [ "$(st '{{.State.Running}}' "$1")" = true ]; }
notrunning() { [ "$(st '{{.State.Running}}' "$1")" = false ]; }
logs_has() { D logs "$1" 2>&1 | grep -q -- "$2"; }
cg() {  # cg CONTAINER CONTROLLER FILE: a cgroup file as the container sees it
    D exec "$1" cat "/sys/fs/cgroup/$2/$3" 2>/dev/null || echo "?"
}

# --- run and exit codes ----------------------------------------------------------
run --rm $IMG true >/dev/null 2>"$W/err"; out run-exit-0 $?
run --rm $IMG sh -c 'exit 3' >/dev/null 2>"$W/err"; out run-exit-3 $?
run --rm $IMG /no/such/binary >/dev/null 2>"$W/err"; rc=$?
out run-nobinary "$rc"; log "run-nobinary: $(cat "$W/err")"
runout run-echo $IMG echo hello
runout run-env -e FOO=bar $IMG sh -c 'echo $FOO'
runout run-workdir -w /tmp $IMG pwd
runout run-hostname --hostname myhost $IMG hostname
runout run-etc-files $IMG sh -c 'grep -c . /etc/hosts >/dev/null && echo hosts; [ -s /etc/resolv.conf ] && echo resolv; cat /etc/hostname | wc -c'
runout run-rootfs-mounts $IMG sh -c 'for m in /proc /sys /dev /dev/pts /dev/shm /dev/mqueue /sys/fs/cgroup /etc/hosts /etc/resolv.conf /etc/hostname; do awk -v m=$m '"'"'$2==m{printf "%s=%s ", m, $3; f=1} END{if(!f) printf "%s=missing ", m}'"'"' /proc/mounts; done'
runout run-masked $IMG sh -c 'cat /proc/kcore 2>/dev/null | head -c1 | wc -c; ls /proc/acpi 2>/dev/null | wc -l; echo x > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable || echo sysrq-ro'
runout run-shm-size --shm-size 8m $IMG sh -c "df -k /dev/shm | awk 'NR==2{print \$2}'"

# --- stdin / tty -------------------------------------------------------------------
o=$(echo piped | run --rm -i $IMG cat 2>"$W/err"); out run-i "$o $(san <"$W/err")"
o=$(echo abc | run --rm -i $IMG sh -c 'read x; echo got-$x' 2>"$W/err"); out run-i-read "$o"
o=$(run --rm -t $IMG sh -c '[ -t 0 ] && echo stdin-tty; [ -t 1 ] && echo stdout-tty; tty' </dev/null 2>"$W/err"); out run-t "$(printf '%s' "$o" | one) $(san <"$W/err")"
o=$(run --rm -t $IMG sh -c 'stat -c %U:%G $(tty); ls -l /dev/ptmx | cut -c1' </dev/null 2>"$W/err"); out run-t-owner "$(printf '%s' "$o" | one)"

# --- detached + logs ---------------------------------------------------------------
if startd s-logs $IMG sh -c 'echo hello; echo oops >&2; exit 2'; then
    waitfor 100 notrunning s-logs
    out logs-stdout "$(D logs s-logs 2>/dev/null | one)"
    out logs-stderr "$(D logs s-logs 2>&1 >/dev/null | one)"
    out logs-exitcode "$(st '{{.State.ExitCode}}' s-logs)"
    out wait-after-exit "$(timeout 10 docker wait s-logs 2>&1)"
fi

# --- exec --------------------------------------------------------------------------
if startd s-exec $IMG sleep 300; then
    waitfor 50 running s-exec
    out exec "$(D exec s-exec echo hi 2>&1 | one)"
    out exec-user "$(D exec -u 1000:1000 s-exec id 2>&1 | one)"
    out exec-env "$(D exec -e FOO=bar s-exec sh -c 'echo $FOO' 2>&1 | one)"
    out exec-workdir "$(D exec -w /tmp s-exec pwd 2>&1 | one)"
    out exec-t "$(timeout 10 docker exec -t s-exec sh -c '[ -t 0 ] && echo stdin-tty; tty' </dev/null 2>&1 | one)"
    out exec-i "$(echo fed | timeout 10 docker exec -i s-exec cat 2>&1 | one)"
    D exec s-exec sh -c 'exit 5' >/dev/null 2>&1; out exec-exitcode $?
    D exec s-exec /no/such/binary >"$W/err" 2>&1; rc=$?; out exec-nobinary $rc; log "exec-nobinary: $(cat "$W/err")"
    out exec-caps "$(D exec s-exec grep CapEff /proc/self/status 2>&1 | one)"
    o=$(D exec --privileged s-exec grep CapEff /proc/self/status 2>&1); rc=$?
    [ $rc = 0 ] && out exec-privileged "$(printf '%s' "$o" | one)" || { out exec-privileged "ERR rc=$rc caps-error=$(printf '%s' "$o" | grep -qi cap && echo yes || echo no)"; log "exec-privileged: $o"; }
    out exec-cgroup "$(D exec s-exec sh -c 'grep -c "/$(hostname)[0-9a-f]*$" /proc/self/cgroup' 2>&1)"
    out exec-same-cgroup "$( [ "$(D exec s-exec cat /proc/1/cgroup 2>/dev/null | sort)" = "$(D exec s-exec cat /proc/self/cgroup 2>/dev/null | sort)" ] && echo yes || echo no)"
    # stats
    s=$(timeout 20 docker stats --no-stream --format '{{.MemUsage}}|{{.PIDs}}' s-exec 2>&1)
    mem=${s%%|*}; mem=${mem%% /*}
    case "$mem" in 0B | "" | --) out stats-mem absent;; *[0-9]*) out stats-mem present;; *) out stats-mem "absent ($s)";; esac
    out stats-pids "${s##*|}"
    # top
    D exec -d s-exec sleep 299 >/dev/null 2>&1
    waitfor 30 sh -c 'docker top s-exec | grep -q "sleep 299"'
    out top "$(D top s-exec 2>&1 | tail -n +2 | awk '{$1=$2=$3=$4=$5=$6=$7=""; print}' | sed 's/^ *//' | sort | tr '\n' ',')"
    out top-count "$(D top s-exec 2>/dev/null | tail -n +2 | wc -l)"
    # pause / unpause
    D pause s-exec >/dev/null 2>"$W/err" || log "pause: $(cat "$W/err")"
    out pause "$(st '{{.State.Status}}' s-exec) $(san <"$W/err")"
    out pause-freezer "$(cat /sys/fs/cgroup/freezer/$(awk -F: '$2=="freezer"{print $3}' /proc/$(st '{{.State.Pid}}' s-exec)/cgroup)/freezer.state 2>/dev/null)"
    D unpause s-exec >/dev/null 2>"$W/err" || log "unpause: $(cat "$W/err")"
    out unpause "$(st '{{.State.Status}}' s-exec) $(san <"$W/err")"
    out after-unpause "$(D exec s-exec echo alive 2>&1 | one)"
    # docker commit pauses the container through the runtime
    D commit s-exec committed:test >/dev/null 2>"$W/err"; out commit "$? $(san <"$W/err")"
    out after-commit "$(st '{{.State.Status}}' s-exec)"
fi

# --- stop / kill -------------------------------------------------------------------
if startd s-stop $IMG sh -c 'trap "echo got-TERM; exit 7" TERM; echo ready; while true; do sleep 0.1; done'; then
    waitfor 50 logs_has s-stop ready
    D stop -t 10 s-stop >/dev/null 2>&1
    out stop-term "exit=$(st '{{.State.ExitCode}}' s-stop) $(D logs s-stop 2>&1 | grep got- | one)"
fi
if startd s-stopk $IMG sh -c 'trap "" TERM; echo ready; while true; do sleep 0.1; done'; then
    waitfor 50 logs_has s-stopk ready
    D stop -t 1 s-stopk >/dev/null 2>&1
    out stop-ignored "exit=$(st '{{.State.ExitCode}}' s-stopk) oom=$(st '{{.State.OOMKilled}}' s-stopk)"
fi
if startd s-usr1 $IMG sh -c 'trap "echo got-USR1" USR1; echo ready; while true; do sleep 0.1; done'; then
    waitfor 50 logs_has s-usr1 ready
    D kill -s USR1 s-usr1 >/dev/null 2>"$W/err"
    waitfor 50 logs_has s-usr1 got-USR1
    out kill-usr1 "$(D logs s-usr1 2>&1 | grep got- | one) running=$(st '{{.State.Running}}' s-usr1)"
    D kill s-usr1 >/dev/null 2>&1
    waitfor 50 notrunning s-usr1
    out kill-default "exit=$(st '{{.State.ExitCode}}' s-usr1)"
fi

# --- restart -----------------------------------------------------------------------
if startd s-restart --restart on-failure:2 $IMG sh -c 'echo run; exit 1'; then
    waitfor 150 sh -c '[ "$(docker inspect -f "{{.RestartCount}} {{.State.Status}}" s-restart)" = "2 exited" ]'
    out restart-on-failure "count=$(st '{{.RestartCount}}' s-restart) status=$(st '{{.State.Status}}' s-restart) runs=$(D logs s-restart 2>&1 | grep -c run)"
fi
if startd s-rs $IMG sh -c 'echo start; exec sleep 300'; then
    waitfor 50 logs_has s-rs start
    D restart -t 1 s-rs >/dev/null 2>"$W/err" || log "restart: $(cat "$W/err")"
    waitfor 50 sh -c '[ "$(docker logs s-rs 2>&1 | grep -c start)" = 2 ]'
    out docker-restart "status=$(st '{{.State.Status}}' s-rs) starts=$(D logs s-rs 2>&1 | grep -c start) $(san <"$W/err")"
fi
if startd s-always --restart always $IMG sh -c 'echo a; sleep 0.2; exit 1'; then
    waitfor 100 sh -c '[ "$(docker inspect -f "{{.RestartCount}}" s-always)" -ge 2 ]'
    out restart-always "count>=2=$( [ "$(st '{{.RestartCount}}' s-always)" -ge 2 ] && echo yes || echo no)"
    D rm -f s-always >/dev/null 2>&1
fi

# kill / rm -f of a paused container
if startd s-pk $IMG sleep 300; then
    D pause s-pk >/dev/null 2>&1
    D kill s-pk >/dev/null 2>"$W/err"; rc=$?
    waitfor 50 notrunning s-pk
    out kill-paused "rc=$rc status=$(st '{{.State.Status}}' s-pk) exit=$(st '{{.State.ExitCode}}' s-pk) $(san <"$W/err")"
fi
if startd s-prm $IMG sleep 300; then
    pid=$(st '{{.State.Pid}}' s-prm)
    D pause s-prm >/dev/null 2>&1
    D rm -f s-prm >/dev/null 2>"$W/err"; rc=$?
    out rm-f-paused "rc=$rc gone=$(D inspect s-prm >/dev/null 2>&1 && echo no || echo yes) proc-gone=$(waitfor 20 sh -c "! kill -0 $pid" && echo yes || echo no) $(san <"$W/err")"
fi

# --- wait / rm -f ------------------------------------------------------------------
if startd s-wait $IMG sh -c 'sleep 0.5; exit 4'; then
    out docker-wait "$(timeout 10 docker wait s-wait 2>&1)"
fi
if startd s-rm $IMG sleep 300; then
    pid=$(st '{{.State.Pid}}' s-rm)
    D rm -f s-rm >/dev/null 2>"$W/err"; rc=$?
    out rm-f "rc=$rc gone=$(D inspect s-rm >/dev/null 2>&1 && echo no || echo yes) proc-gone=$(waitfor 20 sh -c "! kill -0 $pid" && echo yes || echo no) $(san <"$W/err")"
fi

# --- resources ---------------------------------------------------------------------
if startd s-mem --memory 64m $IMG sleep 300; then
    out mem-initial "$(cg s-mem memory memory.limit_in_bytes) swap=$(cg s-mem memory memory.memsw.limit_in_bytes)"
    # up past the current memsw limit: the runtime must raise memsw before memory
    D update --memory 256m --memory-swap 512m s-mem >/dev/null 2>"$W/err"; rc=$?
    out mem-update-up "rc=$rc $(cg s-mem memory memory.limit_in_bytes) swap=$(cg s-mem memory memory.memsw.limit_in_bytes) $(san <"$W/err")"
    out mem-update-side-effects "shares=$(cg s-mem cpu cpu.shares) soft=$(cg s-mem memory memory.soft_limit_in_bytes) period=$(cg s-mem cpu cpu.cfs_period_us)"
    D update --memory 32m --memory-swap 64m s-mem >/dev/null 2>"$W/err"; rc=$?
    out mem-update-down "rc=$rc $(cg s-mem memory memory.limit_in_bytes) swap=$(cg s-mem memory memory.memsw.limit_in_bytes) $(san <"$W/err")"
    out mem-update-down-side-effects "shares=$(cg s-mem cpu cpu.shares) soft=$(cg s-mem memory memory.soft_limit_in_bytes) period=$(cg s-mem cpu cpu.cfs_period_us)"
    D update --memory 48m s-mem >/dev/null 2>"$W/err"; rc=$?
    out mem-update-memonly "rc=$rc $(cg s-mem memory memory.limit_in_bytes) swap=$(cg s-mem memory memory.memsw.limit_in_bytes) $(san <"$W/err")"
    out mem-inspect "$(st '{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}' s-mem)"
    out mem-update-alive "$(st '{{.State.Status}}' s-mem)"
fi
if startd s-cpu $IMG sleep 300; then
    out cpu-initial "quota=$(cg s-cpu cpu cpu.cfs_quota_us) period=$(cg s-cpu cpu cpu.cfs_period_us) shares=$(cg s-cpu cpu cpu.shares)"
    D update --cpus 0.5 s-cpu >/dev/null 2>"$W/err"; rc=$?
    out cpu-update-cpus "rc=$rc quota=$(cg s-cpu cpu cpu.cfs_quota_us) period=$(cg s-cpu cpu cpu.cfs_period_us) $(san <"$W/err")"
    sh0=$(cg s-cpu cpu cpu.shares)
    D update --memory-reservation 10m s-cpu >/dev/null 2>"$W/err"; rc=$?
    out update-noop "rc=$rc shares-before=$sh0 shares-after=$(cg s-cpu cpu cpu.shares) quota=$(cg s-cpu cpu cpu.cfs_quota_us) soft=$(cg s-cpu memory memory.soft_limit_in_bytes) mem=$(cg s-cpu memory memory.limit_in_bytes) pids=$(cg s-cpu pids pids.max) $(san <"$W/err")"
    D update --cpu-shares 512 --pids-limit 77 s-cpu >/dev/null 2>"$W/err"; rc=$?
    out update-shares-pids "rc=$rc shares=$(cg s-cpu cpu cpu.shares) pids=$(cg s-cpu pids pids.max) $(san <"$W/err")"
    out update-alive "$(st '{{.State.Status}}' s-cpu)"
fi
runout run-cpu-opts --cpus 1.5 --cpu-shares 256 --cpuset-cpus 0 $IMG sh -c 'cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpuset/cpuset.cpus'
runout run-mem-opts --memory 100m --memory-reservation 50m --memory-swappiness 0 $IMG sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.soft_limit_in_bytes /sys/fs/cgroup/memory/memory.swappiness'
runout run-oom-score-adj --oom-score-adj 123 $IMG cat /proc/self/oom_score_adj
runout run-blkio-weight --blkio-weight 300 $IMG true
runout run-pids-limit --pids-limit 42 $IMG cat /sys/fs/cgroup/pids/pids.max
runout run-pids-default $IMG cat /sys/fs/cgroup/pids/pids.max
o=$(run --rm $IMG cat /proc/self/cgroup 2>&1); out run-cgroup-paths "$(printf '%s\n' "$o" | cut -d: -f2- | san | tr ' ' '\n' | sort | tr '\n' ' ')"
# OOM
# containerd may handle the exit before the OOM event, and Docker then never
# marks the container (with runc as with any runtime): up to three tries.
for try in 1 2 3; do
    D rm -f s-oom >/dev/null 2>&1
    run --name s-oom --memory 16m $IMG tail /dev/zero >/dev/null 2>"$W/err"; rc=$?
    [ "$(st '{{.State.OOMKilled}}' s-oom)" = true ] && break
    log "oom: try $try not marked OOMKilled (exit $rc)"
done
out oom "rc=$rc OOMKilled=$(st '{{.State.OOMKilled}}' s-oom) exit=$(st '{{.State.ExitCode}}' s-oom) $(san <"$W/err")"
# pids limit enforced
runout pids-enforced --pids-limit 10 $IMG sh -c '(i=0; while [ $i -lt 20 ]; do sleep 5 & i=$((i+1)); done) 2>/dev/null; kill -9 -1; wait; read a b < /sys/fs/cgroup/pids/pids.events; [ "$b" -gt 0 ] && echo fork-limited || echo not-limited'

# --- security / users ----------------------------------------------------------------
runout read-only --read-only --tmpfs /tmp $IMG sh -c 'touch /x 2>/dev/null && echo root-writable || echo root-ro; touch /tmp/y && echo tmp-ok; awk "\$2==\"/tmp\"{print \$3, \$4}" /proc/mounts'
runout user --user 1000:1000 $IMG id
runout user-groups --user 1000:1000 --group-add 2000 $IMG id
runout caps-default $IMG sh -c 'grep -E "Cap(Inh|Prm|Eff|Bnd|Amb)" /proc/self/status | tr "\t" " "'
runout caps-drop-all --cap-drop ALL $IMG sh -c 'grep -E "Cap(Prm|Eff|Bnd)" /proc/self/status | tr "\t" " "'
runout caps-add-netadmin --cap-drop ALL --cap-add NET_ADMIN $IMG sh -c 'grep CapEff /proc/self/status | tr "\t" " "; ip link set lo mtu 1400 2>/dev/null && echo netadmin-works || echo netadmin-denied'
runout caps-user-nonroot --user 1000 $IMG sh -c 'grep -E "Cap(Prm|Eff)" /proc/self/status | tr "\t" " "'
runout nnp-default $IMG sh -c 'grep NoNewPrivs /proc/self/status | tr "\t" " "'
runout nnp --security-opt no-new-privileges $IMG sh -c 'grep NoNewPrivs /proc/self/status | tr "\t" " "'
runout seccomp-default $IMG sh -c 'grep -E "^Seccomp:" /proc/self/status | tr "\t" " "'
runout seccomp-unconfined --security-opt seccomp=unconfined $IMG sh -c 'grep -E "^Seccomp:" /proc/self/status | tr "\t" " "'
runout seccomp-blocks $IMG sh -c 'unshare -U true 2>/dev/null && echo unshare-allowed || echo unshare-denied'
runout init --init $IMG sh -c 'cat /proc/1/comm; [ $$ != 1 ] && echo sh-not-pid1; cat /proc/$PPID/comm'
runout no-init $IMG sh -c 'cat /proc/1/comm; echo $$'
runout ulimit --ulimit nofile=1024:2048 $IMG sh -c 'ulimit -n; ulimit -Hn'
runout sysctl --sysctl net.ipv4.ip_forward=1 $IMG cat /proc/sys/net/ipv4/ip_forward
runout sysctl-ipc --sysctl kernel.msgmax=12345 $IMG cat /proc/sys/kernel/msgmax
runout readonly-paths $IMG sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward 2>/dev/null && echo procsys-writable || echo procsys-ro'

# --- mounts / devices --------------------------------------------------------------
mkdir -p "$W/host"; echo from-host >"$W/host/f"
runout bind "-v" "$W/host:/x" $IMG sh -c 'cat /x/f; echo from-container > /x/g && echo wrote'
out bind-host-sees "$(cat "$W/host/g" 2>&1)"
runout bind-ro -v "$W/host:/x:ro" $IMG sh -c 'cat /x/f; echo z > /x/h 2>/dev/null && echo ro-writable || echo ro-enforced'
runout bind-mount-flag --mount "type=bind,src=$W/host,dst=/y,readonly" $IMG sh -c 'cat /y/f; touch /y/z 2>/dev/null && echo writable || echo readonly'
D volume create vol1 >/dev/null 2>&1
runout volume-write -v vol1:/data $IMG sh -c 'echo persisted > /data/p && echo wrote'
runout volume-read -v vol1:/data $IMG cat /data/p
runout volume-anon -v /anon $IMG sh -c 'touch /anon/a && echo anon-ok'
runout tmpfs-opts --tmpfs /scratch:rw,size=1m,mode=1770 $IMG sh -c 'stat -c %a /scratch; df -k /scratch | awk "NR==2{print \$2}"'
runout device --device /dev/fuse $IMG sh -c 'ls -l /dev/fuse | awk "{print \$1, \$5, \$6}"; (exec 3<>/dev/fuse) 2>/dev/null && echo open-ok || echo open-denied'
runout device-renamed --device /dev/fuse:/dev/myfuse:r $IMG sh -c 'ls -l /dev/myfuse | awk "{print \$1, \$5, \$6}"; (exec 3</dev/myfuse) 2>/dev/null && echo read-ok || echo read-denied; (exec 3>/dev/myfuse) 2>/dev/null && echo write-ok || echo write-denied'
runout device-absent $IMG sh -c 'ls /dev/fuse 2>/dev/null || echo no-fuse; ls /dev | sort | tr "\n" " "'
runout mknod $IMG sh -c 'mknod /tmp/n c 1 3 && echo mknod-c1:3-ok; echo x > /tmp/n && echo write-ok; mknod /tmp/b b 7 0 2>/dev/null && echo mknod-b7:0-ok || echo mknod-b7:0-denied; if mknod /tmp/f c 10 229 2>/dev/null; then echo mknod-c10:229-ok; (exec 3<>/tmp/f) 2>/dev/null && echo fuse-open-ok || echo fuse-open-denied; else echo mknod-c10:229-denied; fi'
runout devices-list $IMG sh -c 'sort /sys/fs/cgroup/devices/devices.list | tr "\n" ","'
runout devices-list-device --device /dev/fuse:/dev/myfuse:r $IMG sh -c 'sort /sys/fs/cgroup/devices/devices.list | tr "\n" ","'
runout dev-null-etc $IMG sh -c 'echo x > /dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c && echo ok'
o=$(run --rm --privileged $IMG sh -c 'grep CapEff /proc/self/status | tr "\t" " "; ls /dev/fuse >/dev/null 2>&1 && echo has-fuse; grep " /sys " /proc/mounts | cut -d" " -f4 | cut -d, -f1; ip link set lo mtu 1400 && echo netadmin-works' 2>&1); rc=$?
[ $rc = 0 ] && out privileged "$(printf '%s' "$o" | one)" || { out privileged "ERR rc=$rc caps-error=$(printf '%s' "$o" | grep -qi cap && echo yes || echo no)"; log "privileged: $o"; }

# --- namespaces --------------------------------------------------------------------
runout pid-ns $IMG sh -c 'echo $$; for p in /proc/[0-9]*; do read c < $p/comm; printf "%s " "$c"; done'
runout pid-host --pid host $IMG sh -c 'ls /proc | grep -c "^[0-9]" | awk "{print (\$1>5)?\"sees-host\":\"isolated\"}"'
runout cgroupns-private --cgroupns private $IMG sh -c 'cut -d: -f3 /proc/self/cgroup | sort -u | tr "\n" " "; readlink /proc/self/ns/cgroup | cut -c1-7'
if startd s-ns --ipc shareable $IMG sh -c 'echo ns-marker >/dev/null; exec sleep 300'; then
    waitfor 50 running s-ns
    a=$(D exec s-ns readlink /proc/self/ns/ipc 2>/dev/null)
    b=$(run --rm --ipc container:s-ns $IMG readlink /proc/self/ns/ipc 2>"$W/err")
    out ipc-container "$( [ -n "$a" ] && [ "$a" = "$b" ] && echo same-ipcns || echo "different $(san <"$W/err")")"
    out pid-container "$(run --rm --pid container:s-ns $IMG sh -c 'for p in /proc/[0-9]*; do cat $p/comm; done | grep -c "^sleep$"' 2>&1 | one)"
    D rm -f s-ns >/dev/null 2>&1
fi
runout ipc-private $IMG sh -c 'readlink /proc/self/ns/ipc | cut -c1-5'
runout uts-host --uts host $IMG hostname

# --- networking --------------------------------------------------------------------
runout net-none --network none $IMG sh -c 'ip -o link | awk -F": " "{print \$2}" | tr "\n" " "'
runout net-host --network host $IMG sh -c 'ip -o link | grep -q docker0 && echo sees-docker0; readlink /proc/1/ns/net >/dev/null && echo ok'
out net-host-same-ns "$( [ "$(run --rm --network host $IMG readlink /proc/self/ns/net 2>/dev/null)" = "$(readlink /proc/self/ns/net)" ] && echo yes || echo no)"
runout net-bridge $IMG sh -c 'ip -o -4 addr show eth0 | awk "{print \$2, \$4}" | sed "s/172\.17\.[0-9]*\.[0-9]*/172.17.x.x/"; ip route | grep -c default'
if startd s-web -p 8080:80 $IMG httpd -f -p 80 -h /www; then
    waitfor 50 running s-web
    ip=$(st '{{.NetworkSettings.IPAddress}}' s-web)
    fetch() { curl -s -m 3 "$1" 2>/dev/null; }   # (busybox wget segfaults here: static glibc NSS)
    waitfor 30 fetch "http://$ip:80/"
    out web-container-ip "$(fetch "http://$ip:80/")"
    waitfor 30 fetch "http://127.0.0.1:8080/"
    out web-localhost-port "$(fetch "http://127.0.0.1:8080/")"
    out web-docker0-port "$(fetch "http://172.17.0.1:8080/")"
    get='printf "GET / HTTP/1.0\r\n\r\n" | nc -w 3'
    out web-from-container "$(run --rm $IMG sh -c "$get $ip 80 | tail -1" 2>&1 | one)"
    out web-port-inspect "$(D port s-web 80 2>&1 | sort | head -1)"
    # container:NAME netns sharing
    a=$(D exec s-web readlink /proc/self/ns/net 2>/dev/null)
    b=$(run --rm --network container:s-web $IMG readlink /proc/self/ns/net 2>"$W/err")
    out net-container "$( [ -n "$a" ] && [ "$a" = "$b" ] && echo same-netns || echo "different ($(san <"$W/err"))")"
    out net-container-localhost "$(run --rm --network container:s-web $IMG sh -c "$get 127.0.0.1 80 | tail -1" 2>&1 | one)"
fi
if D network create n1 >/dev/null 2>"$W/err"; then
    if startd s-n1a --network n1 $IMG sleep 300; then
        waitfor 50 running s-n1a
        runout usernet-ping --network n1 $IMG sh -c 'for i in 1 2 3; do ping -c1 -W2 s-n1a | grep -o "1 packets received" && break; done'
        runout usernet-nslookup --network n1 $IMG sh -c 'nslookup s-n1a >/dev/null 2>&1 && echo resolved || echo unresolved; grep nameserver /etc/resolv.conf'
        runout usernet-alias --network n1 --network-alias myalias --name s-n1b $IMG sh -c 'nslookup myalias >/dev/null 2>&1 && echo alias-resolved || echo alias-unresolved'
    fi
else
    out usernet "ERR $(san <"$W/err")"
fi
if startd s-link --link s-web:webalias $IMG sleep 300; then
    out link "$(D exec s-link sh -c 'grep -c webalias /etc/hosts; printf "GET / HTTP/1.0\r\n\r\n" | nc -w 3 webalias 80 | tail -1' 2>&1 | one)"
fi

# --- healthcheck ------------------------------------------------------------------
if startd s-health --health-cmd 'true' --health-interval 1s $IMG sleep 300; then
    waitfor 100 sh -c '[ "$(docker inspect -f "{{.State.Health.Status}}" s-health)" = healthy ]'
    out health "$(st '{{.State.Health.Status}}' s-health)"
fi
if startd s-unhealth --health-cmd 'false' --health-interval 1s --health-retries 1 $IMG sleep 300; then
    waitfor 100 sh -c '[ "$(docker inspect -f "{{.State.Health.Status}}" s-unhealth)" = unhealthy ]'
    out unhealth "$(st '{{.State.Health.Status}}' s-unhealth)"
fi

# --- after everything: list of containers, daemon still fine ------------------------
out ps-running "$(D ps -q | wc -l)"
D rm -f $(D ps -aq) >/dev/null 2>&1
out rm-all "$(D ps -aq | wc -l)"
D network rm n1 >/dev/null 2>&1
D volume rm -f vol1 >/dev/null 2>&1
D rmi committed:test >/dev/null 2>&1
D volume prune -f >/dev/null 2>&1
exit 0
