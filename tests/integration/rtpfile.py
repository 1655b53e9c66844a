"""RTP made ahead of time by a real encoder: a GStreamer pipeline whose payloader writes
into a file through rtpstreampay (RFC 4571 framing) instead of a socket, read back as a
list of packets, so a test can cut, splice or damage the stream before sending it."""
import struct
import subprocess


def gst_rtp_packets(path, elements, frames, width, height, pattern="ball", fps=30, pt=96):
    """RTP packets of `frames` frames of videotestsrc through `elements` (encoder and
    payloader, without pt/offsets), timestamps and sequence numbers from 0."""
    subprocess.run(["gst-launch-1.0", "-q", "videotestsrc", f"num-buffers={frames}", f"pattern={pattern}", "!",
                    f"video/x-raw,width={width},height={height},framerate={fps}/1", "!", *elements,
                    f"pt={pt}", "seqnum-offset=0", "timestamp-offset=0", "!", "rtpstreampay", "!",
                    "filesink", f"location={path}"], check=True, timeout=120)
    data, packets, pos = open(path, "rb").read(), [], 0
    while pos + 2 <= len(data):
        (length,) = struct.unpack(">H", data[pos:pos + 2])
        packets.append(data[pos + 2:pos + 2 + length])
        pos += 2 + length
    assert packets and pos == len(data), "rtpstreampay output cut short"
    return packets


def timestamp(packet):
    return struct.unpack(">I", packet[4:8])[0]


def restamp(packets, ssrc, seq, ts_offset):
    """The packets with this SSRC, sequence numbers from seq on, timestamps moved by
    ts_offset (mod 2^32)."""
    out = []
    for p in packets:
        header = bytearray(p[:12])
        header[2:4] = struct.pack(">H", seq & 0xFFFF)
        header[4:8] = struct.pack(">I", (timestamp(p) + ts_offset) & 0xFFFFFFFF)
        header[8:12] = struct.pack(">I", ssrc)
        out.append(bytes(header) + p[12:])
        seq += 1
    return out


def frames(packets):
    """The packets grouped by RTP timestamp, in order."""
    groups = []
    for p in packets:
        if groups and timestamp(groups[-1][0]) == timestamp(p):
            groups[-1].append(p)
        else:
            groups.append([p])
    return groups
