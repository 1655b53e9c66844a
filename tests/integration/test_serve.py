"""capstan serve against real senders: three peers (VP8+Opus, H.264+Opus, VP9) recorded
through the API, counted against a loopback capture; the recording's files; pause, SSRC
change, RTP over TCP."""
import json
import os
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import Capture, run_capstan, run_sender
from daemon import ADMIN_KEY, Daemon, wait_for
from rtpcount import count
from senders import PT, gst_peer


@pytest.fixture
def daemon(tmp_path):
    d = Daemon(tmp_path / "data").start()
    yield d
    d.stop()


def producer(pid, peer, kind, codec, ssrc, **extra):
    body = {"producer_id": pid, "peer_id": peer, "kind": kind, "codec": codec,
            "payload_type": PT[codec], "ssrc": ssrc,
            "clock_rate": 48000 if kind == "audio" else 90000,
            "channels": 2 if kind == "audio" else 0}
    body.update(extra)
    return body


def test_three_peers_recorded_counts_equal_the_capture(daemon, tmp_path):
    d = daemon
    d.ok("PUT", "/rooms/standup", {"room_name": "Standup", "host_id": "alice", "meeting_type": "scheduled",
                                   "policy": {"features": {"recording": {"enabled": True, "who_can_record": "host"}},
                                              "roles": {"host_id": "alice"}}})
    for peer in ("alice", "bob", "carol"):
        d.ok("POST", "/rooms/standup/peers", {"peer_id": peer, "display_name": peer.title(),
                                              "is_host": peer == "alice"})
    ssrcs = {"alice-video": 0x11110001, "alice-audio": 0x11110002, "bob-video": 0x22220001,
             "bob-audio": 0x22220002, "carol-video": 0x33330001}
    d.ok("POST", "/rooms/standup/producers", producer("pa-v", "alice", "video", "vp8", ssrcs["alice-video"]))
    d.ok("POST", "/rooms/standup/producers", producer("pa-a", "alice", "audio", "opus", ssrcs["alice-audio"]))
    d.ok("POST", "/rooms/standup/producers", producer("pb-v", "bob", "video", "h264", ssrcs["bob-video"],
                                                      fmtp="packetization-mode=1;profile-level-id=42e01f"))
    d.ok("POST", "/rooms/standup/producers", producer("pb-a", "bob", "audio", "opus", ssrcs["bob-audio"]))
    rec = d.ok("POST", "/rooms/standup/recordings", {"requester_id": "alice"})
    # a producer created after the start joins the live recording
    late = d.ok("POST", "/rooms/standup/producers", producer("pc-v", "carol", "video", "vp9", ssrcs["carol-video"]))
    assert late["recorded"] and late["recordings"][0]["rtp"]["udp_port"] == rec["rtp"]["udp_port"]
    port = rec["rtp"]["udp_port"]
    assert rec["state"] == "recording" and rec["rtp"]["host"] == "127.0.0.1"

    cap = Capture(str(tmp_path / "sent.pcap"), f"udp and dst port {port}")
    senders = [
        gst_peer(port, "vp8", True, ssrcs["alice-video"], ssrcs["alice-audio"], 10),
        gst_peer(port, "h264", True, ssrcs["bob-video"], ssrcs["bob-audio"], 10),
        gst_peer(port, "vp9", False, ssrcs["carol-video"], 0, 10),
    ]
    threads = [threading.Thread(target=run_sender, args=(cmd, 10)) for cmd in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cap.stop()
    rtp, rtcp, _ = count(cap.path, port)
    assert set(rtp) == set(ssrcs.values())

    final = d.ok("POST", f"/recordings/{rec['recording_id']}/stop")
    assert final["state"] == "stopped"
    by_track = {t["track_id"]: t for t in final["tracks"]}
    assert set(by_track) == set(ssrcs)
    for track_id, ssrc in ssrcs.items():
        assert by_track[track_id]["packets"] == rtp[ssrc], track_id
        assert by_track[track_id]["rtcp_packets"] == rtcp[ssrc], track_id
        assert rtcp[ssrc] >= 1

    # the chunks on disk hold exactly that, as the reader sees them
    rec_dir = d.recording_dir("standup", rec["recording_id"])
    report = json.loads(run_capstan("inspect", rec_dir, "--json").stdout)
    on_disk = {t["track_id"]: t for t in report["tracks"]}
    for track_id, ssrc in ssrcs.items():
        assert on_disk[track_id]["ssrc"] == ssrc
        assert on_disk[track_id]["packets"] == rtp[ssrc]
        assert on_disk[track_id]["rtcp_packets"] == rtcp[ssrc]
        assert on_disk[track_id]["damaged_records"] == 0 and not on_disk[track_id]["torn_tail"]
    assert on_disk["bob-video"]["codec"] == "h264" and on_disk["carol-video"]["codec"] == "vp9"

    # metadata.json, timeline.json and policy.json in the reference shapes
    meta = json.load(open(os.path.join(rec_dir, "metadata.json")))
    assert meta["$schema"] == "recording-metadata-v1"
    for key in ("room_id", "room_name", "host_id", "meeting_type", "started_at", "ended_at", "duration_seconds"):
        assert key in meta["room"]
    assert meta["room"]["room_name"] == "Standup" and meta["room"]["host_id"] == "alice"
    assert meta["policy_snapshot"]["recording_enabled"] is True
    assert meta["policy_snapshot"]["who_can_record"] == "host"
    assert meta["recording"]["recording_id"] == rec["recording_id"]
    assert meta["recording"]["started_by"] == "alice"
    people = {p["peer_id"]: p for p in meta["participants"]}
    assert people["alice"]["display_name"] == "Alice" and people["alice"]["is_host"] is True
    tracks = {t["track_id"]: t for p in meta["participants"] for t in p["tracks"]}
    for track_id in ssrcs:
        t = tracks[track_id]
        assert t["file"] == f"tracks/{track_id}/" and t["bytes"] > 0
        for key in ("kind", "codec", "started_at", "ended_at"):
            assert t[key]
    events = json.load(open(os.path.join(rec_dir, "timeline.json")))["events"]
    types = [e["type"] for e in events]
    assert types[0] == "recording_started" and types[-1] == "recording_stopped"
    assert types.count("producer_started") == 5
    assert all(isinstance(e["t"], int) for e in events)
    assert [e["t"] for e in events] == sorted(e["t"] for e in events)
    policy = json.load(open(os.path.join(rec_dir, "policy.json")))
    assert policy["features"]["recording"]["who_can_record"] == "host"
    assert policy["roles"]["host_id"] == "alice"


def send_rtp(port, ssrc, seqs, pt=96, size=200):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for seq in seqs:
        s.sendto(struct.pack(">BBHII", 0x80, pt, seq & 0xFFFF, seq * 3000, ssrc) + b"\x10" * size,
                 ("127.0.0.1", port))
    s.close()


def track_packets(d, rec_id):
    return {t["track_id"]: t["packets"] for t in d.ok("GET", f"/recordings/{rec_id}")["tracks"]}


def test_pause_resume_and_ssrc_change(daemon):
    d = daemon
    d.ok("PUT", "/rooms/r", {})
    d.ok("POST", "/rooms/r/peers", {"peer_id": "p1"})
    d.ok("POST", "/rooms/r/producers", producer("cam", "p1", "video", "vp8", 1000))
    rec = d.ok("POST", "/rooms/r/recordings", {"requester_id": "p1"})
    rid, port = rec["recording_id"], rec["rtp"]["udp_port"]
    send_rtp(port, 1000, range(0, 50))
    assert wait_for(lambda: track_packets(d, rid)["p1-video"] == 50)
    # a paused producer's packets are dropped and counted as such
    d.ok("POST", "/rooms/r/producers/cam/pause")
    before = d.metrics()['capstan_packets_dropped_total{reason="paused"}']
    send_rtp(port, 1000, range(50, 80))
    assert wait_for(lambda: d.metrics()['capstan_packets_dropped_total{reason="paused"}'] == before + 30)
    d.ok("POST", "/rooms/r/producers/cam/resume")
    send_rtp(port, 1000, range(80, 100))
    assert wait_for(lambda: track_packets(d, rid)["p1-video"] == 70)
    # the recording itself paused
    d.ok("POST", f"/recordings/{rid}/pause")
    send_rtp(port, 1000, range(100, 110))
    d.ok("POST", f"/recordings/{rid}/resume")
    # the SFU announces a new SSRC: same track, new chunk naming it
    d.ok("PUT", "/rooms/r/producers/cam", {"ssrc": 2000})
    before = d.metrics()['capstan_packets_dropped_total{reason="unknown_ssrc"}']
    send_rtp(port, 1000, range(110, 115))     # the old SSRC is no longer the track's
    send_rtp(port, 2000, range(0, 40))
    assert wait_for(lambda: track_packets(d, rid)["p1-video"] == 110)
    assert d.metrics()['capstan_packets_dropped_total{reason="unknown_ssrc"}'] == before + 5
    final = d.ok("POST", f"/recordings/{rid}/stop")
    assert [t["track_id"] for t in final["tracks"]] == ["p1-video"]
    rec_dir = d.recording_dir("r", rid)
    types = [e["type"] for e in json.load(open(os.path.join(rec_dir, "timeline.json")))["events"]]
    for t in ("producer_paused", "producer_resumed", "recording_paused", "recording_resumed", "ssrc_changed"):
        assert t in types
    chunks = sorted(os.listdir(os.path.join(rec_dir, "tracks", "p1-video")))
    assert len(chunks) == 2
    report = json.loads(run_capstan("inspect", os.path.join(rec_dir, "tracks", "p1-video"), "--json").stdout)
    assert report["tracks"][0]["packets"] == 110


def test_rtp_over_tcp_rfc4571(daemon):
    d = daemon
    d.ok("PUT", "/rooms/t", {})
    d.ok("POST", "/rooms/t/producers", producer("mic", "p", "audio", "opus", 77))
    rec = d.ok("POST", "/rooms/t/recordings", {"requester_id": "p"})
    s = socket.create_connection(("127.0.0.1", rec["rtp"]["tcp_port"]))
    stream = b""
    for seq in range(300):
        pkt = struct.pack(">BBHII", 0x80, 111, seq, seq * 960, 77) + bytes(range(seq % 100 + 1))
        stream += struct.pack(">H", len(pkt)) + pkt
    # split at awkward places: frames cross segment boundaries
    for i in range(0, len(stream), 997):
        s.sendall(stream[i:i + 997])
        time.sleep(0.001)
    s.close()
    assert wait_for(lambda: track_packets(d, rec["recording_id"])["p-audio"] == 300)
