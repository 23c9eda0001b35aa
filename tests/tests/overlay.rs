//! Overlay networks: several minirun hosts sharing one subnet through
//! VXLAN, coordinated through a real etcd (Debian's etcd-server). Each test
//! builds its cluster inside its sandbox (tests/scripts/cluster.sh): the
//! sandbox's namespace is the underlay with etcd on 10.99.0.1, each host a
//! network namespace of its own with its own state and agent. Traffic goes
//! only to addresses inside the sandbox.

use minirun_tests::{bin, remove_cgroup_tree, repo_dir, Output, Sandbox};

/// Runs `script` after the cluster harness is sourced; the harness needs
/// the busybox sleeper bundle to copy.
fn cluster(sb: &Sandbox, script: &str) -> Output {
    let bundle = sb.bundle("sleeper", &["/bin/sleep", "100000"], |_| {});
    let out = sb.run(&format!(
        "BUNDLE={bundle}\nMINIRUN_NET={net}\nsource {harness}\n{script}",
        bundle = bundle.display(),
        net = bin("minirun-net").display(),
        harness = repo_dir().join("tests/scripts/cluster.sh").display(),
    ));
    remove_cgroup_tree(&sb.id);
    out
}

fn lines_after<'a>(out: &'a Output, marker: &str) -> &'a str {
    out.stdout
        .split_once(&format!("{marker}\n"))
        .map_or("(marker missing)", |(_, rest)| {
            rest.split_once("--end--").map_or(rest, |(l, _)| l)
        })
}

#[test]
fn containers_on_different_hosts_reach_each_other_by_address_and_name() {
    let sb = Sandbox::new("overlay");
    let out = cluster(
        &sb,
        r#"
        cluster_up 3 || exit 1
        echo "ls-before: $(mr 1 cluster ls | grep -c alive)"
        mr 2 network create -d overlay --subnet 10.200.0.0/16 app >/dev/null || exit 1
        echo "seen-on-3: $(mr 3 network ls | awk '$2 == "app" {print $3 "/" $4}')"
        mr 1 run -d --net app --alias db --bundle $(bundle db1) $ID-db1 || exit 1
        mr 2 run -d --net app --bundle $(bundle web1) $ID-web1 || exit 1
        db=$(ip_of 1 $ID-db1); web=$(ip_of 2 $ID-web1)
        echo "addresses: $db $web"
        mr 2 exec $ID-web1 ping -c1 -W2 $db >/dev/null && echo "web-db-by-address: ok"
        mr 2 exec $ID-web1 ping -c1 -W2 db >/dev/null && echo "web-db-by-alias: ok"
        mr 1 exec $ID-db1 ping -c1 -W2 $ID-web1 >/dev/null && echo "db-web-by-name: ok"
        mr 1 exec $ID-db1 ping -c1 -W2 10.200.0.1 >/dev/null && echo "gateway: ok"
        # TCP both ways across hosts, by name.
        mr 1 exec -d $ID-db1 sh -c 'echo from-db | nc -l -p 5000'
        listening 1 $ID-db1 1388
        echo "tcp: $(mr 2 exec $ID-web1 nc -w 2 db 5000)"
        # A container started later finds the earlier ones and is found by them.
        mr 3 run -d --net app --bundle $(bundle late) $ID-late || exit 1
        mr 3 exec $ID-late ping -c1 -W2 db >/dev/null && echo "late-finds-db: ok"
        wait_for 2 "mr 1 exec $ID-db1 grep -q $ID-late /etc/hosts" && echo "db-knows-late: ok"
        mr 1 exec $ID-db1 ping -c1 -W2 $ID-late >/dev/null && echo "db-reaches-late: ok"
        echo "inspect: $(mr 3 network inspect app | python3 -c 'import json,sys; c=json.load(sys.stdin)[0]["Containers"]; print(" ".join(sorted(v["Host"] + ":" + v["IPv4Address"] for v in c.values())))')"
        echo "ls-containers: $(mr 1 cluster ls | awk 'NR > 1 {print $NF}' | tr '\n' ' ')"
        echo "mtu: $(mr 1 exec $ID-db1 cat /sys/class/net/eth0/mtu)"
        # Out of the overlay through the container's own host, masqueraded.
        python3 -c 'import socket; s = socket.socket(); s.bind(("10.99.0.1", 7000)); s.listen(); open("'$T'/outside.ready", "w"); c, a = s.accept(); print(a[0], c.recv(100).decode().strip())' > $T/outside.txt &
        wait_for 10 "[ -e $T/outside.ready ]"
        mr 1 exec $ID-db1 sh -c 'echo out | nc -w 2 10.99.0.1 7000'
        wait_for 5 "[ -s $T/outside.txt ]"
        echo "outside: $(cat $T/outside.txt)"
        # A published port, on the host where its container runs.
        mr 2 run -d --net app -p 8080:80 --bundle $(bundle pub) $ID-pub || exit 1
        mr 2 exec -d $ID-pub sh -c 'echo published | nc -l -p 80'
        listening 2 $ID-pub 0050
        echo "published: $(busybox nc -w 2 10.99.0.12 8080 </dev/null)"
        # Isolated from a local network on the same host.
        mr 1 network create --subnet 10.88.0.0/24 local >/dev/null || exit 1
        mr 1 run -d --net local --bundle $(bundle loc) $ID-loc || exit 1
        mr 1 exec $ID-loc ping -c1 -W1 $db >/dev/null && echo "local-to-overlay: reached" || echo "local-to-overlay: blocked"
        # network connect puts it on the overlay too (eth1), found by alias from host 2.
        mr 1 network connect --alias joined app $ID-loc || exit 1
        mr 2 exec $ID-web1 ping -c1 -W2 joined >/dev/null && echo "connected-reached: ok"
        mr 1 network disconnect app $ID-loc || exit 1
        wait_for 2 "! mr 2 exec $ID-web1 grep -q joined /etc/hosts" && echo "disconnected-forgotten: ok"
        # An internal overlay reaches across hosts and nothing else.
        mr 1 network create -d overlay --internal --subnet 10.201.0.0/24 priv >/dev/null || exit 1
        mr 1 run -d --net priv --bundle $(bundle p1) $ID-p1 || exit 1
        mr 3 run -d --net priv --bundle $(bundle p3) $ID-p3 || exit 1
        mr 1 exec $ID-p1 ping -c1 -W2 $ID-p3 >/dev/null && echo "internal-across: ok"
        mr 1 exec $ID-p1 ping -c1 -W1 10.99.0.1 >/dev/null 2>&1 && echo "internal-out: reached" || echo "internal-out: blocked"
        echo "rm-in-use: $(mr 3 network rm app 2>&1)"
        echo "vxlan-filter: $(on 1 nft list set inet minirun vxlan_peers | tr -d '\n\t ' | grep -o 'elements={[^}]*}')"
        for c in db1 loc p1; do mr 1 delete -f $ID-$c; done
        for c in web1 pub; do mr 2 delete -f $ID-$c; done
        for c in late p3; do mr 3 delete -f $ID-$c; done
        mr 1 network rm app priv local >/dev/null
        for h in 1 2 3; do mr $h cluster leave >/dev/null; done
        alive() { for h in 1 2 3; do kill -0 ${AGENT[$h]} 2>/dev/null && return 0; done; return 1; }
        wait_for 5 "! alive" && echo "agents-stopped: yes"
        echo "--left--"
        for h in 1 2 3; do host_leftovers $h; done
        etcd_keys
        echo "--end--"
        for h in 1 2 3; do grep -i -e error -e fail $T/agent$h.log; done
        true
        "#,
    );
    out.ok();
    assert_eq!(out.field("ls-before"), "3", "{out:?}");
    assert_eq!(out.field("seen-on-3"), "overlay/global", "{out:?}");
    assert_eq!(out.field("addresses"), "10.200.0.2 10.200.0.3", "{out:?}");
    for key in [
        "web-db-by-address",
        "web-db-by-alias",
        "db-web-by-name",
        "gateway",
        "late-finds-db",
        "db-knows-late",
        "db-reaches-late",
        "internal-across",
        "connected-reached",
        "disconnected-forgotten",
    ] {
        assert_eq!(out.field(key), "ok", "{key}: {out:?}");
    }
    assert_eq!(out.field("tcp"), "from-db", "{out:?}");
    assert_eq!(
        out.field("inspect"),
        "host1:10.200.0.2/16 host2:10.200.0.3/16 host3:10.200.0.4/16",
        "{out:?}"
    );
    assert_eq!(out.field("ls-containers"), "1 1 1 ", "{out:?}");
    assert_eq!(out.field("mtu"), "1450", "{out:?}");
    // Seen from outside as its host's underlay address: masqueraded there.
    assert_eq!(out.field("outside"), "10.99.0.11 out", "{out:?}");
    assert_eq!(out.field("published"), "published", "{out:?}");
    assert_eq!(out.field("local-to-overlay"), "blocked", "{out:?}");
    assert_eq!(out.field("internal-out"), "blocked", "{out:?}");
    let in_use = out.field("rm-in-use");
    assert!(
        in_use.contains("has containers attached")
            && in_use.contains(&format!("{}-db1 on 10.99.0.11", sb.id)),
        "{in_use}"
    );
    assert_eq!(
        out.field("vxlan-filter"),
        "elements={10.99.0.11,10.99.0.12,10.99.0.13}",
        "{out:?}"
    );
    assert_eq!(out.field("agents-stopped"), "yes", "{out:?}");
    assert_eq!(lines_after(&out, "--left--"), "", "{out:?}");
    assert!(out.stdout.ends_with("--end--\n"), "agent errors: {out:?}");
}

#[test]
fn vxlan_is_taken_only_from_the_clusters_hosts() {
    let sb = Sandbox::new("vxlanfilter");
    let send = repo_dir().join("tests/scripts/vxlan_send.py");
    let out = cluster(
        &sb,
        &format!(
            r#"
        cluster_up 2 || exit 1
        mr 1 network create -d overlay --subnet 10.200.0.0/24 -o vni=5000 app >/dev/null || exit 1
        mr 1 run -d --net app --bundle $(bundle c1) $ID-c1 || exit 1
        mr 2 run -d --net app --bundle $(bundle c2) $ID-c2 || exit 1
        mac=$(mr 1 exec $ID-c1 cat /sys/class/net/eth0/address); ip=$(ip_of 1 $ID-c1)
        # UDP to a closed port of the container: its kernel counts it (NoPorts).
        noports() {{ mr 1 exec $ID-c1 grep '^Udp:' /proc/net/snmp | tail -1 | awk '{{print $3}}'; }}
        before=$(noports)
        # A stranger on the underlay, not a member of the cluster.
        host_add 9
        on 9 python3 {send} 10.99.0.11 5000 $mac $ip 9999 forged
        sleep 0.3
        echo "from-stranger: $(( $(noports) - before ))"
        on 2 python3 {send} 10.99.0.11 5000 $mac $ip 9999 member
        sleep 0.3
        echo "from-member: $(( $(noports) - before ))"
        mr 1 delete -f $ID-c1; mr 2 delete -f $ID-c2
        mr 1 network rm app >/dev/null
        "#,
            send = send.display()
        ),
    );
    out.ok();
    assert_eq!(out.field("from-stranger"), "0", "{out:?}");
    assert_eq!(out.field("from-member"), "1", "{out:?}");
}

#[test]
fn thirty_concurrent_runs_on_three_hosts_get_thirty_addresses() {
    let sb = Sandbox::new("overlay30");
    let out = cluster(
        &sb,
        r#"
        cluster_up 3 || exit 1
        mr 1 network create -d overlay --subnet 10.210.0.0/24 app >/dev/null || exit 1
        for i in $(seq 30); do bundle c$i >/dev/null; done
        for i in $(seq 30); do
            h=$(( (i % 3) + 1 ))
            mr $h run -d --net app --bundle $T/bundles/c$i $ID-c$i > $T/run$i.log 2>&1 &
            JOBS+=($!)
        done
        wait "${JOBS[@]}"; JOBS=()
        for i in $(seq 30); do h=$(( (i % 3) + 1 )); ip_of $h $ID-c$i; done | sort > $T/ips
        echo "addresses: $(wc -l < $T/ips) distinct: $(sort -u $T/ips | wc -l)"
        cat $T/run*.log
        # Every container reaches the one on the last host by address.
        last=$(ip_of 1 $ID-c30)
        ok=0; for i in 1 2 3 4 5 6; do h=$(( (i % 3) + 1 )); mr $h exec $ID-c$i ping -c1 -W2 $last >/dev/null && ok=$((ok+1)); done
        echo "reached: $ok"
        for i in $(seq 30); do h=$(( (i % 3) + 1 )); mr $h delete -f $ID-c$i & JOBS+=($!); done
        wait "${JOBS[@]}"
        mr 1 network rm app >/dev/null
        echo "--left--"
        for h in 1 2 3; do host_leftovers $h; done
        etcd_keys | grep -v -e /members/ -e /alive/
        echo "--end--"
        "#,
    );
    out.ok();
    assert_eq!(out.field("addresses"), "30 distinct: 30", "{out:?}");
    assert_eq!(out.field("reached"), "6", "{out:?}");
    assert_eq!(lines_after(&out, "--left--"), "", "{out:?}");
}

#[test]
fn a_dead_host_leaves_every_view_and_an_etcd_outage_keeps_traffic() {
    let sb = Sandbox::new("overlaydead");
    let out = cluster(
        &sb,
        r#"
        TTL=3 cluster_up 3 || exit 1
        mr 1 network create -d overlay --subnet 10.220.0.0/24 app >/dev/null || exit 1
        mr 1 run -d --net app --bundle $(bundle a) $ID-a || exit 1
        mr 2 run -d --net app --bundle $(bundle b) $ID-b || exit 1
        mr 3 run -d --net app --bundle $(bundle doomed) $ID-doomed || exit 1
        doomed=$(ip_of 3 $ID-doomed)
        wait_for 2 "mr 1 exec $ID-a grep -q $ID-doomed /etc/hosts" && echo "known-before: yes"
        start=$SECONDS
        kill_host 3
        wait_for 15 "! mr 1 exec $ID-a grep -q $ID-doomed /etc/hosts" && echo "forgotten: yes"
        echo "forgotten-within-ttl: $(( SECONDS - start <= 3 + 2 ))"
        echo "ls-after: $(mr 1 cluster ls | awk '$1 == "host3" {print $3 "/" $4}')"
        echo "neigh-left: $(on 1 ip neigh show $doomed | grep -c .)"
        echo "address-free: $(etcd_keys | grep -c "/addresses/app/$doomed")"
        # The address comes free: the lowest free one is the dead host's.
        mr 2 run -d --net app --bundle $(bundle heir) $ID-heir || exit 1
        echo "heir: $(ip_of 2 $ID-heir)"
        # The store goes away: traffic goes on, new attaches fail clearly.
        etcd_stop
        mr 1 exec $ID-a ping -c1 -W2 $ID-b >/dev/null && echo "during-outage: ok"
        mr 1 run -d --net app --bundle $(bundle late) $ID-late 2> $T/late.err; echo "run-during-outage: $?"
        echo "error: $(tail -1 $T/late.err)"
        echo "late-left: $(ls $T/h1/state | grep -c late) $(ls $T/h1/net/containers | grep -c late) $(on 1 ip -o link show | grep -c -e mrv)"
        etcd_start || exit 1
        mr 1 run -d --net app --bundle $T/bundles/late $ID-late || exit 1
        # Host 2's agent finds the store again within its retry backoff.
        wait_for 10 "mr 2 exec $ID-b grep -q $ID-late /etc/hosts"
        mr 2 exec $ID-b ping -c1 -W2 $ID-late >/dev/null && echo "after-outage: ok"
        for c in a late; do mr 1 delete -f $ID-$c; done
        for c in b heir; do mr 2 delete -f $ID-$c; done
        # The dead host's state (its disk survived it): delete sweeps it.
        MINIRUN_NET_DIR=$T/h3/net MINIRUN_CLUSTER_CONFIG=$T/h3/cluster.json $MINIRUN_BIN --root $T/h3/state delete -f $ID-doomed 2>/dev/null
        mr 1 network rm app >/dev/null && echo "removed: yes"
        echo "--left--"
        for h in 1 2; do host_leftovers $h; done
        etcd_keys | grep -v -e /members/ -e /alive/
        echo "--end--"
        "#,
    );
    out.ok();
    assert_eq!(out.field("known-before"), "yes", "{out:?}");
    assert_eq!(out.field("forgotten"), "yes", "{out:?}");
    assert_eq!(out.field("forgotten-within-ttl"), "1", "{out:?}");
    assert_eq!(out.field("ls-after"), "down/0", "{out:?}");
    assert_eq!(out.field("neigh-left"), "0", "{out:?}");
    assert_eq!(out.field("address-free"), "0", "{out:?}");
    assert_eq!(out.field("heir"), "10.220.0.4", "{out:?}");
    assert_eq!(out.field("during-outage"), "ok", "{out:?}");
    assert_eq!(out.field("run-during-outage"), "1", "{out:?}");
    let error = out.field("error");
    assert!(
        error.contains("etcd at etcd://10.99.0.1:2379 is unreachable") && error.contains("app"),
        "{error}"
    );
    assert_eq!(out.field("late-left"), "0 0 0", "{out:?}");
    assert_eq!(out.field("after-outage"), "ok", "{out:?}");
    assert_eq!(out.field("removed"), "yes", "{out:?}");
    assert_eq!(lines_after(&out, "--left--"), "", "{out:?}");
}

#[test]
fn bad_cluster_input_gets_one_clear_error_and_leaves_nothing() {
    let sb = Sandbox::new("overlaybad");
    let out = cluster(
        &sb,
        r#"
        cluster_up 1 || exit 1
        host_add 2
        try() { local what=$1; shift; "$@" > $T/out 2>&1; echo "$what: $? $(tail -1 $T/out)"; }
        try scheme mr 2 cluster join --store consul://10.99.0.1:8500 --advertise 10.99.0.12
        try unreachable mr 2 cluster join --store etcd://10.99.0.1:9 --advertise 10.99.0.12
        try not-mine mr 2 cluster join --store etcd://10.99.0.1:2379 --advertise 10.99.0.99
        echo "config-written: $(ls $T/h2 | grep -c cluster.json)"
        try not-joined mr 2 network create -d overlay app
        mr 1 network create -d overlay --subnet 10.230.0.0/16 -o vni=7000 first >/dev/null || exit 1
        try overlap mr 1 network create -d overlay --subnet 10.230.5.0/24 second
        try vni mr 1 network create -d overlay --subnet 10.231.0.0/24 -o vni=7000 second
        try slash mr 1 network create -d overlay 'a/b'
        try local-overlap mr 1 network create --subnet 10.230.1.0/24 loc
        # No agent, and a lease the store does not know.
        kill ${AGENT[1]}; wait_for 2 "! kill -0 ${AGENT[1]} 2>/dev/null"
        echo 12345 > $T/h1/net/cluster/lease
        try no-lease mr 1 run -d --net first --bundle $(bundle nl) $ID-nl
        echo "no-lease-left: $(ls $T/h1/state | wc -l) $(etcd_keys | grep -c /addresses/)"
        mr 1 network rm first >/dev/null
        mr 1 cluster leave >/dev/null
        echo "--left--"
        host_leftovers 1
        ls $T/h1 | grep cluster.json
        etcd_keys
        echo "--end--"
        "#,
    );
    out.ok();
    let check = |key: &str, wanted: &str| {
        let line = out.field(key);
        assert!(
            line.starts_with("1 ") && line.contains(wanted),
            "{key}: {line}\n{out:?}"
        );
    };
    check("scheme", "\"consul://10.99.0.1:8500\": unknown scheme");
    check(
        "unreachable",
        "cluster join: registering host 10.99.0.12: etcd at etcd://10.99.0.1:9 is unreachable",
    );
    check(
        "not-mine",
        "--advertise 10.99.0.99: not an address of this host",
    );
    assert_eq!(out.field("config-written"), "0", "{out:?}");
    check("not-joined", "this host is not in a cluster");
    check(
        "overlap",
        "subnet 10.230.5.0/24 overlaps subnet 10.230.0.0/16 of overlay network first",
    );
    check("vni", "VXLAN id 7000 is taken by overlay network first");
    check("slash", "network name \"a/b\"");
    check(
        "local-overlap",
        "subnet 10.230.1.0/24 overlaps subnet 10.230.0.0/16 of overlay network first",
    );
    check("no-lease", "this host has no live cluster lease");
    assert_eq!(out.field("no-lease-left"), "0 0", "{out:?}");
    assert_eq!(lines_after(&out, "--left--"), "", "{out:?}");
}

#[test]
fn an_overlay_attach_killed_anywhere_leaves_nothing_after_gc() {
    let sb = Sandbox::new("overlaykilled");
    let out = cluster(
        &sb,
        r#"
        cluster_up 1 || exit 1
        mr 1 network create -d overlay --subnet 10.240.0.0/24 app >/dev/null || exit 1
        host_ns=$(on 1 readlink /proc/self/ns/net)
        mkdir -p $T/kb/rootfs/etc
        echo '{"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "hostname": "k"}' > $T/kb/config.json
        # SIGKILL after 0 to 38 ms: every step of the attach (the store's
        # round trips among them) is hit by some round.
        for ms in $(seq 0 2 38); do
            # The container: a process in a network namespace of its own,
            # made from host 1's (its pid from inside: nsenter forks).
            rm -f $T/holder.pid
            on 1 sh -c "echo \$\$ > $T/holder.pid; exec unshare --net --mount sleep 1000" &
            wait_for 2 "[ -s $T/holder.pid ]"; holder=$(cat $T/holder.pid)
            wait_for 2 "[ \"\$(readlink /proc/$holder/ns/net)\" != \"$host_ns\" ]"
            state="{\"id\": \"k$ms\", \"pid\": $holder, \"bundle\": \"$T/kb\", \"annotations\": {\"org.minirun.net.network\": \"app\"}}"
            rm -f $T/hook.pid
            echo "$state" > $T/state.json
            on 1 sh -c "echo \$\$ > $T/hook.pid; exec $MINIRUN_NET attach < $T/state.json" >/dev/null 2>&1 &
            wait_for 2 "[ -s $T/hook.pid ]"
            sleep $(printf '0.%03d' $ms)
            kill -KILL $(cat $T/hook.pid) 2>/dev/null
            wait_for 2 "! kill -0 $(cat $T/hook.pid) 2>/dev/null"
            kill -KILL $holder 2>/dev/null
        done
        echo "held-before-gc: $(etcd_keys | grep -c /addresses/)"
        sleep 0.5
        on 1 $MINIRUN_NET gc 2>&1 | tail -2
        echo "held-after-gc: $(etcd_keys | grep -c -e /addresses/ -e /endpoints/)"
        mr 1 network rm app >/dev/null && echo "removed: yes"
        echo "--left--"
        host_leftovers 1
        echo "--end--"
        "#,
    );
    out.ok();
    let held: u32 = out.field("held-before-gc").parse().unwrap();
    assert!(held > 0, "no attach got as far as its address: {out:?}");
    assert_eq!(out.field("held-after-gc"), "0", "{out:?}");
    assert_eq!(out.field("removed"), "yes", "{out:?}");
    assert_eq!(lines_after(&out, "--left--"), "", "{out:?}");
}

#[test]
fn a_pods_two_cni_interfaces_on_one_overlay_are_two_endpoints() {
    let sb = Sandbox::new("overlaycni");
    let out = cluster(
        &sb,
        r#"
        # ip netns keeps its names in /run: the sandbox's own.
        mount -t tmpfs tmpfs /run
        cluster_up 1 || exit 1
        mr 1 network create -d overlay --subnet 10.245.0.0/24 app >/dev/null || exit 1
        on 1 ip netns add pod
        conf='{"cniVersion":"1.1.0","name":"k8s-pod-network","type":"minirun-net","network":"app"}'
        cni() { echo "$conf" | on 1 env CNI_COMMAND=$1 CNI_CONTAINERID=pod CNI_NETNS=/run/netns/pod CNI_IFNAME=$2 $MINIRUN_NET >/dev/null; echo "$1 $2 rc=$?"; }
        cni ADD eth0; cni ADD net1
        echo "endpoints: $(etcd_keys | grep /endpoints/ | sed 's|.*/||' | sort | tr '\n' ' ')"
        cni DEL net1
        echo "after-del: $(etcd_keys | grep -e /endpoints/ -e /addresses/ | sed 's|.*/||' | sort | tr '\n' ' ')"
        cni DEL eth0
        echo "after-both: $(etcd_keys | grep -c -e /endpoints/ -e /addresses/)"
        on 1 ip netns del pod
        mr 1 network rm app >/dev/null && echo "removed: yes"
        "#,
    );
    out.ok();
    assert_eq!(out.field("endpoints"), "pod%eth0 pod%net1 ", "{out:?}");
    assert_eq!(out.field("after-del"), "10.245.0.2 pod%eth0 ", "{out:?}");
    assert_eq!(out.field("after-both"), "0", "{out:?}");
    assert_eq!(out.field("removed"), "yes", "{out:?}");
}
