"""Sends one VXLAN packet as a host of the underlay would: VNI, inner
Ethernet frame to a container's MAC, IPv4/UDP to its address and port.

usage: vxlan_send.py VTEP VNI MAC IP PORT PAYLOAD
"""
import socket
import struct
import sys


def checksum(data):
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


vtep, vni, mac, ip, port, payload = sys.argv[1:7]
src_ip = "10.200.254.254"
udp = struct.pack("!HHHH", 40000, int(port), 8 + len(payload), 0) + payload.encode()
header = struct.pack(
    "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
    socket.inet_aton(src_ip), socket.inet_aton(ip),
)
header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
frame = (
    bytes.fromhex(mac.replace(":", ""))
    + bytes.fromhex("0242c0a8fefe")
    + b"\x08\x00"
    + header
    + udp
)
vxlan = struct.pack("!II", 0x08000000, int(vni) << 8)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(vxlan + frame, (vtep, 4789))
