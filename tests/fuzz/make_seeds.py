#!/usr/bin/env python3
"""Writes the small seed inputs of tests/fuzz/corpus/ (run from the repo root after a
build: the chunk seeds come from capstan's own import). Crashes found by `make fuzz` are
added to the corpora by hand, so they replay forever after."""
import os
import shutil
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
CAPSTAN = os.path.join(ROOT, sys.argv[1] if len(sys.argv) > 1 else "build", "capstan")


def rtp(seq, ssrc=0x11223344, pt=96, payload=b"\x10\x00\x00\x9d\x01\x2a", marker=0, csrc=(),
        ext=None, pad=0):
    first = 0x80 | (len(csrc) & 0xF) | (0x10 if ext is not None else 0) | (0x20 if pad else 0)
    head = struct.pack(">BBHII", first, (marker << 7) | pt, seq, seq * 3000, ssrc)
    head += b"".join(struct.pack(">I", c) for c in csrc)
    if ext is not None:
        profile, body = ext
        head += struct.pack(">HH", profile, len(body) // 4) + body
    tail = (b"\0" * (pad - 1) + bytes([pad])) if pad else b""
    return head + payload + tail


def sr(ssrc, blocks=0):
    body = struct.pack(">IQIII", ssrc, 0xE5A0B1C2D3E4F506, 123456, 10, 1000)
    body += b"".join(struct.pack(">IIIIII", 0x55667788, 0x01000002, 100, 5, 0, 0)
                     for _ in range(blocks))
    return struct.pack(">BBH", 0x80 | blocks, 200, len(body) // 4) + body


def sdes(ssrc, cname=b"user@host"):
    item = bytes([1, len(cname)]) + cname + b"\0"
    item += b"\0" * (-len(item) % 4)
    body = struct.pack(">I", ssrc) + item
    return struct.pack(">BBH", 0x81, 202, len(body) // 4) + body


def rtcp_samples():
    bye = struct.pack(">BBHI", 0x81, 203, 2, 0x11223344) + b"\x03bye"
    app = struct.pack(">BBHI", 0x80, 204, 3, 0x11223344) + b"NAME" + b"data"
    pli = struct.pack(">BBHII", 0x81, 206, 2, 0x11223344, 0x55667788)
    nack = struct.pack(">BBHIIHH", 0x81, 205, 3, 0x11223344, 0x55667788, 100, 0x0005)
    rr = struct.pack(">BBHI", 0x81, 201, 7, 0x99887766) + struct.pack(">IIIIII", 0x11223344, 0, 1, 2, 3, 4)
    return {
        "sr_sdes": sr(0x11223344, 1) + sdes(0x11223344),
        "rr": rr, "bye": bye, "app": app, "pli": pli, "nack": nack,
        "lying_length": sr(0x11223344)[:2] + b"\x00\x30" + sr(0x11223344)[4:],
        "garbage_after": sr(0x11223344) + b"\xde\xad\xbe\xef",
    }


def rtp_samples():
    return {
        "plain": rtp(1),
        "marker_csrc": rtp(2, marker=1, csrc=(1, 2, 3)),
        "one_byte_ext": rtp(3, ext=(0xBEDE, bytes([0x10, 0xFF, 0x00, 0x00]))),
        "two_byte_ext": rtp(4, ext=(0x1000, bytes([1, 2, 0xAA, 0xBB]))),
        "padding": rtp(5, pad=4),
        "truncated": rtp(6)[:9],
    }


def udp_frame(payload, sport=4000, dport=5000):
    udp = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
    return b"\0" * 12 + b"\x08\x00" + ip + udp


def pcap(frames):
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for i, frame in enumerate(frames):
        out += struct.pack("<IIII", 1700000000, i * 20000, len(frame), len(frame)) + frame
    return out


def write(folder, name, data):
    os.makedirs(os.path.join(CORPUS, folder), exist_ok=True)
    with open(os.path.join(CORPUS, folder, name), "wb") as f:
        f.write(data)


def mjr(magic, info, frames):
    """A Janus .mjr: magic, 2-byte length, JSON info header, then frames."""
    head = info.encode()
    return magic + struct.pack(">H", len(head)) + head + b"".join(frames)


def mjr_samples():
    video = ('{"t":"v","c":"vp8","f":"max-fs=12288","x":{"1":"urn:ietf:params:rtp-hdrext:sdes:mid"},'
             '"s":1700000000000000,"u":1700000000100000}')
    packets = [rtp(i, marker=i % 3 == 2) for i in range(6)]
    v2 = [b"MEET" + struct.pack(">IH", 33 * i, len(p)) + p for i, p in enumerate(packets)]
    v2.append(b"MEET" + struct.pack(">IH", 300, 3) + b"abc")   # not RTP
    v2_file = mjr(b"MJR00002", video, v2)
    opus = [rtp(i, ssrc=0xAABBCCDD, pt=111, payload=b"\xfc\xff\xfe") for i in range(4)]
    v1 = [b"MEETECHO" + struct.pack(">H", len(p)) + p for p in opus]
    g711 = [b"MEET" + struct.pack(">IH", 20 * i, len(p)) + p
            for i, p in enumerate(rtp(i, ssrc=5, pt=8, payload=b"\xd5" * 160) for i in range(3))]
    return {
        "vp8_v2.mjr": v2_file,
        "opus_v1.mjr": mjr(b"MJR00001", '{"t":"a","c":"opus","s":1,"u":2}', v1),
        "g711_v2.mjr": mjr(b"MJR00002", '{"t":"a","c":"g711","s":1,"u":2}', g711),
        "cut.mjr": v2_file[: len(v2_file) - 9],
        "data_refused.mjr": mjr(b"MJR00002", '{"t":"d","c":"text","s":1,"u":2}', []),
    }


def write_mjr_seeds():
    for name, data in mjr_samples().items():
        write("fuzz_mjr", name, data)


def s3_samples():
    """fuzz_s3: a mode byte (0 store URL, 1 ListObjectsV2 answer, other: URI encoding), then text."""
    listing = (b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/'
               b'2006-03-01/"><Name>b</Name><Prefix>pre/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>'
               b'<IsTruncated>true</IsTruncated><Contents><Key>pre/rooms/r/rec/metadata.json</Key><Size>123</Size>'
               b'<ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag></Contents><Contents><Key>other/x</Key>'
               b'<Size>1</Size></Contents><NextContinuationToken>1/abc==</NextContinuationToken></ListBucketResult>')
    return {
        "url_endpoint": b"\x00s3://bucket/pre/fix?endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=eu-west-1"
                        b"&access_key=AK&secret_key=se%2Fcret&part_mb=5&path_style=1",
        "url_custom": b"\x00http://user:pass@[::1]:4569/bucket/out/a%20b?path_style=true",
        "url_bad": b"\x00s3://Bad_Bucket/../x?colour=blue",
        "list_page": b"\x01" + listing,
        "list_error": b"\x01<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
        "encode": b"\x03rooms/r 1/a+b=c~d_e-f.g/\xc3\xa9*",
    }


def depay_input(codec_byte, packets):
    """fuzz_depay's input: a codec selector byte, then packets as 2-byte length, flags (bit 0
    marker, bit 1 new timestamp, bit 2 a packet lost before), payload."""
    out = bytes([codec_byte])
    for flags, payload in packets:
        out += struct.pack(">HB", len(payload), flags) + payload
    return out


MARK, NEW_TS = 1, 2


def depay_samples():
    """One small valid stream per codec (the selector picks codecs[b % 9], fmtp (b >> 4) % 3)."""
    h = bytes.fromhex
    return {
        "vp8": depay_input(0x00, [(NEW_TS | MARK, h("10009d012a4001f000")),    # keyframe start
                                  (NEW_TS, h("908005000102")),                 # PictureID, start
                                  (MARK, h("000304"))]),                       # continuation
        "vp9": depay_input(0x01, [(NEW_TS, h("8e8001000000")), (MARK, h("84800101"))]),
        "h264": depay_input(0x12, [(NEW_TS | MARK, h("1800026742000268ce0003658884")),  # STAP-A SPS PPS IDR
                                   (NEW_TS, h("7c850102")), (MARK, h("7c4503"))]),     # FU-A start, end
        "h265": depay_input(0x23, [(NEW_TS | MARK, h("6001000240010002420100032601af")),  # AP VPS SPS IDR
                                   (NEW_TS, h("620193af")), (MARK, h("62015301"))]),     # FU start, end
        "av1": depay_input(0x04, [(NEW_TS | MARK, h("180a0800000024c43fffe610053200100001"))]),
        "opus": depay_input(0x05, [(NEW_TS, h("fcfffe")), (NEW_TS, h("f8"))]),
        "pcmu": depay_input(0x06, [(NEW_TS, b"\xff" * 160)]),
    }


def main():
    for name, data in rtp_samples().items():
        write("fuzz_rtp", name, data)
    for name, data in rtcp_samples().items():
        write("fuzz_rtcp", name, data)
    frames = [udp_frame(rtp(i, marker=i % 3 == 0)) for i in range(6)]
    frames.append(udp_frame(sr(0x11223344, 1) + sdes(0x11223344), 4001, 5001))
    frames.append(udp_frame(rtp(1, ssrc=0xAABBCCDD, pt=111, payload=b"\xfc\xff\xfe"), 4002, 5002))
    frames.append(udp_frame(b"not rtp at all"))
    capture = pcap(frames)
    write("fuzz_pcap", "vp8_opus_rtcp.pcap", capture)
    write_mjr_seeds()
    for name, data in depay_samples().items():
        write("fuzz_depay", name, data)
    for name, data in s3_samples().items():
        write("fuzz_s3", name, data)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "seed.pcap")
        with open(path, "wb") as f:
            f.write(capture)
        ng = os.path.join(tmp, "seed.pcapng")
        if shutil.which("editcap"):
            subprocess.run(["editcap", "-F", "pcapng", path, ng], check=True)
            write("fuzz_pcap", "vp8_opus_rtcp.pcapng", open(ng, "rb").read())
        rec = os.path.join(tmp, "rec")
        subprocess.run([CAPSTAN, "import-pcap", path, "--out", rec, "--map", "96=VP8/90000",
                        "--map", "111=opus/48000/2"], check=True, stdout=subprocess.DEVNULL)
        chunk = open(os.path.join(rec, "tracks", "ssrc-11223344-video", "00000001.ctrk"), "rb").read()
        write("fuzz_chunk", "sealed.ctrk", chunk)
        write("fuzz_chunk", "torn.ctrk", chunk[: len(chunk) * 2 // 3])
        write("fuzz_chunk", "header_only.ctrk", chunk[: chunk.index(b"}") + 5])


if __name__ == "__main__":
    main()
