//! Nothing is left behind when a runtime command is killed at a bad moment:
//! what a killed `create` or `run -d` made is a container `list` shows and
//! `delete -f` removes whole (state directory, cgroups in every hierarchy,
//! processes); what a killed network hook made, its container's detach or
//! `minirun-net gc` removes.

use minirun_tests::{net_left, Sandbox, LEFTOVERS, NETNS_HOLDER};

#[test]
fn a_create_killed_anywhere_is_listed_and_deleted_whole() {
    let sb = Sandbox::new("killed");
    let b = sb.bundle("b", &["/bin/sleep", "100"], |c| {
        c["linux"]["resources"] =
            serde_json::json!({"pids": {"limit": 50}, "memory": {"limit": 67108864}});
    });
    // SIGKILL after 0 to 39 ms (a create takes a few ms in release builds,
    // tens in debug ones), so that every step of it is hit by some round.
    let out = sb.run(&format!(
        r#"
        listed=0; half=0
        for ms in $(seq 0 39); do
            id=$ID-k$ms
            # create, and run -d (create, then start) every other round.
            verb=create; [ $((ms % 2)) = 1 ] && verb="run -d"
            $MINIRUN $verb --bundle {b} $id >/dev/null 2>&1 &
            sleep $(printf '0.%03d' $ms)
            kill -KILL $! 2>/dev/null; wait $! 2>/dev/null
            if [ -e $ROOT/$id ]; then
                half=$((half + 1))
                $MINIRUN list -q | grep -qx "$id" && listed=$((listed + 1))
            fi
            $MINIRUN delete -f $id || echo "delete -f $id failed"
        done
        echo "half-made: $half, listed: $listed"
        echo "state dirs left: $(ls -A $ROOT | wc -l)"
        echo "cgroup dirs left: $(find /sys/fs/cgroup -type d -name "$ID-k*" | wc -l)"
        echo "processes left: $(ps -e -o comm= | grep -c sleep)"
        # The ids are free again.
        $MINIRUN create --bundle {b} $ID-k0 && $MINIRUN delete -f $ID-k0 && echo reusable
        "#,
        b = b.display()
    ));
    let counts = out.field("half-made");
    let half: Vec<&str> = counts.split(", listed: ").collect();
    assert_eq!(
        half[0], half[1],
        "every half-made container is listed: {out:?}"
    );
    assert!(
        half[0].parse::<u32>().unwrap() > 0,
        "no round hit a create half way: {out:?}"
    );
    assert_eq!(out.field("state dirs left"), "0", "{out:?}");
    assert_eq!(out.field("cgroup dirs left"), "0", "{out:?}");
    assert_eq!(out.field("processes left"), "0", "{out:?}");
    assert!(out.stdout.contains("reusable"), "{out:?}");
    assert!(!out.stdout.contains("failed"), "{out:?}");
}

/// minirun-net attach killed at every point, as a runtime's hook timeout or
/// an OOM kill would: the container's poststop `detach` (its delete) or, for
/// a container gone without one, `minirun-net gc` undoes whatever it made,
/// and the same id gets the same host ports afterwards.
#[test]
fn a_network_hook_killed_anywhere_leaves_nothing_after_detach_or_gc() {
    let sb = Sandbox::new("hookkill");
    let b = sb.bundle("b", &["/bin/true"], |_| {});
    let out = sb.run(&format!(
        r#"{LEFTOVERS}{NETNS_HOLDER}
        ip link set lo up
        state() {{ echo '{{"id":"'$1'","pid":'$2',"bundle":"{b}","annotations":{{"org.minirun.net.ports":"8080:80,9000-9040:9000-9040/udp"}}}}'; }}
        for ms in $(seq 0 2 58); do
            id=$ID-k$ms
            netns_holder holder
            state $id $holder | $MINIRUN_NET attach >/dev/null 2>&1 & hook=$!
            sleep $(printf '0.%03d' $ms)
            kill -KILL $hook 2>/dev/null; wait $hook 2>/dev/null
            if [ $((ms % 4)) = 0 ]; then
                # Its delete: the poststop hook.
                state $id 0 | $MINIRUN_NET detach || echo "detach $id failed"
                kill -KILL $holder; wait $holder 2>/dev/null
            else
                # Gone without a poststop: gc's to find.
                kill -KILL $holder; wait $holder 2>/dev/null
            fi
        done
        $MINIRUN_NET gc 2>&1 | sed 's/[0-9][0-9]* attachment.*/N/'
        # The same id publishes the same ports again.
        netns_holder holder
        state $ID-k2 $holder | $MINIRUN_NET attach && echo reattached
        state $ID-k2 0 | $MINIRUN_NET detach
        kill -KILL $holder; wait $holder 2>/dev/null
        leftovers
        "#,
        b = b.display()
    ));
    assert!(
        out.stdout.contains("minirun-net: gc: N\nreattached\n"),
        "{out:?}"
    );
    assert!(!out.stdout.contains("failed"), "{out:?}");
    assert_eq!(net_left(&out), "", "{out:?}");
}

/// A publish of many ports killed half way: its container's detach removes
/// every claim it made (its record names the ports asked for before the
/// first claim).
#[test]
fn a_publish_killed_half_way_leaves_no_claim() {
    let sb = Sandbox::new("pubkill");
    let b = sb.bundle("b", &["/bin/true"], |_| {});
    let out = sb.run(&format!(
        r#"{LEFTOVERS}{NETNS_HOLDER}
        ip link set lo up
        netns_holder holder
        state='{{"id":"'$ID'","pid":'$holder',"bundle":"{b}","annotations":{{"org.minirun.net.ports":"20000-22999:20000-22999"}}}}'
        echo "$state" | $MINIRUN_NET attach >/dev/null 2>&1 & hook=$!
        for i in $(seq 500); do [ $(ls $MINIRUN_NET_DIR/ports 2>/dev/null | wc -l) -gt 100 ] && break; sleep 0.01; done
        kill -KILL $hook; wait $hook 2>/dev/null
        n=$(ls $MINIRUN_NET_DIR/ports | wc -l)
        [ $n -gt 100 ] && [ $n -lt 3000 ] && echo "killed while claiming"
        echo '{{"id":"'$ID'","pid":0,"bundle":"{b}"}}' | $MINIRUN_NET detach && echo detached
        kill -KILL $holder; wait $holder 2>/dev/null
        leftovers
        "#,
        b = b.display()
    ));
    assert!(out.stdout.contains("detached\n"), "{out:?}");
    if !out.stdout.contains("killed while claiming") {
        eprintln!("the publish was not caught half way this time: {out:?}");
    }
    assert_eq!(net_left(&out), "", "{out:?}");
}

/// A container gone without its poststop hook leaves its record; the next
/// container of that id takes the id over (the earlier one's elements go
/// first), and ids that look like file names of the store (`web.json`) do
/// not collide with other containers' records.
#[test]
fn an_id_is_taken_over_from_a_container_gone_without_detach() {
    let sb = Sandbox::new("takeover");
    let b = sb.bundle("b", &["/bin/true"], |_| {});
    let out = sb.run(&format!(
        r#"{LEFTOVERS}{NETNS_HOLDER}
        state() {{ echo '{{"id":"'$1'","pid":'$2',"bundle":"{b}","annotations":{{"org.minirun.net.ports":"8080:80"}}}}'; }}
        netns_holder old
        state web $old | $MINIRUN_NET attach || exit 1
        kill -KILL $old; wait $old 2>/dev/null
        # The kernel takes the veth away with the namespace, a moment later.
        for i in $(seq 200); do ip -o link | grep -q veth || break; sleep 0.01; done
        netns_holder new
        state web $new | $MINIRUN_NET attach && echo taken-over
        echo "elements for 8080: $(nft list map inet minirun publish_any | grep -c 8080)"
        # A live one is not taken over.
        state web $new | $MINIRUN_NET attach 2>&1 | grep -o 'already on network bridge'
        netns_holder other
        echo '{{"id":"web.json","pid":'$other',"bundle":"{b}"}}' | $MINIRUN_NET attach && echo web.json-attached
        ls $MINIRUN_NET_DIR/containers
        echo '{{"id":"web.json","pid":0}}' | $MINIRUN_NET detach
        state web 0 | $MINIRUN_NET detach
        kill -KILL $new $other; wait 2>/dev/null
        leftovers
        "#,
        b = b.display()
    ));
    assert_eq!(
        out.stdout.split("--left--").next().unwrap(),
        "taken-over\nelements for 8080: 1\nalready on network bridge\nweb.json-attached\nweb.json\nweb.json.json\n",
        "{out:?}"
    );
    assert_eq!(net_left(&out), "", "{out:?}");
}
