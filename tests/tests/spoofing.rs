//! Anti-spoofing on the bridge: a container that forges another's address,
//! MAC or ARP, advertises an IPv6 neighbour or router, or sends other
//! protocols, reaches nobody, while its own traffic and ARP probes pass;
//! on a network with `-o anti_spoofing=false` the same frames arrive (which
//! shows the test sends what it says) but router advertisements, redirects
//! and DHCPv6 server replies, which no container port may send (those are
//! shown to arrive over a plain veth pair). The frames are sent from inside the
//! container's network namespace with a raw socket (what CAP_NET_RAW, a
//! default capability, allows), by tests/scripts/spoof.py.

use minirun_tests::{net_left, repo_dir, Sandbox, LEFTOVERS};

#[test]
fn a_container_cannot_speak_as_another() {
    let sb = Sandbox::new("spoof");
    let b = sb.bundle("b", &["/bin/sleep", "100"], |_| {});
    let out = sb.run(&format!(
        r#"{LEFTOVERS}
        ip link set lo up
        S="python3 {spoof}"
        $MINIRUN network create --subnet 10.98.0.0/24 guarded >/dev/null || exit 1
        $MINIRUN network create --subnet 10.97.0.0/24 -o anti_spoofing=false open >/dev/null || exit 1
        pid() {{ $MINIRUN state $1 | sed -n 's/.*"pid": \([0-9]*\).*/\1/p'; }}
        inside() {{ c=$1; shift; nsenter -n -t $(pid $c) "$@"; }}
        mac() {{ inside $1 ip -o link show eth0 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2; }}
        ip4() {{ inside $1 ip -4 -o addr show eth0 | awk '{{print $4}}' | cut -d/ -f1; }}
        for net in guarded open; do
            for c in a b c; do $MINIRUN run -d --net $net --bundle {b} $ID-$net-$c >/dev/null || exit 2; done
            A=$ID-$net-a; B=$ID-$net-b; C=$ID-$net-c
            # Looked up before the listener starts: its window holds the sends only.
            MA=$(mac $A); MB=$(mac $B); MC=$(mac $C); IA=$(ip4 $A); IB=$(ip4 $B); IC=$(ip4 $C)
            PA=$(pid $A)
            from_a() {{ nsenter -n -t $PA $S "$@"; }}
            inside $C $S listen 4 > $T/$net.out & listener=$!
            for i in $(seq 100); do grep -q listening $T/$net.out && break; sleep 0.02; done
            from_a udp $MA $IA $MC $IC own
            from_a udp $MA $IB $MC $IC forged-ip
            from_a udp $MB $IA $MC $IC forged-mac
            from_a arp $MA $IB
            from_a arp $MA $IA
            from_a probe $MA
            from_a ra $MA
            from_a redirect $MA
            from_a dhcp6 $MA
            from_a na $MA
            from_a l2 $MA
            wait $listener
            # Names for addresses: what arrived, from whom it claims to be.
            sed -e "s/$IA/A/g; s/$IB/B/g; s/$MA/mac-A/g; s/$MB/mac-B/g" $T/$net.out \
                | grep -v listening | grep -E ' (A|B|0\.0\.0\.0|mac-A|mac-B)( |$)' | sort | sed "s/^/$net: /"
            for c in a b c; do $MINIRUN delete -f $ID-$net-$c; done
        done
        $MINIRUN network rm guarded open >/dev/null
        # The control: over a plain veth pair the router frames do arrive.
        # (ip netns names live in /run: the sandbox's own.)
        mount -t tmpfs tmpfs /run
        ip netns add ctl-a; ip netns add ctl-b
        ip link add eth0 netns ctl-a type veth peer name eth0 netns ctl-b
        ip -n ctl-a link set eth0 up; ip -n ctl-b link set eth0 up
        ip netns exec ctl-b $S listen 3 > $T/control.out & listener=$!
        for i in $(seq 100); do grep -q listening $T/control.out && break; sleep 0.02; done
        m=$(ip -n ctl-a -o link show eth0 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
        for v in ra redirect dhcp6; do ip netns exec ctl-a $S $v $m; done
        wait $listener
        grep -v listening $T/control.out | cut -d' ' -f1 | sed 's/^/control: /'
        ip netns del ctl-a; ip netns del ctl-b
        leftovers
        "#,
        spoof = repo_dir().join("tests/scripts/spoof.py").display(),
        b = b.display()
    ));
    let seen: Vec<&str> = out
        .stdout
        .lines()
        .take_while(|l| *l != "--left--")
        .collect();
    assert_eq!(
        seen,
        [
            "guarded: arp 0.0.0.0 mac-A",
            "guarded: arp A mac-A",
            "guarded: udp A mac-A own",
            "open: arp 0.0.0.0 mac-A",
            "open: arp A mac-A",
            "open: arp B mac-A",
            "open: na mac-A",
            "open: other 0x88b5 mac-A",
            "open: udp A mac-A own",
            "open: udp A mac-B forged-mac",
            "open: udp B mac-A forged-ip",
            "control: ra",
            "control: redirect",
            "control: dhcp6",
        ],
        "{out:?}"
    );
    assert_eq!(net_left(&out), "", "{out:?}");
}
