"""kill -9 while recording, then a restart: torn chunks repaired, the recording marked
interrupted, continued when its RTP keeps arriving, and nothing that reached the disk
lost (at most one fsync interval before the kill)."""
import json
import os
import threading
import time

import pytest

from conftest import Capture, run_capstan, run_sender
from daemon import Daemon, wait_for
from rtpcount import count
from senders import gst_peer

VIDEO_SSRC, AUDIO_SSRC = 0x0A0A0001, 0x0A0A0002


def setup_room(d):
    d.ok("PUT", "/rooms/crash", {"room_name": "Crash"})
    d.ok("POST", "/rooms/crash/peers", {"peer_id": "p"})
    d.ok("POST", "/rooms/crash/producers", {"producer_id": "v", "peer_id": "p", "kind": "video",
                                            "codec": "vp8", "payload_type": 96, "ssrc": VIDEO_SSRC})
    d.ok("POST", "/rooms/crash/producers", {"producer_id": "a", "peer_id": "p", "kind": "audio",
                                            "codec": "opus", "payload_type": 111, "ssrc": AUDIO_SSRC})
    return d.ok("POST", "/rooms/crash/recordings", {"requester_id": "p"})


def inspect_clean(rec_dir):
    report = json.loads(run_capstan("inspect", rec_dir, "--json").stdout)
    for t in report["tracks"]:
        assert t["damaged_records"] == 0 and not t["torn_tail"], t
    return {t["ssrc"]: t for t in report["tracks"]}


@pytest.fixture
def daemons():
    """Every daemon a test starts is stopped afterwards, whatever happened."""
    started = []
    yield started
    for d in started:
        if d.proc and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()


def test_kill9_then_restart_continues_and_loses_at_most_one_interval(tmp_path, daemons):
    data = tmp_path / "data"
    d = Daemon(data, ["--fsync-ms", "1000", "--recover-seconds", "30"]).start()
    daemons.append(d)
    rec = setup_room(d)
    rid, port = rec["recording_id"], rec["rtp"]["udp_port"]
    cap = Capture(str(tmp_path / "sent.pcap"), f"udp and dst port {port}")
    sender = threading.Thread(target=run_sender, args=(gst_peer(port, "vp8", True, VIDEO_SSRC, AUDIO_SSRC, 9), 9))
    sender.start()
    time.sleep(3.5)
    killed_at = time.time()
    d.kill9()
    d2 = Daemon(data, ["--fsync-ms", "1000", "--recover-seconds", "30"], ports=d.ports).start()
    daemons.append(d2)
    back_at = time.time()
    assert d2.ok("GET", f"/recordings/{rid}")["state"] in ("interrupted", "recording")
    # RTP keeps arriving on the same port: the recording continues
    assert wait_for(lambda: d2.ok("GET", f"/recordings/{rid}")["state"] == "recording", timeout=10)
    sender.join()
    cap.stop()
    final = d2.ok("POST", f"/recordings/{rid}/stop")
    d2.stop()

    rec_dir = d2.recording_dir("crash", rid)
    tracks = inspect_clean(rec_dir)
    sent, _, times = count(cap.path, port)
    for ssrc in (VIDEO_SSRC, AUDIO_SSRC):
        recorded = tracks[ssrc]["packets"]
        assert recorded <= sent[ssrc]
        # Everything that arrived more than one fsync interval before the kill, or after the
        # restart, is on disk.
        must_have = sum(1 for t in times[ssrc] if t < killed_at - 1.2 or t > back_at + 0.3)
        assert recorded >= must_have, (ssrc, recorded, must_have, sent[ssrc])
        assert tracks[ssrc]["duplicated"] == 0
    types = [e["type"] for e in json.load(open(os.path.join(rec_dir, "timeline.json")))["events"]]
    assert "recording_interrupted" in types and "recording_recovered" in types
    assert types[-1] == "recording_stopped"
    meta = json.load(open(os.path.join(rec_dir, "metadata.json")))
    assert meta["recording"]["state"] == "stopped"
    assert {t["ssrc"] for p in meta["participants"] for t in p["tracks"]} == {VIDEO_SSRC, AUDIO_SSRC}
    assert final["packets"] == sum(t["packets"] for t in tracks.values())


def test_kill9_without_rtp_after_restart_stays_interrupted(tmp_path, daemons):
    data = tmp_path / "data"
    d = Daemon(data, ["--fsync-ms", "200", "--recover-seconds", "2"]).start()
    daemons.append(d)
    rec = setup_room(d)
    rid, port = rec["recording_id"], rec["rtp"]["udp_port"]
    run_sender(gst_peer(port, "vp8", True, VIDEO_SSRC, AUDIO_SSRC, 2), 2)
    time.sleep(0.5)
    d.kill9()
    d2 = Daemon(data, ["--fsync-ms", "200", "--recover-seconds", "2"], ports=d.ports).start()
    daemons.append(d2)
    assert d2.ok("GET", f"/recordings/{rid}")["state"] == "interrupted"
    # the window passes: its ports close, its chunks are sealed and read clean
    assert wait_for(lambda: d2.metrics()["capstan_active_recordings"] == 0, timeout=10)
    rec_dir = d2.recording_dir("crash", rid)
    tracks = inspect_clean(rec_dir)
    assert tracks[VIDEO_SSRC]["packets"] > 40 and tracks[AUDIO_SSRC]["packets"] > 80
    got = d2.ok("GET", f"/recordings/{rid}")
    assert got["state"] == "interrupted"
    assert {t["ssrc"]: t["packets"] for t in got["tracks"]} == {s: t["packets"] for s, t in tracks.items()}
    # and an interrupted recording can still be stopped, which finalises its files
    assert d2.ok("POST", f"/recordings/{rid}/stop")["state"] == "stopped"
    d2.stop()
    meta = json.load(open(os.path.join(rec_dir, "metadata.json")))
    assert meta["recording"]["state"] == "stopped" and meta["room"]["ended_at"]
