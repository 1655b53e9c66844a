"""An AV1 RTP sender for tests, written from the RTP Payload Format for AV1
(aomediacodec.github.io/av1-rtp-spec), since GStreamer 1.22 has no rtpav1pay and ffmpeg 5.1
no AV1 RTP muxer: a real encoder's low-overhead OBU stream (`ffmpeg -f obu`) is cut into
temporal units and packetized (aggregation header Z/Y/W/N, OBU elements with LEB128
lengths, obu_size removed, temporal delimiters and tile lists dropped, fragments across
packets, marker on a temporal unit's last packet, 90 kHz timestamps), then sent on UDP in
real time with RTCP Sender Reports, as a WebRTC sender would."""
import struct
import subprocess

from pacer import PacedSender

OBU_SEQUENCE_HEADER, OBU_TEMPORAL_DELIMITER, OBU_FRAME_HEADER, OBU_FRAME, OBU_TILE_LIST = 1, 2, 3, 6, 8
OBU_EXTENSION_FLAG, OBU_HAS_SIZE_FLAG = 0x04, 0x02
RTP_HEADER = 12


def read_leb128(data, pos):
    """(value, position after it) of the LEB128 number at pos (AV1 §4.10.5)."""
    value = 0
    for i in range(8):
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos + i + 1
    raise ValueError("LEB128 longer than 8 bytes")


def leb128(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def obus(data):
    """(type, header bytes, payload) of each OBU of a low-overhead bitstream (every OBU
    carries obu_size, AV1 §5.2)."""
    pos = 0
    while pos < len(data):
        header = data[pos]
        assert not header & 0x80, "forbidden bit set"
        assert header & OBU_HAS_SIZE_FLAG, "low-overhead format needs obu_size"
        header_len = 2 if header & OBU_EXTENSION_FLAG else 1
        size, start = read_leb128(data, pos + header_len)
        yield (header >> 3) & 0xF, data[pos:pos + header_len], data[start:start + size]
        pos = start + size
    assert pos == len(data), "OBU stream cut short"


def temporal_units(data):
    """The temporal units of a low-overhead bitstream: lists of (type, header, payload),
    each starting after its temporal delimiter."""
    units = []
    for obu in obus(data):
        if obu[0] == OBU_TEMPORAL_DELIMITER:
            units.append([])
        else:
            assert units, "bitstream does not start with a temporal delimiter"
            units[-1].append(obu)
    return units


def starts_coded_video_sequence(unit):
    """A sequence header and a shown key frame (show_existing_frame 0, frame_type KEY):
    the first packet of such a unit carries N=1. Assumes reduced_still_picture_header 0,
    as every encoder here writes."""
    has_sequence_header = any(t == OBU_SEQUENCE_HEADER for t, _, _ in unit)
    for t, _, payload in unit:
        if t in (OBU_FRAME, OBU_FRAME_HEADER) and payload:
            show_existing, frame_type = payload[0] >> 7, (payload[0] >> 5) & 3
            return has_sequence_header and not show_existing and frame_type == 0
    return False


def rtp_elements(unit):
    """The OBU elements of one temporal unit as RTP carries them: temporal delimiters and
    tile lists left out, obu_has_size_field cleared and obu_size removed."""
    return [bytes([header[0] & ~OBU_HAS_SIZE_FLAG]) + header[1:] + payload
            for t, header, payload in unit if t not in (OBU_TEMPORAL_DELIMITER, OBU_TILE_LIST)]


def payload_size(fragments):
    """Bytes of a payload holding these element fragments: the aggregation header, then a
    length before every element except the last when there are at most three (W set)."""
    size = 1
    for i, f in enumerate(fragments):
        last_unsized = len(fragments) <= 3 and i == len(fragments) - 1
        size += len(f) + (0 if last_unsized else len(leb128(len(f))))
    return size


def build_payload(fragments, z, y, n):
    w = len(fragments) if len(fragments) <= 3 else 0
    out = bytearray([(z << 7) | (y << 6) | (w << 4) | (n << 3)])
    for i, f in enumerate(fragments):
        if not (w and i == len(fragments) - 1):
            out += leb128(len(f))
        out += f
    return bytes(out)


def packetize(unit, max_payload):
    """RTP payloads for one temporal unit, none larger than max_payload bytes: elements
    aggregated while they fit, an element that does not fit split across packets (Y on
    the packet it leaves open, Z on the one that continues it)."""
    assert max_payload >= 8
    n = 1 if starts_coded_video_sequence(unit) else 0
    payloads, current, z = [], [], 0
    for element in rtp_elements(unit):
        rest = element
        while rest:
            # the most of `rest` that fits as the packet's last element
            take = min(len(rest), max_payload - payload_size(current + [b""]))
            while take > 0 and payload_size(current + [rest[:take]]) > max_payload:
                take -= 1
            if take <= 0:
                payloads.append(build_payload(current, z, 0, n))
                current, z, n = [], 0, 0
                continue
            current.append(rest[:take])
            rest = rest[take:]
            if rest:  # the element goes on in the next packet
                payloads.append(build_payload(current, z, 1, n))
                current, z, n = [], 1, 0
    if current:
        payloads.append(build_payload(current, z, 0, n))
    return payloads


def rtp_packet(payload, seq, timestamp, ssrc, pt, marker):
    return struct.pack(">BBHII", 0x80, (marker << 7) | pt, seq & 0xFFFF, timestamp & 0xFFFFFFFF,
                       ssrc) + payload


def encode(path, frames, width, height, keyint=30, fps=30, source="testsrc2", encoder="libaom-av1"):
    """A real AV1 encode of `frames` frames as a low-overhead OBU stream."""
    args = {"libaom-av1": ["-usage", "realtime", "-cpu-used", "8", "-lag-in-frames", "0", "-b:v", "400k"],
            "libsvtav1": ["-preset", "12"]}[encoder]
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"{source}=s={width}x{height}:r={fps}",
                    "-frames:v", str(frames), "-c:v", encoder, *args, "-g", str(keyint),
                    "-pix_fmt", "yuv420p", "-f", "obu", str(path)], check=True, timeout=120)
    return temporal_units(open(path, "rb").read())


class Sender:
    """Packetizes temporal units (one every 1/fps s, 90 kHz timestamps) and sends them in
    real time with Sender Reports (pacer.PacedSender)."""

    def __init__(self, port, ssrc, pt=45, mtu=1200, fps=30, seq=1000, timestamp=90000):
        self.pacer = PacedSender(port, ssrc)
        self.ssrc, self.pt, self.fps = ssrc, pt, fps
        self.max_payload = mtu - RTP_HEADER
        self.seq, self.first_timestamp = seq, timestamp
        self.sent = []  # (seq, timestamp, marker, payload) of every RTP packet

    def packets(self, units):
        out = []
        for i, unit in enumerate(units):
            timestamp = self.first_timestamp + i * 90000 // self.fps
            payloads = packetize(unit, self.max_payload)
            for k, payload in enumerate(payloads):
                marker = int(k == len(payloads) - 1)
                out.append(rtp_packet(payload, self.seq, timestamp, self.ssrc, self.pt, marker))
                self.sent.append((self.seq & 0xFFFF, timestamp, marker, payload))
                self.seq += 1
        return out

    def send(self, units):
        self.pacer.send(self.packets(units))

    def close(self):
        self.pacer.close()
