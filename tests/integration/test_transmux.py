"""Transmux against real encoders: each codec this machine can send is captured on
loopback, imported, converted, and judged by ffmpeg: a clean decode, the frame count sent,
and the duration within one frame. Every test runs twice, on the local folder and on an
S3 server (the `storage` fixture of conftest.py)."""
import json
import subprocess

import pytest

from conftest import Capture, free_udp_ports, run_capstan, run_sender

FRAMES = 60   # video frames sent (2 s at 30 fps)

VIDEO = {
    "vp8": (["vp8enc", "deadline=1", "cpu-used=8", "lag-in-frames=0", "keyframe-max-dist=30", "!",
             "rtpvp8pay", "pt=96", "mtu=600"], "VP8/90000", "webm"),
    "vp9": (["vp9enc", "deadline=1", "cpu-used=8", "lag-in-frames=0", "keyframe-max-dist=30", "!",
             "rtpvp9pay", "pt=96", "mtu=600"], "VP9/90000", "webm"),
    "h264": (["x264enc", "tune=zerolatency", "speed-preset=ultrafast", "key-int-max=30", "!",
              "rtph264pay", "pt=96", "mtu=600", "config-interval=-1"], "H264/90000", "mp4"),
    "h265": (["x265enc", "tune=zerolatency", "speed-preset=ultrafast", "key-int-max=30", "!",
              "rtph265pay", "pt=96", "mtu=600", "config-interval=-1"], "H265/90000", "mp4"),
}

AUDIO = {
    # codec: (encoder + payloader, map, container, samples per second, RTP clock)
    "opus": (["audio/x-raw,rate=48000,channels=2", "!", "opusenc", "!", "rtpopuspay", "pt=111"],
             "111=opus/48000/2", "ogg"),
    "pcmu": (["audio/x-raw,rate=8000,channels=1", "!", "mulawenc", "!", "rtppcmupay"], None, "wav"),
    "pcma": (["audio/x-raw,rate=8000,channels=1", "!", "alawenc", "!", "rtppcmapay"], None, "wav"),
    "g722": (["audio/x-raw,rate=16000,channels=1", "!", "avenc_g722", "!", "rtpg722pay"], None, "wav"),
}


def probe(path, stream="v:0"):
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", stream,
                          "-show_entries", "stream=codec_name,nb_read_frames,width,height:format=duration",
                          "-of", "json", path], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def clean_decode(path):
    proc = subprocess.run(["ffmpeg", "-v", "error", "-xerror", "-i", path, "-f", "null", "-"],
                          capture_output=True, text=True)
    return proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr


def capture_and_convert(tmp_path, pipeline, mapping, storage):
    ports = free_udp_ports(1)
    cap = Capture(str(tmp_path / "x.pcap"), f"udp and port {ports[0]}")
    run_sender(["gst-launch-1.0", "-q", *pipeline, "!", "udpsink", "host=127.0.0.1", f"port={ports[0]}"], 10)
    cap.stop()
    args = ["import-pcap", cap.path, "--out", tmp_path / "rec"]
    if mapping:
        args += ["--map", mapping]
    run_capstan(*args)
    report = json.loads(storage.convert(tmp_path / "rec", tmp_path / "out", "--transmux", "--json").stdout)
    return report


@pytest.mark.parametrize("codec", sorted(VIDEO))
def test_video_transmux_decodes_clean_with_every_frame(tmp_path, codec, storage):
    elements, mapping, ext = VIDEO[codec]
    pipeline = ["videotestsrc", "is-live=true", f"num-buffers={FRAMES}", "pattern=ball", "!",
                "video/x-raw,width=320,height=240,framerate=30/1", "!", *elements]
    report = capture_and_convert(tmp_path, pipeline, f"96={mapping}", storage)
    (track,) = report["tracks"]
    assert track["codec"] == codec and track["file"].endswith("." + ext), track
    path = str(tmp_path / "out" / track["file"])
    ok, errors = clean_decode(path)
    assert ok, errors
    info = probe(path)
    assert int(info["streams"][0]["nb_read_frames"]) == FRAMES
    assert (info["streams"][0]["width"], info["streams"][0]["height"]) == (320, 240)
    duration = float(info["format"]["duration"])
    assert abs(duration - FRAMES / 30) <= 1 / 30 + 0.001, duration
    summary = json.load(open(tmp_path / "out" / "summary.json"))
    (peer,) = summary["peers"].values()
    timeline = peer["sessions"]["0"]["track"][track["track_id"]]["timeline"]
    assert timeline[0]["path"] == track["file"] and timeline[0]["end"] > timeline[0]["start"]


@pytest.mark.parametrize("codec", sorted(AUDIO))
def test_audio_transmux_decodes_clean_and_lasts_what_was_sent(tmp_path, codec, storage):
    elements, mapping, ext = AUDIO[codec]
    seconds = 2
    pipeline = ["audiotestsrc", "is-live=true", f"num-buffers={seconds * 50}", "samplesperbuffer=0",
                "!", *elements]
    # 50 buffers per second of 20 ms: audiotestsrc with samplesperbuffer from the caps rate
    rate = int(elements[0].split("rate=")[1].split(",")[0])
    pipeline[3] = f"samplesperbuffer={rate // 50}"
    report = capture_and_convert(tmp_path, pipeline, mapping, storage)
    (track,) = report["tracks"]
    assert track["codec"] == codec and track["file"].endswith("." + ext), track
    path = str(tmp_path / "out" / track["file"])
    ok, errors = clean_decode(path)
    assert ok, errors
    info = probe(path, "a:0")
    duration = float(info["format"]["duration"])
    assert abs(duration - seconds) <= 0.021 + 0.0065, duration   # one 20 ms frame (+ Opus pre-skip)
    assert track["frames"] == track["packets"]
