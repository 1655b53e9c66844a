"""Counting what a capture saw, independently of capstan: a small pcap reader and the
RFC 5761 rule, giving per-SSRC RTP and RTCP packet counts for a destination port."""
import collections
import struct


def frames(path):
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    assert magic in (0xA1B2C3D4, 0xA1B23C4D), "classic little-endian pcap expected"
    nano = magic == 0xA1B23C4D
    linktype = struct.unpack("<I", data[20:24])[0]
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack("<IIII", data[pos:pos + 16])
        yield sec + frac / (1e9 if nano else 1e6), linktype, data[pos + 16:pos + 16 + caplen]
        pos += 16 + caplen


def udp_payloads(path):
    """(time, dst port, payload) for IPv4/IPv6 UDP frames of an Ethernet or cooked capture."""
    for t, linktype, frame in frames(path):
        if linktype == 1:
            ethertype, off = struct.unpack(">H", frame[12:14])[0], 14
        elif linktype == 113:
            ethertype, off = struct.unpack(">H", frame[14:16])[0], 16
        else:
            continue
        if ethertype == 0x0800:
            ihl = (frame[off] & 0x0F) * 4
            if frame[off + 9] != 17:
                continue
            udp = off + ihl
        elif ethertype == 0x86DD:
            if frame[off + 6] != 17:
                continue
            udp = off + 40
        else:
            continue
        dport, length = struct.unpack(">HH", frame[udp + 2:udp + 6])
        yield t, dport, frame[udp + 8:udp + length]


def rtcp_owner(p, known):
    """The SSRC an RTCP compound is filed under (docs/cli.md's rule): the first of its
    packets whose own SSRC is a known stream, else the first report block or feedback
    target that is; else the first packet's SSRC."""
    packets, pos = [], 0
    while pos + 8 <= len(p):
        count, pt = p[pos] & 0x1F, p[pos + 1]
        length = (struct.unpack(">H", p[pos + 2:pos + 4])[0] + 1) * 4
        packets.append((pt, count, p[pos:pos + length]))
        pos += length
    for pt, _, body in packets:
        ssrc = struct.unpack(">I", body[4:8])[0]
        if ssrc in known:
            return ssrc
    for pt, count, body in packets:
        if pt in (200, 201):
            first = 28 if pt == 200 else 8
            for i in range(count):
                ssrc = struct.unpack(">I", body[first + 24 * i:first + 24 * i + 4])[0]
                if ssrc in known:
                    return ssrc
        elif pt in (205, 206):
            ssrc = struct.unpack(">I", body[8:12])[0]
            if ssrc in known:
                return ssrc
    return struct.unpack(">I", p[4:8])[0]


def count(path, port):
    """Per-SSRC RTP counts and per-SSRC RTCP counts sent to `port`."""
    rtp, rtcp = collections.Counter(), collections.Counter()
    times = collections.defaultdict(list)
    compounds = []
    for t, dport, p in udp_payloads(path):
        if dport != port or len(p) < 8 or p[0] >> 6 != 2:
            continue
        if 192 <= p[1] <= 223:
            compounds.append(p)
        elif len(p) >= 12:
            ssrc = struct.unpack(">I", p[8:12])[0]
            rtp[ssrc] += 1
            times[ssrc].append(t)
    for p in compounds:
        rtcp[rtcp_owner(p, set(rtp))] += 1
    return rtp, rtcp, times
