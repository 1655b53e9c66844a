"""Janus .mjr files for the import-mjr tests, written from the format Janus documents
(docs/recordings: "Meetecho Janus Recordings"): an 8-byte magic, a 2-byte big-endian length
and a JSON info header (t: a/v/d, c: codec, s: created, u: first packet written, both in
microseconds since the epoch; optional f: fmtp, x: extension map, e: encrypted), then one
frame per RTP packet: "MEET", 4-byte ms since "u", 2-byte length, the packet (MJR00002);
MJR00001 frames are "MEETECHO", length, packet. Plus a small classic-pcap reader, so the
packets come from a real capture of a real sender."""
import json
import struct


def write_mjr(path, media, codec, packets, version=2, fmtp=None, extmap=None, encrypted=False):
    """packets: [(arrival_ns, rtp_bytes)]. "u" is the first packet's arrival."""
    first_us = packets[0][0] // 1000 if packets else 0
    info = {"t": media, "c": codec}
    if fmtp:
        info["f"] = fmtp
    if extmap:
        info["x"] = {str(k): v for k, v in extmap.items()}
    info["s"] = first_us
    info["u"] = first_us
    if encrypted:
        info["e"] = True
    head = json.dumps(info, separators=(",", ":")).encode()
    with open(path, "wb") as f:
        f.write(b"MJR00002" if version == 2 else b"MJR00001")
        f.write(struct.pack(">H", len(head)) + head)
        for arrival_ns, body in packets:
            if version == 2:
                ms = (arrival_ns // 1000 - first_us) // 1000
                f.write(b"MEET" + struct.pack(">IH", ms, len(body)))
            else:
                f.write(b"MEETECHO" + struct.pack(">H", len(body)))
            f.write(body)


def read_mjr(path):
    """(info dict, [(time_ms or None, body)]) of a whole .mjr file; asserts it is whole."""
    data = open(path, "rb").read()
    magic = data[:8]
    assert magic in (b"MJR00002", b"MJR00001"), magic
    (n,) = struct.unpack(">H", data[8:10])
    info = json.loads(data[10:10 + n])
    pos, frames = 10 + n, []
    while pos < len(data):
        if magic == b"MJR00002":
            assert data[pos:pos + 4] == b"MEET", pos
            ms, length = struct.unpack(">IH", data[pos + 4:pos + 10])
        else:
            assert data[pos:pos + 8] == b"MEETECHO", pos
            ms, (length,) = None, struct.unpack(">H", data[pos + 8:pos + 10])
        frames.append((ms, data[pos + 10:pos + 10 + length]))
        pos += 10 + length
    assert pos == len(data)
    return info, frames


def read_pcap_udp(path):
    """[(arrival_ns, src_port, dst_port, payload)] of the UDP/IPv4 datagrams of a classic
    pcap with an Ethernet link (what tcpdump -i lo writes)."""
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    assert magic in (0xA1B2C3D4, 0xA1B23C4D), hex(magic)
    nano = magic == 0xA1B23C4D
    linktype = struct.unpack("<I", data[20:24])[0]
    assert linktype == 1, linktype
    pos, out = 24, []
    while pos + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack("<IIII", data[pos:pos + 16])
        frame = data[pos + 16:pos + 16 + caplen]
        pos += 16 + caplen
        if len(frame) < 14 + 20 or frame[12:14] != b"\x08\x00":
            continue
        ihl = (frame[14] & 0x0F) * 4
        if frame[14 + 9] != 17:
            continue
        udp = frame[14 + ihl:]
        sport, dport, ulen = struct.unpack(">HHH", udp[:6])
        arrival = sec * 1_000_000_000 + (frac if nano else frac * 1000)
        out.append((arrival, sport, dport, udp[8:ulen]))
    return out


def rtp_timestamp(body):
    return struct.unpack(">I", body[4:8])[0]


def rtp_ssrc(body):
    return struct.unpack(">I", body[8:12])[0]
