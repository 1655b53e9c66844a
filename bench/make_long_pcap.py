#!/usr/bin/env python3
"""Makes a long capture from a short one, as ../shared/PEERS.md describes its transmux
input: the capture repeated N times with arrival times, RTP sequence numbers and RTP
timestamps shifted so the result is one continuous stream per SSRC (RTCP SR NTP and RTP
times shifted alike). Ethernet + IPv4 + UDP classic pcap in and out (what
`tcpdump -i lo` writes)."""
import struct
import sys


def read_pcap(path):
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    if magic not in (0xA1B2C3D4, 0xA1B23C4D):
        sys.exit(f"{path}: need a little-endian classic pcap")
    nano = magic == 0xA1B23C4D
    header = data[:24]
    pos, frames = 24, []
    while pos + 16 <= len(data):
        sec, frac, caplen, wirelen = struct.unpack("<IIII", data[pos:pos + 16])
        frame = data[pos + 16:pos + 16 + caplen]
        pos += 16 + caplen
        t = sec * 10**9 + (frac if nano else frac * 1000)
        frames.append((t, frame))
    return header, nano, frames


def udp_payload_offset(frame):
    if len(frame) < 42 or frame[12:14] != b"\x08\x00":
        return None
    ihl = (frame[14] & 0x0F) * 4
    if frame[23] != 17:
        return None
    return 14 + ihl + 8


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: make_long_pcap.py IN.pcap OUT.pcap COPIES")
    header, nano, frames = read_pcap(sys.argv[1])
    copies = int(sys.argv[3])
    # Per SSRC: how far sequence numbers and timestamps move per copy.
    streams = {}
    for _, frame in frames:
        off = udp_payload_offset(frame)
        if off is None or len(frame) < off + 12 or frame[off] >> 6 != 2 or 192 <= frame[off + 1] <= 223:
            continue
        seq, ts, ssrc = struct.unpack(">HII", frame[off + 2:off + 12])
        s = streams.setdefault(ssrc, {"first_seq": seq, "count": 0, "first_ts": ts, "last_ts": ts, "step": 0})
        s["count"] += 1
        if ts != s["last_ts"]:
            s["step"] = (ts - s["last_ts"]) & 0xFFFFFFFF
        s["last_ts"] = ts
    span_ns = frames[-1][0] - frames[0][0] + 20_000_000
    out = open(sys.argv[2], "wb")
    out.write(header)
    for k in range(copies):
        shift = k * span_ns
        for t, frame in frames:
            frame = bytearray(frame)
            off = udp_payload_offset(frame)
            if off is not None and len(frame) >= off + 8 and frame[off] >> 6 == 2:
                frame[off - 2:off] = b"\0\0"  # UDP checksum: none (payload changes)
                pt = frame[off + 1]
                if 192 <= pt <= 223:
                    pos = off
                    while pos + 4 <= len(frame):
                        length = (struct.unpack(">H", frame[pos + 2:pos + 4])[0] + 1) * 4
                        if frame[pos + 1] == 200 and pos + 20 <= len(frame):
                            ssrc, ntp, rtp_ts = struct.unpack(">IQI", frame[pos + 4:pos + 20])
                            s = streams.get(ssrc)
                            ntp += (shift << 32) // 10**9
                            if s:
                                span_ts = ((s["last_ts"] - s["first_ts"]) & 0xFFFFFFFF) + s["step"]
                                rtp_ts = (rtp_ts + k * span_ts) & 0xFFFFFFFF
                            frame[pos + 8:pos + 20] = struct.pack(">QI", ntp & (2**64 - 1), rtp_ts)
                        pos += length
                elif len(frame) >= off + 12:
                    seq, ts, ssrc = struct.unpack(">HII", frame[off + 2:off + 12])
                    s = streams.get(ssrc)
                    if s:
                        span_ts = ((s["last_ts"] - s["first_ts"]) & 0xFFFFFFFF) + s["step"]
                        seq = (seq + k * s["count"]) & 0xFFFF
                        ts = (ts + k * span_ts) & 0xFFFFFFFF
                        frame[off + 2:off + 8] = struct.pack(">HI", seq, ts)
            t2 = t + shift
            frac = t2 % 10**9 if nano else (t2 % 10**9) // 1000
            out.write(struct.pack("<IIII", t2 // 10**9, frac, len(frame), len(frame)))
            out.write(frame)
    out.close()


if __name__ == "__main__":
    main()
