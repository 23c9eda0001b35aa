#!/usr/bin/env python3
"""Frames a container could send with CAP_NET_RAW, and what reaches another.

Run inside a container's network namespace (nsenter -n -t PID):

  spoof.py listen SECONDS            print what arrives on eth0, one line each:
                                     "udp SRC_IP SRC_MAC PAYLOAD", "arp SENDER_IP
                                     SENDER_MAC", "ra SRC_MAC", "na SRC_MAC",
                                     "redirect SRC_MAC", "dhcp6 SRC_MAC",
                                     "other ETHERTYPE"
  spoof.py udp SRC_MAC SRC_IP DST_MAC DST_IP PAYLOAD
                                     one UDP datagram to port 9999, headers as given
                                     (IPv6 when the addresses are; printed "udp6 ...")
  spoof.py na6 SRC_MAC SRC_IP TARGET an IPv6 neighbour advertisement from SRC_IP:
                                     TARGET is at SRC_MAC (printed "na6 TARGET SRC_MAC")
  spoof.py arp SRC_MAC SENDER_IP     a gratuitous ARP reply: SENDER_IP is at SRC_MAC
                                     (the listener prints only these ARP frames)
  spoof.py probe SRC_MAC             an ARP address probe (RFC 5227): who has the
                                     marked address, from 0.0.0.0
  spoof.py ra SRC_MAC                an IPv6 router advertisement to all nodes
  spoof.py na SRC_MAC                an IPv6 neighbour advertisement: fe80::dead
                                     (a neighbour's address, say) is at SRC_MAC
  spoof.py redirect SRC_MAC          an ICMPv6 redirect to all nodes
  spoof.py dhcp6 SRC_MAC             a DHCPv6 server's ADVERTISE (547 to 546)
  spoof.py l2 SRC_MAC                a frame of an ethertype that is no IP (0x88b5,
                                     local experimental)

Addresses are written as in `ip` (aa:bb:..., dotted quads).
"""

import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
# The target hardware address of the test's ARP frames, so the listener
# tells them from the ARP the containers' kernels send themselves.
ARP_MARK = "02:00:5e:00:53:99"
# The target of the test's neighbour advertisements, for the same reason.
NA_MARK = "fe80::dead"


def mac(text):
    return bytes(int(b, 16) for b in text.split(":"))


def mac_text(raw):
    return ":".join(f"{b:02x}" for b in raw)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def send(frame):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind(("eth0", 0))
    s.send(frame)


def udp(src_mac, src_ip, dst_mac, dst_ip, payload):
    if ":" in src_ip:
        return udp6(src_mac, src_ip, dst_mac, dst_ip, payload)
    body = payload.encode()
    udp_header = struct.pack("!HHHH", 40000, 9999, 8 + len(body), 0)
    total = 20 + len(udp_header) + len(body)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0, 64, 17, 0,
                     socket.inet_aton(src_ip), socket.inet_aton(dst_ip))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    send(mac(dst_mac) + mac(src_mac) + b"\x08\x00" + ip + udp_header + body)


def udp6(src_mac, src_ip, dst_mac, dst_ip, payload):
    body = payload.encode()
    src = socket.inet_pton(socket.AF_INET6, src_ip)
    dst = socket.inet_pton(socket.AF_INET6, dst_ip)
    udp_packet = struct.pack("!HHHH", 40000, 9999, 8 + len(body), 0) + body
    pseudo = src + dst + struct.pack("!I3xB", len(udp_packet), 17)
    udp_packet = udp_packet[:6] + struct.pack("!H", checksum(pseudo + udp_packet)) + udp_packet[8:]
    ip6 = struct.pack("!IHBB", 6 << 28, len(udp_packet), 17, 64) + src + dst
    send(mac(dst_mac) + mac(src_mac) + b"\x86\xdd" + ip6 + udp_packet)


def na6(src_mac, src_ip, target_ip):
    # From the sender's own address, to all nodes: TARGET is at SRC_MAC.
    src = socket.inet_pton(socket.AF_INET6, src_ip)
    dst = socket.inet_pton(socket.AF_INET6, "ff02::1")
    target = socket.inet_pton(socket.AF_INET6, target_ip)
    icmp = struct.pack("!BBHI", 136, 0, 0, 0x20000000) + target + bytes([2, 1]) + mac(src_mac)
    pseudo = src + dst + struct.pack("!I3xB", len(icmp), 58)
    icmp = icmp[:2] + struct.pack("!H", checksum(pseudo + icmp)) + icmp[4:]
    ip6 = struct.pack("!IHBB", 6 << 28, len(icmp), 58, 255) + src + dst
    send(mac("33:33:00:00:00:01") + mac(src_mac) + b"\x86\xdd" + ip6 + icmp)


def arp(src_mac, sender_ip):
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, mac(src_mac),
                       socket.inet_aton(sender_ip), mac(ARP_MARK), socket.inet_aton(sender_ip))
    send(b"\xff" * 6 + mac(src_mac) + b"\x08\x06" + body)


def probe(src_mac):
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac(src_mac),
                       socket.inet_aton("0.0.0.0"), mac(ARP_MARK), socket.inet_aton("192.0.2.99"))
    send(b"\xff" * 6 + mac(src_mac) + b"\x08\x06" + body)


def icmp6(src_mac, icmp):
    src = socket.inet_pton(socket.AF_INET6, "fe80::1")
    dst = socket.inet_pton(socket.AF_INET6, "ff02::1")
    pseudo = src + dst + struct.pack("!I3xB", len(icmp), 58)
    icmp = icmp[:2] + struct.pack("!H", checksum(pseudo + icmp)) + icmp[4:]
    ip6 = struct.pack("!IHBB", 6 << 28, len(icmp), 58, 255) + src + dst
    send(mac("33:33:00:00:00:01") + mac(src_mac) + b"\x86\xdd" + ip6 + icmp)


def na(src_mac):
    # type 136, override flag, target fe80::dead, target link-layer option
    target = socket.inet_pton(socket.AF_INET6, NA_MARK)
    icmp = struct.pack("!BBHI", 136, 0, 0, 0x20000000) + target + bytes([2, 1]) + mac(src_mac)
    icmp6(src_mac, icmp)


def ra(src_mac):
    # type 134, code 0, checksum, hop limit, flags, router lifetime 1800 s,
    # reachable time, retrans timer
    icmp6(src_mac, struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0))


def redirect(src_mac):
    # type 137: "a better first hop for fe80::dead is fe80::1"
    target = socket.inet_pton(socket.AF_INET6, "fe80::1")
    dest = socket.inet_pton(socket.AF_INET6, NA_MARK)
    icmp6(src_mac, struct.pack("!BBHI", 137, 0, 0, 0) + target + dest)


def dhcp6(src_mac):
    # A DHCPv6 server's ADVERTISE (type 2) from port 547 to a client's 546.
    src = socket.inet_pton(socket.AF_INET6, "fe80::1")
    dst = socket.inet_pton(socket.AF_INET6, "ff02::1")
    payload = bytes([2, 0, 0, 1])
    udp6 = struct.pack("!HHHH", 547, 546, 8 + len(payload), 0) + payload
    pseudo = src + dst + struct.pack("!I3xB", len(udp6), 17)
    udp6 = udp6[:6] + struct.pack("!H", checksum(pseudo + udp6)) + udp6[8:]
    ip6 = struct.pack("!IHBB", 6 << 28, len(udp6), 17, 255) + src + dst
    send(mac("33:33:00:00:00:01") + mac(src_mac) + b"\x86\xdd" + ip6 + udp6)


def l2(src_mac):
    send(b"\xff" * 6 + mac(src_mac) + b"\x88\xb5" + b"minirun test frame".ljust(46, b"\0"))


def listen(seconds):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind(("eth0", 0))
    s.settimeout(0.1)
    print("listening", flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            frame, addr = s.recvfrom(65535)
        except socket.timeout:
            continue
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        src_mac = mac_text(frame[6:12])
        kind = struct.unpack("!H", frame[12:14])[0]
        if kind == 0x0800 and frame[23] == 17:
            ihl = (frame[14] & 0x0F) * 4
            udp_start = 14 + ihl
            if struct.unpack("!H", frame[udp_start + 2:udp_start + 4])[0] == 9999:
                src_ip = socket.inet_ntoa(frame[26:30])
                payload = frame[udp_start + 8:].decode(errors="replace").rstrip("\0")
                print(f"udp {src_ip} {src_mac} {payload}", flush=True)
        elif (kind == 0x86DD and frame[20] == 17
              and struct.unpack("!H", frame[56:58])[0] == 9999):
            src_ip = socket.inet_ntop(socket.AF_INET6, frame[22:38])
            payload = frame[62:].decode(errors="replace").rstrip("\0")
            print(f"udp6 {src_ip} {src_mac} {payload}", flush=True)
        elif (kind == 0x86DD and frame[20] == 58 and frame[54] == 136
              and frame[62:78] != socket.inet_pton(socket.AF_INET6, NA_MARK)):
            target = socket.inet_ntop(socket.AF_INET6, frame[62:78])
            print(f"na6 {target} {src_mac}", flush=True)
        elif kind == 0x0806 and mac_text(frame[32:38]) == ARP_MARK:
            sender_mac = mac_text(frame[22:28])
            sender_ip = socket.inet_ntoa(frame[28:32])
            print(f"arp {sender_ip} {sender_mac}", flush=True)
        elif kind == 0x86DD and frame[20] == 58 and frame[54] == 134:
            print(f"ra {src_mac}", flush=True)
        elif kind == 0x86DD and frame[20] == 58 and frame[54] == 137:
            print(f"redirect {src_mac}", flush=True)
        elif (kind == 0x86DD and frame[20] == 17
              and struct.unpack("!HH", frame[54:58]) == (547, 546)):
            print(f"dhcp6 {src_mac}", flush=True)
        elif (kind == 0x86DD and frame[20] == 58 and frame[54] == 136
              and frame[62:78] == socket.inet_pton(socket.AF_INET6, NA_MARK)):
            print(f"na {src_mac}", flush=True)
        elif kind == 0x88B5:
            print(f"other {kind:#06x} {src_mac}", flush=True)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "listen":
        listen(float(args[0]))
    elif cmd == "udp":
        udp(*args)
    elif cmd == "arp":
        arp(*args)
    elif cmd == "ra":
        ra(*args)
    elif cmd == "na":
        na(*args)
    elif cmd == "na6":
        na6(*args)
    elif cmd == "redirect":
        redirect(*args)
    elif cmd == "dhcp6":
        dhcp6(*args)
    elif cmd == "probe":
        probe(*args)
    elif cmd == "l2":
        l2(*args)
    else:
        sys.exit(f"spoof.py: unknown command {cmd}")


if __name__ == "__main__":
    main()
