"""`capstan convert` options against real senders. `--mkv`: one recording holding every
codec capstan depacketizes (GStreamer encoders plus AV1 from libaom through av1rtp.py),
converted twice; every Matroska file decodes cleanly with what its default container
holds. `--keep-damaged`: the same video codecs through a lossy relay; keeping damaged
frames keeps more of them, and the files still play to the end (ffmpeg exits 0 under
plain `-v error`; damaged frames may make the decoder complain, see docs/media.md)."""
import collections
import json
import struct
import subprocess
import threading

import pytest

import av1rtp
from conftest import run_capstan, run_sender
from daemon import Daemon
from relay import Relay
from rtpcount import udp_payloads

FRAMES = 60          # video frames per track (2 s at 30 fps)
AUDIO_SECONDS = 2

VIDEO = {
    # codec: (payload type, SSRC, encoder and payloader)
    "vp8": (96, 0x0C000001, ["vp8enc", "deadline=1", "cpu-used=8", "lag-in-frames=0", "keyframe-max-dist=15",
                             "!", "rtpvp8pay", "mtu=1200"]),
    "vp9": (98, 0x0C000002, ["vp9enc", "deadline=1", "cpu-used=8", "lag-in-frames=0", "keyframe-max-dist=15",
                             "!", "rtpvp9pay", "mtu=1200"]),
    "h264": (102, 0x0C000003, ["x264enc", "tune=zerolatency", "speed-preset=ultrafast", "key-int-max=15", "!",
                               "video/x-h264,profile=constrained-baseline", "!", "rtph264pay", "mtu=1200",
                               "config-interval=-1"]),
    "h265": (104, 0x0C000004, ["x265enc", "tune=zerolatency", "speed-preset=ultrafast", "key-int-max=15", "!",
                               "rtph265pay", "mtu=1200", "config-interval=-1"]),
}
AV1 = (45, 0x0C000005)
AUDIO = {
    # codec: (payload type, SSRC, clock rate, channels, caps, encoder and payloader)
    "opus": (111, 0x0C000011, 48000, 2, "audio/x-raw,rate=48000,channels=2", ["opusenc", "!", "rtpopuspay"]),
    "pcmu": (0, 0x0C000012, 8000, 1, "audio/x-raw,rate=8000,channels=1", ["mulawenc", "!", "rtppcmupay"]),
    "pcma": (8, 0x0C000013, 8000, 1, "audio/x-raw,rate=8000,channels=1", ["alawenc", "!", "rtppcmapay"]),
    "g722": (9, 0x0C000014, 8000, 1, "audio/x-raw,rate=16000,channels=1", ["avenc_g722", "!", "rtpg722pay"]),
}


def sender_pipeline(port, video=(), audio=()):
    """One gst-launch with a live branch per codec, all to one port (one SSRC each)."""
    cmd = ["gst-launch-1.0", "-q"]
    for codec in video:
        pt, ssrc, elements = VIDEO[codec]
        cmd += ["videotestsrc", "is-live=true", f"num-buffers={FRAMES}", "pattern=ball", "!",
                "video/x-raw,width=320,height=240,framerate=30/1", "!", *elements, f"pt={pt}", f"ssrc={ssrc}",
                "!", "udpsink", "host=127.0.0.1", f"port={port}", "sync=false", "async=false"]
    for codec in audio:
        pt, ssrc, _, _, caps, elements = AUDIO[codec]
        rate = int(caps.split("rate=")[1].split(",")[0])
        cmd += ["audiotestsrc", "is-live=true", f"num-buffers={AUDIO_SECONDS * 50}",
                f"samplesperbuffer={rate // 50}",
                "!", caps, "!", *elements, f"pt={pt}", f"ssrc={ssrc}", "!", "udpsink", "host=127.0.0.1",
                f"port={port}", "sync=false", "async=false"]
    return cmd


def record(tmp_path, name, video, audio, av1_units, relay_seed=None):
    """A recording of the given codecs made by `capstan serve`; (folder, relay)."""
    d = Daemon(tmp_path / name).start()
    relay = None
    try:
        d.ok("PUT", "/rooms/all", {})
        for codec in video:
            pt, ssrc, _ = VIDEO[codec]
            d.ok("POST", "/rooms/all/producers", {"producer_id": codec, "peer_id": codec, "kind": "video",
                                                  "codec": codec, "payload_type": pt, "ssrc": ssrc})
        if av1_units:
            d.ok("POST", "/rooms/all/producers", {"producer_id": "av1", "peer_id": "av1", "kind": "video",
                                                  "codec": "av1", "payload_type": AV1[0], "ssrc": AV1[1]})
        for codec in audio:
            pt, ssrc, clock, channels, _, _ = AUDIO[codec]
            d.ok("POST", "/rooms/all/producers", {"producer_id": codec, "peer_id": codec, "kind": "audio",
                                                  "codec": codec, "payload_type": pt, "ssrc": ssrc,
                                                  "clock_rate": clock, "channels": channels})
        rec = d.ok("POST", "/rooms/all/recordings", {"requester_id": "vp8"})
        port = rec["rtp"]["udp_port"]
        if relay_seed is not None:
            relay = Relay(port, seed=relay_seed, loss=0.04, jitter_ms=0)   # no jitter: see test_av1.py
            port = relay.port
        av1_sender = av1rtp.Sender(port, AV1[1], pt=AV1[0])
        av1_thread = threading.Thread(target=av1_sender.send, args=(av1_units,))
        if av1_units:
            av1_thread.start()
        run_sender(sender_pipeline(port, video, audio), FRAMES / 30 + 10)
        if av1_units:
            av1_thread.join()
        av1_sender.close()
        if relay:
            relay.stop()
        d.ok("POST", f"/recordings/{rec['recording_id']}/stop")
    finally:
        d.stop()
    return d.recording_dir("all", rec["recording_id"]), relay


def convert(rec_dir, out_dir, *options):
    report = json.loads(run_capstan("convert", "--in", rec_dir, "--transmux", "--out", out_dir, "--json",
                                    *options).stdout)
    return {t["codec"]: t for t in report["tracks"]}


def decode(path, strict=True, max_error_rate=None):
    """(exit status, stderr) of a full decode by ffmpeg: with -xerror when strict."""
    cmd = ["ffmpeg", "-v", "error", *(["-xerror"] if strict else []),
           *(["-max_error_rate", str(max_error_rate)] if max_error_rate is not None else []),
           "-i", path, "-f", "null", "-"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return proc.returncode, proc.stderr.strip()


def decoded(path):
    """(decoded frames, decoded samples, start time) of the file's first stream."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "0", "-show_entries",
                          "frame=nb_samples,best_effort_timestamp_time", "-of", "json", path],
                         capture_output=True, text=True, check=True).stdout
    frames = json.loads(out)["frames"]
    samples = sum(int(f.get("nb_samples", 0)) for f in frames)
    start = float(frames[0]["best_effort_timestamp_time"]) if frames else None
    return len(frames), samples, start


@pytest.fixture(scope="module")
def every_codec(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("every-codec")
    units = av1rtp.encode(tmp / "av1.obu", FRAMES, 320, 240, keyint=15)
    rec_dir, _ = record(tmp, "data", sorted(VIDEO), sorted(AUDIO), units)
    return tmp, rec_dir


def test_mkv_writes_matroska_for_every_track_with_what_the_default_holds(every_codec):
    tmp, rec_dir = every_codec
    default = convert(rec_dir, tmp / "default")
    mkv = convert(rec_dir, tmp / "mkv", "--mkv")
    assert sorted(mkv) == sorted([*VIDEO, "av1", *AUDIO]), sorted(mkv)
    for codec, track in mkv.items():
        assert not track.get("error") and track["file"].endswith(".mkv"), track
        assert track["frames"] == default[codec]["frames"], codec
        path = str(tmp / "mkv" / track["file"])
        fmt = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=format_name:stream=codec_name",
                              "-of", "json", path], capture_output=True, text=True, check=True).stdout
        info = json.loads(fmt)
        assert info["format"]["format_name"].startswith("matroska"), (codec, info)
        expected_codec = {"h265": "hevc", "pcmu": "pcm_mulaw", "pcma": "pcm_alaw",
                          "g722": "adpcm_g722"}.get(codec, codec)
        assert info["streams"][0]["codec_name"] == expected_codec, (codec, info)
        status, errors = decode(path)
        assert status == 0 and not errors, (codec, errors)
        frames, samples, start = decoded(path)
        reference = str(tmp / "default" / default[codec]["file"])
        ref_frames, ref_samples, ref_start = decoded(reference)
        if codec in VIDEO or codec == "av1":
            assert frames == ref_frames == FRAMES, (codec, frames, ref_frames)
        elif codec == "opus":
            assert frames == ref_frames and samples == ref_samples, (codec, frames, ref_frames)
        else:
            # WAV has no timestamps, so its file begins with silence from time zero; the
            # Matroska file starts where the track does. The same samples either way.
            rate = 16000 if codec == "g722" else 8000
            lead = round(start * rate)
            assert abs(samples + lead - ref_samples) <= rate // 50, (codec, samples, lead, ref_samples)
            assert abs(samples - AUDIO_SECONDS * rate) <= rate // 50, (codec, samples)


@pytest.fixture(scope="module")
def lossy(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lossy")
    units = av1rtp.encode(tmp / "av1.obu", FRAMES * 2, 320, 240, keyint=30)
    rec_dir, relay = record(tmp, "data", ["h264", "vp8", "vp9"], [], units, relay_seed=5)
    return tmp, rec_dir, relay


def whole_frames(rec_dir, tmp, relay):
    """Per SSRC, how many RTP timestamps (frames) surely arrived whole: from what capstan
    recorded (export-pcap), those with no sequence number the relay dropped inside their
    packets' range or just next to it (the neighbour may have been theirs)."""
    pcap = tmp / "recorded.pcap"
    run_capstan("export-pcap", rec_dir, "--out", pcap)
    seqs = collections.defaultdict(lambda: collections.defaultdict(list))
    for _, _, p in udp_payloads(str(pcap)):
        if len(p) >= 12 and not 192 <= p[1] <= 223:
            seq, ts, ssrc = struct.unpack(">HII", p[2:12])
            seqs[ssrc][ts].append(seq)
    whole = {}
    for ssrc, frames in seqs.items():
        dropped = relay.dropped.get(ssrc, set())
        whole[ssrc] = sum(1 for s in frames.values()
                          if not any((seq - 1) & 0xFFFF in dropped or (seq + 1) & 0xFFFF in dropped for seq in s))
    return whole


def test_keep_damaged_keeps_more_frames_and_still_plays(lossy):
    tmp, rec_dir, relay = lossy
    strict = convert(rec_dir, tmp / "strict")
    kept = convert(rec_dir, tmp / "kept", "--keep-damaged")
    whole = whole_frames(rec_dir, tmp, relay)
    hurt = 0
    for codec in ("av1", "h264", "vp8", "vp9"):
        a, b = strict[codec], kept[codec]
        ssrc = AV1[1] if codec == "av1" else VIDEO[codec][1]
        assert a["lost"] == b["lost"] == relay.expected_lost(ssrc), codec
        # every frame that arrived whole comes out of the pipeline: written, or dropped
        # while waiting for a keyframe; none vanishes on the way
        assert a["frames"] + a["dropped_frames"] >= whole[ssrc], (codec, a, whole[ssrc])
        if not a["lost"]:
            assert b["frames"] == a["frames"] and b["dropped_frames"] == a["dropped_frames"] == 0, codec
            continue
        hurt += 1
        # with it, every frame that came out of the depacketizer after the first keyframe
        # is written: more than without, and none dropped except before that keyframe
        assert b["frames"] > a["frames"], (codec, a["frames"], b["frames"])
        assert b["frames"] + b["dropped_frames"] == a["frames"] + a["dropped_frames"], codec
        # and the file is read to its end, showing at least the pictures the default file
        # shows. ffmpeg may report the damage; with many undecodable frames its
        # -max_error_rate policy makes it exit 69 (an AV1 decoder refuses every frame whose
        # references are missing, see docs/media.md), so the file is judged with that
        # policy off: no other error may stop the decode.
        path = str(tmp / "kept" / b["file"])
        frames, _, _ = decoded(path)
        status, errors = decode(path, strict=False)
        assert status in (0, 69), (codec, status, frames, errors)
        status, errors = decode(path, strict=False, max_error_rate=1)
        assert status == 0, (codec, errors)
        clean_frames, _, _ = decoded(str(tmp / "strict" / a["file"]))
        assert frames >= clean_frames, (codec, frames, clean_frames)
    assert hurt >= 3, "the relay's loss touched too few tracks to judge"
