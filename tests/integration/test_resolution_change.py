"""A resolution change in the middle of a track, as an SFU makes on a simulcast layer switch
or a browser on bandwidth adaptation: two real encodes at different sizes (GStreamer, or
libaom through av1rtp.py for AV1; each starting with a keyframe) are spliced into one RTP
stream with one SSRC and continuous sequence numbers and timestamps, sent in real time to
`capstan serve`, recorded and transmuxed. ffmpeg must decode the file cleanly, with every
frame, and show both sizes in the order and at the time they were sent."""
import json
import subprocess

import pytest

import av1rtp
import rtpfile
from conftest import run_capstan
from daemon import Daemon
from pacer import PacedSender
from rtpfile import restamp

FPS = 30
SSRC = 0x5E5E0001
PT = 96

CODECS = {
    # keyframes only where a segment starts: the switch itself must carry the keyframe
    "vp8": (["vp8enc", "deadline=1", "cpu-used=8", "lag-in-frames=0", "keyframe-max-dist=300", "!",
             "rtpvp8pay", "mtu=1200", "picture-id-mode=15-bit"], "webm"),
    "vp9": (["vp9enc", "deadline=1", "cpu-used=8", "lag-in-frames=0", "keyframe-max-dist=300", "!",
             "rtpvp9pay", "mtu=1200"], "webm"),
    "h264": (["x264enc", "tune=zerolatency", "speed-preset=ultrafast", "key-int-max=300", "!",
              "video/x-h264,profile=constrained-baseline", "!", "rtph264pay", "mtu=1200",
              "config-interval=-1"], "mp4"),
}

# AV1 has no GStreamer payloader here: libaom encodes, av1rtp.py packetizes (av1: webm)
ALL_CODECS = sorted([*CODECS, "av1"])
EXTENSION = {"av1": "webm", **{codec: ext for codec, (_, ext) in CODECS.items()}}

SIZES = {"down": [(640, 360, "ball"), (320, 180, "smpte")],
         "up": [(320, 180, "ball"), (640, 360, "smpte")]}


def splice(segments, ssrc, seq=65500, timestamp=(1 << 32) - 90000):
    """One stream out of several: the SSRC rewritten, sequence numbers running on, and each
    segment's timestamps starting one frame after the previous segment's last. Both wrap
    on the way (sequence numbers after 36 packets, timestamps after one second), as a
    long-running stream's do."""
    out, offset = [], timestamp
    for packets in segments:
        out += restamp(packets, ssrc, seq + len(out), offset)
        offset += max(rtpfile.timestamp(p) for p in packets) + 90000 // FPS
    return out


def frames_of(path):
    """(pts in seconds, width, height) of every decoded frame."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "frame=best_effort_timestamp_time,width,height", "-of", "json", path],
                         capture_output=True, text=True, check=True).stdout
    return [(float(f["best_effort_timestamp_time"]), f["width"], f["height"])
            for f in json.loads(out)["frames"]]


@pytest.mark.parametrize("direction", sorted(SIZES))
@pytest.mark.parametrize("codec", ALL_CODECS)
def test_resolution_switch_mid_track_plays_both_sizes_in_place(tmp_path, codec, direction):
    per_segment = 45
    sizes = SIZES[direction]
    if codec == "av1":
        # one sender across both encodes: sequence numbers and timestamps run on
        units = [unit for i, (w, h, pattern) in enumerate(sizes)
                 for unit in av1rtp.encode(tmp_path / f"seg{i}.obu", per_segment, w, h, keyint=300,
                                           source="testsrc2" if pattern == "ball" else "smptebars")]
        packets = av1rtp.Sender(0, SSRC, pt=PT, fps=FPS, seq=65500, timestamp=(1 << 32) - 90000).packets(units)
    else:
        segments = [rtpfile.gst_rtp_packets(tmp_path / f"seg{i}.rtp", CODECS[codec][0], per_segment, w, h,
                                            pattern, FPS, PT)
                    for i, (w, h, pattern) in enumerate(sizes)]
        packets = splice(segments, SSRC)
    d = Daemon(tmp_path / "data").start()
    try:
        d.ok("PUT", "/rooms/switch", {})
        d.ok("POST", "/rooms/switch/producers", {"producer_id": "cam", "peer_id": "p", "kind": "video",
                                                 "codec": codec, "payload_type": PT, "ssrc": SSRC})
        rec = d.ok("POST", "/rooms/switch/recordings", {"requester_id": "p"})
        sender = PacedSender(rec["rtp"]["udp_port"], SSRC)
        sender.send(packets)
        sender.close()
        d.ok("POST", f"/recordings/{rec['recording_id']}/stop")
    finally:
        d.stop()
    rec_dir = d.recording_dir("switch", rec["recording_id"])
    report = json.loads(run_capstan("convert", "--in", rec_dir, "--transmux", "--out", tmp_path / "out",
                                    "--json").stdout)
    (track,) = report["tracks"]
    assert not track.get("error") and track["file"].endswith("." + EXTENSION[codec]), track
    assert track["lost"] == 0 and track["dropped_frames"] == 0 and track["keyframes"] == 2, track
    path = str(tmp_path / "out" / track["file"])
    proc = subprocess.run(["ffmpeg", "-v", "error", "-xerror", "-i", path, "-f", "null", "-"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    frames = frames_of(path)
    assert len(frames) == 2 * per_segment
    (w0, h0, _), (w1, h1, _) = sizes
    first_of_second = next(i for i, (_, w, h) in enumerate(frames) if (w, h) == (w1, h1))
    sizes_seen = [(w, h) for _, w, h in frames]
    assert sizes_seen == [(w0, h0)] * first_of_second + [(w1, h1)] * (len(frames) - first_of_second)
    assert first_of_second == per_segment
    switch_time = frames[first_of_second][0] - frames[0][0]
    assert abs(switch_time - per_segment / FPS) <= 1 / FPS + 0.001, switch_time
