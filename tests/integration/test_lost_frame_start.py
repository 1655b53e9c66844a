"""Frames whose first packet does not come first. Lost: a frame whose other packets only
continue a fragment (AV1 Z=1 elements, H.264 FU-A middles and ends) leaves nothing to
depacketize, and its loss must still hold the frames after it back until the next
keyframe, since they refer to it. Late: the very first packet of a recording arriving
just after the second must still make the first keyframe. Real encodes (libaom through
av1rtp.py, x264 through rtph264pay), one packet taken out or moved before sending to
`capstan serve` in real time."""
import json
import subprocess

import pytest

import av1rtp
import rtpfile
from conftest import run_capstan
from daemon import Daemon
from pacer import PacedSender

FPS = 30
FRAMES, KEYINT = 60, 30
SSRC = 0x10570001


def av1_stream(tmp_path):
    units = av1rtp.encode(tmp_path / "src.obu", FRAMES, 320, 240, keyint=KEYINT)
    packets = av1rtp.Sender(0, SSRC, pt=45, mtu=400).packets(units)
    # the element after the first packet continues a fragment: Z=1 on every other packet
    return packets, 45, lambda frame: all(p[12] & 0x80 for p in frame[1:])


def h264_stream(tmp_path):
    packets = rtpfile.gst_rtp_packets(tmp_path / "src.rtp", [
        "x264enc", "speed-preset=ultrafast", "tune=zerolatency", "threads=1", "aud=false", f"key-int-max={KEYINT}",
        "!", "video/x-h264,profile=constrained-baseline", "!", "rtph264pay", "mtu=400",
        "config-interval=-1", "aggregate-mode=none"], FRAMES, 320, 240, pt=96)
    packets = rtpfile.restamp(packets, SSRC, 1000, 90000)
    # one slice in FU-A packets (no access unit delimiter before it, as browsers send):
    # the first has S set, the others are FU-A without S
    return packets, 96, lambda frame: all(p[12] & 0x1F == 28 and not p[13] & 0x80 for p in frame[1:])


def record_and_convert(tmp_path, codec, pt, packets):
    """The packets sent in the given order to a fresh daemon; the transmuxed track."""
    d = Daemon(tmp_path / "data").start()
    try:
        d.ok("PUT", "/rooms/cut", {})
        d.ok("POST", "/rooms/cut/producers", {"producer_id": "cam", "peer_id": "p", "kind": "video",
                                              "codec": codec, "payload_type": pt, "ssrc": SSRC})
        rec = d.ok("POST", "/rooms/cut/recordings", {"requester_id": "p"})
        sender = PacedSender(rec["rtp"]["udp_port"], SSRC)
        sender.send(packets)
        sender.close()
        d.ok("POST", f"/recordings/{rec['recording_id']}/stop")
    finally:
        d.stop()
    report = json.loads(run_capstan("convert", "--in", d.recording_dir("cut", rec["recording_id"]),
                                    "--transmux", "--out", tmp_path / "out", "--json").stdout)
    (track,) = report["tracks"]
    return track


def decodes_clean(path):
    proc = subprocess.run(["ffmpeg", "-v", "error", "-xerror", "-i", path, "-f", "null", "-"],
                          capture_output=True, text=True)
    return proc.returncode == 0 and not proc.stderr.strip(), proc.stderr


@pytest.mark.parametrize("codec", ["av1", "h264"])
def test_frames_after_a_frame_lost_from_its_start_wait_for_the_keyframe(tmp_path, codec):
    packets, pt, only_continuations = (av1_stream if codec == "av1" else h264_stream)(tmp_path)
    frames = rtpfile.frames(packets)
    assert len(frames) == FRAMES
    # the first frame after frame 5 made of several packets that only continue a fragment
    victim = next(i for i in range(5, KEYINT - 5) if len(frames[i]) >= 2 and only_continuations(frames[i]))
    lost = frames[victim][0]
    track = record_and_convert(tmp_path, codec, pt, [p for p in packets if p is not lost])
    assert track["lost"] == 1, track
    path = str(tmp_path / "out" / track["file"])
    # frames before the damaged one, then nothing until the keyframe, then the rest
    assert track["frames"] == victim + (FRAMES - KEYINT), (victim, track)
    ok, errors = decodes_clean(path)
    assert ok, errors


def test_first_keyframe_kept_when_its_first_two_packets_arrive_swapped(tmp_path):
    packets, pt, _ = av1_stream(tmp_path)
    first = rtpfile.frames(packets)[0]
    assert len(first) >= 3   # a keyframe in several packets: the swap stays inside it
    track = record_and_convert(tmp_path, "av1", pt, [packets[1], packets[0], *packets[2:]])
    assert track["lost"] == 0 and track["incomplete_frames"] == 0, track
    assert track["frames"] == FRAMES and track["dropped_frames"] == 0, track
    ok, errors = decodes_clean(str(tmp_path / "out" / track["file"]))
    assert ok, errors
