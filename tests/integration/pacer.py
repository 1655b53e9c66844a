"""Sends ready-made RTP packets to one UDP port in real time, as a sender or an SFU does:
each packet leaves when its RTP timestamp says (on an absolute schedule, so load delays
packets but never stretches the stream), with an RTCP Sender Report and SDES CNAME on the
same port (RTCP muxed) about once a second."""
import socket
import struct
import time


def sender_report(ssrc, rtp_timestamp, packets, octets, wall, cname=b"pacer@test"):
    """RTCP SR (RFC 3550 §6.4.1) for wall-clock time `wall`, with an SDES CNAME, as one
    compound."""
    now = wall + 2208988800
    ntp = (int(now) << 32) | int((now % 1) * (1 << 32))
    sr = struct.pack(">BBHIQIII", 0x80, 200, 6, ssrc, ntp, rtp_timestamp & 0xFFFFFFFF, packets, octets)
    item = bytes([1, len(cname)]) + cname + b"\x00"
    item += b"\x00" * (-(4 + len(item)) % 4)
    sdes = struct.pack(">BBHI", 0x81, 202, (4 + len(item)) // 4, ssrc) + item
    return sr + sdes


def rtp_timestamp(packet):
    return struct.unpack(">I", packet[4:8])[0]


class PacedSender:
    def __init__(self, port, ssrc, clock=90000, reports=True):
        self.target = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.ssrc, self.clock, self.reports = ssrc, clock, reports
        self.packets = self.octets = 0

    def report(self, start, first_timestamp):
        """A Sender Report for this instant: the RTP clock as it has run since `start`."""
        if not self.reports:
            return
        now = time.monotonic()
        timestamp = first_timestamp + round((now - start) * self.clock)
        self.sock.sendto(sender_report(self.ssrc, timestamp, self.packets, self.octets, time.time()),
                         self.target)

    def send(self, packets):
        """Sends complete RTP packets (bytes, in sending order, of this SSRC)."""
        start = time.monotonic()
        first = rtp_timestamp(packets[0])
        last_report = None
        for packet in packets:
            elapsed = ((rtp_timestamp(packet) - first) & 0xFFFFFFFF) / self.clock
            due = start + elapsed
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if last_report is None or elapsed - last_report >= 1.0:
                self.report(start, first)
                last_report = elapsed
            self.sock.sendto(packet, self.target)
            self.packets += 1
            self.octets += len(packet) - 12
        self.report(start, first)

    def close(self):
        self.sock.close()
