"""Through a deterministic impairment relay (seeded 5% loss, reordering, duplicates,
jitter) in front of the daemon: the recording's outputs still decode with zero errors, and
the loss and duplicate counts capstan reports are what the relay did."""
import json
import subprocess

from conftest import run_capstan, run_sender
from daemon import Daemon
from relay import Relay
from senders import gst_peer

VIDEO, AUDIO = 0x5A5A0001, 0x5A5A0002


def test_impaired_stream_decodes_clean_and_counts_match(tmp_path):
    d = Daemon(tmp_path / "data").start()
    try:
        d.ok("PUT", "/rooms/lossy", {})
        d.ok("POST", "/rooms/lossy/producers", {"producer_id": "v", "peer_id": "p", "kind": "video",
                                                "codec": "vp8", "payload_type": 96, "ssrc": VIDEO})
        d.ok("POST", "/rooms/lossy/producers", {"producer_id": "a", "peer_id": "p", "kind": "audio",
                                                "codec": "opus", "payload_type": 111, "ssrc": AUDIO,
                                                "channels": 2})
        rec = d.ok("POST", "/rooms/lossy/recordings", {"requester_id": "p"})
        relay = Relay(rec["rtp"]["udp_port"], seed=7)
        run_sender(gst_peer(relay.port, "vp8", True, VIDEO, AUDIO, 8), 8)
        relay.stop()
        d.ok("POST", f"/recordings/{rec['recording_id']}/stop")
    finally:
        d.stop()
    rec_dir = d.recording_dir("lossy", rec["recording_id"])
    tracks = {t["ssrc"]: t for t in json.loads(run_capstan("inspect", rec_dir, "--json").stdout)["tracks"]}
    for ssrc in (VIDEO, AUDIO):
        assert len(relay.dropped[ssrc]) > 5 and relay.duplicated[ssrc] > 0 and relay.reordered[ssrc] > 0
        assert tracks[ssrc]["lost"] == relay.expected_lost(ssrc), ssrc
        assert tracks[ssrc]["duplicated"] == relay.duplicated[ssrc], ssrc
        assert tracks[ssrc]["reordered"] > 0
    report = json.loads(run_capstan("convert", "--in", rec_dir, "--transmux", "--out", tmp_path / "out",
                                    "--json").stdout)
    for t in report["tracks"]:
        assert t["lost"] == relay.expected_lost(VIDEO if t["kind"] == "video" else AUDIO)
        path = str(tmp_path / "out" / t["file"])
        proc = subprocess.run(["ffmpeg", "-v", "error", "-xerror", "-i", path, "-f", "null", "-"],
                              capture_output=True, text=True)
        assert proc.returncode == 0 and not proc.stderr.strip(), (t["file"], proc.stderr)
    video = next(t for t in report["tracks"] if t["kind"] == "video")
    # after each loss, frames wait for the next keyframe (at most 1 s with this sender)
    assert video["dropped_frames"] > 0 and video["frames"] >= 30
    assert video["keyframes"] >= 6
