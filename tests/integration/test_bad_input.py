"""What the network and careless clients send: the daemon stays up, answers clearly,
counts every dropped packet by reason in /metrics, and loses nothing already accepted."""
import json
import os
import socket
import struct

import pytest

from conftest import run_capstan
from daemon import ADMIN_KEY, Daemon, SFU_KEY, VIEWER_KEY, wait_for


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("bad") / "data").start()
    d.module_scoped = True
    d.ok("PUT", "/rooms/b", {})
    d.ok("POST", "/rooms/b/producers", {"producer_id": "v", "peer_id": "p", "kind": "video",
                                        "codec": "vp8", "payload_type": 96, "ssrc": 4242})
    rec = d.ok("POST", "/rooms/b/recordings", {"requester_id": "p"})
    yield d, rec
    d.stop()


def rtp(seq, ssrc=4242, payload=b"\x10" * 50):
    return struct.pack(">BBHII", 0x80, 96, seq, seq * 3000, ssrc) + payload


def udp(port, datagrams):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    for d in datagrams:
        s.sendto(d, ("127.0.0.1", port))
    s.close()


def drops(d):
    m = d.metrics()
    return {k.split('"')[1]: v for k, v in m.items() if k.startswith("capstan_packets_dropped_total")}


def test_malformed_packets_are_counted_and_dropped(live):
    d, rec = live
    port = rec["rtp"]["udp_port"]
    rid = rec["recording_id"]
    udp(port, [rtp(i) for i in range(10)])
    assert wait_for(lambda: d.ok("GET", f"/recordings/{rid}")["packets"] == 10)
    before = drops(d)
    cases = {
        "malformed": [b"\x80", b"\x80\x60\x00", rtp(1)[:8],                    # truncated headers
                      bytes([0x8F]) + rtp(2)[1:20],                           # CSRC count past the end
                      bytes([0x90]) + rtp(3)[1:12] + b"\xbe\xde\x00\x09",     # extension length past the end
                      bytes([0xA0]) + rtp(4)[1:-1] + b"\xff"],                # padding longer than payload
        "bad_version": [b"\x40" + rtp(5)[1:], b"\x00" * 40],
        "unknown_ssrc": [rtp(6, ssrc=999), rtp(7, ssrc=0)],
        "rtcp_malformed": [b"\x80\xc8\x00\x20" + b"\0" * 8,                   # SR whose length lies
                           b"\x81\xc9\x00\x01" + b"\0" * 4 + b"garbage!"],      # garbage after a packet
        "rtcp_unknown_ssrc": [struct.pack(">BBHI", 0x80, 201, 1, 12345)],        # RR from nobody
        "oversized": [rtp(8, payload=b"\0" * 65000)],                          # a 64 KiB datagram
    }
    for payloads in cases.values():
        udp(port, payloads)
    want = {reason: before.get(reason, 0) + len(p) for reason, p in cases.items()}
    assert wait_for(lambda: all(drops(d)[r] == n for r, n in want.items())), (drops(d), want)
    assert d.alive()
    assert d.call("GET", "/health", key=None)[0] == 200
    # what was accepted before is still there, and the track keeps recording
    udp(port, [rtp(i) for i in range(10, 20)])
    assert wait_for(lambda: d.ok("GET", f"/recordings/{rid}")["packets"] == 20)


def test_tcp_framing_errors_and_abrupt_close(live):
    d, rec = live
    before = drops(d).get("tcp_framing", 0)
    s = socket.create_connection(("127.0.0.1", rec["rtp"]["tcp_port"]))
    pkt = rtp(100)
    s.sendall(b"\x00\x00" + struct.pack(">H", len(pkt)) + pkt + struct.pack(">H", 500) + b"half")
    s.close()
    assert wait_for(lambda: drops(d)["tcp_framing"] == before + 1)
    for _ in range(20):    # connect and drop, many times
        socket.create_connection(("127.0.0.1", rec["rtp"]["tcp_port"])).close()
    assert d.call("GET", "/health", key=None)[0] == 200


@pytest.mark.parametrize("method,path,body,key,status,code", [
    ("PUT", "/rooms/x", None, None, 401, 1001),
    ("PUT", "/rooms/x", None, "not-a-key", 401, 1001),
    ("PUT", "/rooms/x", None, VIEWER_KEY, 403, 1002),
    ("GET", "/recordings", None, None, 401, 1001),
    ("GET", "/rooms/nope", None, VIEWER_KEY, 404, 2001),
    ("GET", "/recordings/rec_nope", None, VIEWER_KEY, 404, 3003),
    ("POST", "/recordings/rec_nope/stop", b"", SFU_KEY, 404, 3003),
    ("POST", "/rooms/nope/recordings", b'{"requester_id":"a"}', SFU_KEY, 404, 2001),
    ("POST", "/rooms/nope/peers", b'{"peer_id":"a"}', SFU_KEY, 404, 2001),
    ("PUT", "/rooms/x", b'{"room_name": ', SFU_KEY, 400, 1003),
    ("PUT", "/rooms/x", b'[1, 2]', SFU_KEY, 400, 1003),
    ("PUT", "/rooms/x", b'\xff\xfe', SFU_KEY, 400, 1003),
    ("PUT", "/rooms/bad%20id", b'{}', SFU_KEY, 400, 1003),
    ("PUT", "/rooms/..", b'{}', SFU_KEY, 400, 1003),
    ("POST", "/rooms/b/producers", b'{"producer_id":"q"}', SFU_KEY, 400, 1003),
    ("POST", "/rooms/b/producers", b'{"producer_id":"q","peer_id":"p","kind":"video","codec":"vp8","ssrc":-1}', SFU_KEY, 400, 1003),
    ("POST", "/rooms/b/producers", b'{"producer_id":"v2","peer_id":"p","kind":"video","codec":"vp8","ssrc":4242}', SFU_KEY, 409, 3005),
    ("POST", "/rooms/b/recordings", b'{}', SFU_KEY, 400, 1003),
    ("POST", "/rooms/b/recordings", b'{"requester_id":"p","config":{"record_audio":"yes"}}', SFU_KEY, 400, 1003),
    ("GET", "/no/such/route", None, ADMIN_KEY, 404, 1004),
    ("DELETE", "/recordings", None, ADMIN_KEY, 405, 1005),
])
def test_api_errors_are_clear(live, method, path, body, key, status, code):
    d, _ = live
    got, reply = d.call(method, path, key=key, raw=body)
    assert got == status, reply
    assert reply["error"]["code"] == code and reply["error"]["message"]


def test_huge_body_is_refused(live):
    d, _ = live
    got, reply = d.call("PUT", "/rooms/huge", key=SFU_KEY, raw=b'{"room_name":"' + b"a" * (2 << 20) + b'"}')
    assert got == 413 and reply["error"]["code"] == 1006


def test_daemon_survives_it_all_and_the_files_are_consistent(live):
    d, rec = live
    assert d.alive()
    assert d.call("GET", "/health", key=None)[1]["status"] == "ok"
    rid = rec["recording_id"]
    final = d.ok("POST", f"/recordings/{rid}/stop")
    rec_dir = d.recording_dir("b", rid)
    report = json.loads(run_capstan("inspect", rec_dir, "--json").stdout)["tracks"]
    assert report[0]["packets"] == final["packets"] == final["tracks"][0]["packets"]
    assert report[0]["damaged_records"] == 0
